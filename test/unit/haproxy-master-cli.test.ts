/** Parsers for HAProxy's master CLI / runtime API answers, and the reload confirmation rule. */
import { describe, expect, test } from "bun:test";
import { ADMIN_BITS, adminStateOf, parseServersState, parseShowProc, reloadProgress, type ProcInfo } from "../../haproxy/master-cli.ts";
import { summarizeHaproxyErrors } from "../../haproxy/control.ts";

// Captured from HAProxy 2.6.12 on this machine.
const SHOW_PROC_FRESH = `#<PID>          <type>          <reloads>       <uptime>        <version>
9635            master          0 [failed: 0]   0d00h10m08s     2.6.12-1+deb12u4
# workers
9638            worker          0               0d00h10m08s     2.6.12-1+deb12u4
# programs

`;
const SHOW_PROC_FAILED = `#<PID>          <type>          <reloads>       <uptime>        <version>
9635            master          2 [failed: 1]   0d00h10m52s     2.6.12-1+deb12u4
# workers
1603            worker          1               0d00h00m06s     2.6.12-1+deb12u4
# programs

`;
const SHOW_PROC_RELOADED = `#<PID>          <type>          <reloads>       <uptime>        <version>
9635            master          3 [failed: 0]   0d00h10m53s     2.6.12-1+deb12u4
# workers
2966            worker          0               0d00h00m00s     2.6.12-1+deb12u4
# old workers
1603            worker          2               0d00h00m07s     2.6.12-1+deb12u4
# programs

`;
const SERVERS_STATE = `1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
5 nodes 1 n1 127.0.0.1 0 8 100 100 0 8 2 0 6 0 0 0 - 9001 - 0 0 - - 0
5 nodes 2 n2 127.0.0.1 2 0 0 0 644 8 2 0 6 0 0 0 - 9002 - 0 0 - - 0
5 nodes 3 n3 ::1 0 5 100 100 645 1 0 0 14 0 0 0 - 9003 - 0 0 - - 0

`;

describe("parseShowProc", () => {
  test("master with reload and failed counters, current and old workers", () => {
    expect(parseShowProc(SHOW_PROC_RELOADED)).toEqual({
      master: { pid: 9635, reloads: 3, failed: 0 },
      workers: [
        { pid: 2966, reloads: 0 },
        { pid: 1603, reloads: 2 },
      ],
    });
  });

  test.each([[""], ["Unknown command.\n"], ["garbage 12 x\n"]])("no master line → undefined (%j)", (text) => {
    expect(parseShowProc(text)).toBeUndefined();
  });
});

describe("reloadProgress", () => {
  const before = parseShowProc(SHOW_PROC_FRESH) as ProcInfo;
  test.each([
    ["no answer yet (master re-executing)", "pending", undefined],
    ["counter not up yet", "pending", SHOW_PROC_FRESH],
    ["counter up, failed > 0: the new config did not load", "failed", SHOW_PROC_FAILED],
    ["counter up, a new worker, failed 0", "ok", SHOW_PROC_RELOADED],
    [
      "counter up but no new worker yet",
      "pending",
      SHOW_PROC_FRESH.replace("0 [failed: 0]", "1 [failed: 0]").replace("9638            worker          0", "9638            worker          1"),
    ],
  ])("%s → %s", (_what, expected, after) => {
    expect(reloadProgress(before, after === undefined ? undefined : parseShowProc(after))).toBe(expected as ReturnType<typeof reloadProgress>);
  });
});

describe("parseServersState", () => {
  test("reads names, states and weights by header column", () => {
    const s = parseServersState(SERVERS_STATE);
    expect(s.map((x) => [x.backend, x.server, x.address, x.opState, x.adminState, x.weight, x.port])).toEqual([
      ["nodes", "n1", "127.0.0.1", 0, 8, 100, 9001],
      ["nodes", "n2", "127.0.0.1", 2, 0, 0, 9002],
      ["nodes", "n3", "::1", 0, 5, 100, 9003],
    ]);
  });

  test("no header → nothing", () => {
    expect(parseServersState("Unknown command\n")).toEqual([]);
  });
});

describe("adminStateOf", () => {
  test.each([
    [0, "ready"],
    [ADMIN_BITS.FDRAIN, "drain"],
    [ADMIN_BITS.IDRAIN, "drain"],
    [ADMIN_BITS.FMAINT, "maint"],
    [ADMIN_BITS.CMAINT, "maint"],
    [ADMIN_BITS.CMAINT | ADMIN_BITS.FDRAIN, "maint"],
    [ADMIN_BITS.RMAINT, "ready"],
  ])("bits %d → %s", (bits, state) => {
    expect(adminStateOf(bits)).toBe(state as ReturnType<typeof adminStateOf>);
  });
});

describe("summarizeHaproxyErrors", () => {
  test("keeps the ALERT lines, drops NOTICE noise and pids", () => {
    const text = `[NOTICE]   (9147) : haproxy version is 2.6.12
[ALERT]    (9147) : config : parsing [/tmp/x.cfg:12] : unknown keyword 'bogus' in 'global' section
[ALERT]    (9147) : config : Fatal errors found in configuration.
`;
    expect(summarizeHaproxyErrors(text)).toBe(
      "[ALERT]    : config : parsing [/tmp/x.cfg:12] : unknown keyword 'bogus' in 'global' section\n[ALERT]    : config : Fatal errors found in configuration.",
    );
  });
});
