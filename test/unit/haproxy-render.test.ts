/**
 * The pure HAProxy renderer: golden files pin the whole config text; table tests pin the
 * sanitising rules (a bad registry entry is skipped, never written), the node-state → server
 * mapping and the settings checks. Regenerate the goldens with UPDATE_GOLDEN=1 after an intended
 * template change, and read the diff.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { testConfig } from "../../core/config.ts";
import { NODE_STATES, type NodeState } from "../../core/types.ts";
import { DEFAULT_TEMPLATES, EdgeSettingsError, configWord, edgePaths, edgeSettings, isHost, nodeAdminState, render, serverIdFor, ServerIds, type EdgeRegistry } from "../../haproxy/render.ts";
import { gatewayRecord, nodeRecord } from "../support/haproxy-fixtures.ts";

const GOLDEN_DIR = join(import.meta.dir, "golden");
const UPDATE = process.env.UPDATE_GOLDEN === "1";

async function golden(name: string, text: string): Promise<void> {
  const file = Bun.file(join(GOLDEN_DIR, name));
  if (UPDATE || !(await file.exists())) await Bun.write(file, text);
  expect(text).toBe(await Bun.file(join(GOLDEN_DIR, name)).text());
}

const baseConfig = testConfig({ haproxyConfig: "/var/lib/fleetgate/haproxy/haproxy.cfg", haproxyPort: 8080, haproxyStatsPort: 8404, haproxyBind: "0.0.0.0" });
const settings = edgeSettings(baseConfig, { statsPassword: "stats-pass" });

const fleet: EdgeRegistry = {
  gateways: [gatewayRecord("gw-b", 3001), gatewayRecord("gw-a", 3000), gatewayRecord("gw-c", 3002, "gateway-3.internal")],
  nodes: [
    nodeRecord("node-4", "draining", 8084),
    nodeRecord("node-1", "ready", 8081),
    nodeRecord("node-2", "starting", 8082),
    nodeRecord("node-3", "unhealthy", 8083),
    nodeRecord("node-5", "stopping", 8085),
    nodeRecord("node-6", "stopped", 8086),
    nodeRecord("node-7", "ready", 8087, { host: "::1" }),
  ],
};

describe("render: golden files", () => {
  test("an empty fleet still renders a complete edge (frontends, empty backends, stats)", async () => {
    const r = render({ gateways: [], nodes: [] }, settings);
    expect(r.skipped).toEqual([]);
    await golden("haproxy-empty.cfg", r.text);
  });

  test("a mixed fleet: every gateway in `backend gateways`, every node in `backend nodes` with its state", async () => {
    const r = render(fleet, settings);
    expect(r.skipped).toEqual([]);
    expect(r.gateways.map((g) => g.name)).toEqual(["gw-a", "gw-b", "gw-c"]);
    expect(r.nodes.map((n) => [n.name, n.admin])).toEqual([
      ["node-1", "ready"],
      ["node-2", "ready"],
      ["node-3", "ready"],
      ["node-4", "drain"],
      ["node-5", "maint"],
      ["node-6", "maint"],
      ["node-7", "ready"],
    ]);
    await golden("haproxy-fleet.cfg", r.text);
  });

  test("TLS, a custom conn rate, a password that needs escaping, and the rooms→nodes test route", async () => {
    const s = edgeSettings(
      testConfig({
        haproxyConfig: "/srv/edge dir/haproxy.cfg",
        haproxyTlsCert: "/etc/ssl/edge.pem",
        haproxyTlsPort: 8443,
        haproxyConnRate: 50,
        haproxyBind: "127.0.0.1",
        haproxyStatsUser: "ops",
      }),
      { statsPassword: `p a#s's"\\$HOME`, roomsToNodes: true },
    );
    const r = render({ gateways: [gatewayRecord("gw-a", 3000)], nodes: [nodeRecord("node-1", "ready", 8081)] }, s);
    await golden("haproxy-tls.cfg", r.text);
    expect(r.text).toContain("stats auth ops:p\\ a\\#s\\'s\\\"\\\\$HOME\n");
    expect(r.text).toContain("stats socket /srv/edge\\ dir/runtime.sock");
  });
});

describe("render: the config's required parts", () => {
  const text = render(fleet, settings).text;
  test.each([
    ["master CLI friendly runtime API at admin level", /stats socket \S+ mode 600 level admin expose-fd listeners/],
    ["server state file in global", /\n {4}server-state-file \/var\/lib\/fleetgate\/haproxy\/server-state\n/],
    ["state loaded on reload", /load-server-state-from-file global/],
    ["WebSocket tunnel timeout", /timeout tunnel \d+[smh]/],
    ["public frontend bind", /frontend public\n {4}bind 0\.0\.0\.0:8080\n/],
    ["per-IP conn-rate stick table", /stick-table type ip .* store conn_rate\(10s\)[\s\S]*sc_conn_rate\(0\) gt 200/],
    ["room hashing", /backend gateways[\s\S]*balance url_param room\n {4}hash-type consistent/],
    ["gateways health-checked", /backend gateways[\s\S]*option httpchk GET \/health HTTP\/1.1\n {4}http-check send hdr Host \S+\n/],
    ["nodes health-checked", /backend nodes[\s\S]*option httpchk GET \/health/],
    ["stats page", /bind 0\.0\.0\.0:8404[\s\S]*stats uri \/stats[\s\S]*stats auth admin:stats-pass/],
    ["draining node at weight 0", /server node-4 127\.0\.0\.1:8084 id \d+ check weight 0\n/],
    ["stopped node disabled", /server node-6 127\.0\.0\.1:8086 id \d+ check weight 100 disabled\n/],
    ["IPv6 node", /server node-7 ::1:8087 id \d+ check/],
  ])("%s", (_what, re) => {
    expect(text).toMatch(re);
  });

  test("no TLS bind and no rooms route unless asked", () => {
    expect(text).not.toContain("ssl crt");
    expect(text).not.toContain("use_backend nodes");
  });
});

describe("render: sanitising registry entries", () => {
  const cases: [string, Partial<{ id: string; host: string; port: number }>, string][] = [
    ["newline in id", { id: "n1\n    server evil 1.2.3.4:80" }, "id is not"],
    ["space in id", { id: "n 1" }, "id is not"],
    ["empty id", { id: "" }, "id is not"],
    ["id too long", { id: "x".repeat(101) }, "id is not"],
    ["newline in host", { host: "127.0.0.1\nlisten evil" }, "host is not"],
    ["space in host", { host: "127.0.0.1 backup" }, "host is not"],
    ["hash in host", { host: "a#b" }, "host is not"],
    ["port 0", { port: 0 }, "port is not"],
    ["port too big", { port: 70000 }, "port is not"],
    ["fractional port", { port: 80.5 }, "port is not"],
    ["NaN port", { port: Number.NaN }, "port is not"],
  ];

  test.each(cases)("node with %s is skipped, not written", (_what, patch, reason) => {
    const bad = { ...nodeRecord("n1", "ready", 9000), ...patch };
    const r = render({ gateways: [], nodes: [bad, nodeRecord("good", "ready", 9001)] }, settings);
    expect(r.skipped).toHaveLength(1);
    expect(r.skipped[0]!.kind).toBe("node");
    expect(r.skipped[0]!.reason).toContain(reason);
    expect(r.nodes.map((n) => n.name)).toEqual(["good"]);
    expect(r.text).not.toContain("evil");
    expect(r.text).not.toContain("backup");
    // Only the good node's server line, nothing else.
    expect(r.text.match(/^\s+server /gm)).toHaveLength(1);
  });

  test.each(cases)("gateway with %s is skipped, not written", (_what, patch, reason) => {
    const bad = { ...gatewayRecord("g1", 3000), ...patch };
    const r = render({ gateways: [bad, gatewayRecord("good", 3001)], nodes: [] }, settings);
    expect(r.skipped.map((s) => [s.kind, s.reason.slice(0, reason.length)])).toEqual([["gateway", reason]]);
    expect(r.gateways.map((g) => g.name)).toEqual(["good"]);
    expect(r.text.match(/^\s+server /gm)).toHaveLength(1);
  });

  test("a duplicate id keeps the first and skips the second", () => {
    const r = render({ gateways: [], nodes: [nodeRecord("n1", "ready", 9000), nodeRecord("n1", "ready", 9001)] }, settings);
    expect(r.nodes).toHaveLength(1);
    expect(r.skipped).toEqual([{ kind: "node", id: '"n1"', reason: "duplicate id" }]);
  });

  test("the same id may be a gateway and a node (different backends)", () => {
    const r = render({ gateways: [gatewayRecord("x1", 3000)], nodes: [nodeRecord("x1", "ready", 9000)] }, settings);
    expect(r.skipped).toEqual([]);
  });

  test("an unprintable id is reported quoted and cut short", () => {
    const r = render({ gateways: [], nodes: [nodeRecord("\u0000".repeat(500), "ready", 9000)] }, settings);
    expect(r.skipped[0]!.id.length).toBeLessThanOrEqual(80);
  });
});

describe("render: determinism", () => {
  test("input order does not change the text", () => {
    const reversed: EdgeRegistry = { gateways: [...fleet.gateways].reverse(), nodes: [...fleet.nodes].reverse() };
    expect(render(reversed, settings).text).toBe(render(fleet, settings).text);
  });

  test("counters that do not reach the config (rooms, players, lastSeenAt) do not change the text", () => {
    const busier: EdgeRegistry = { gateways: fleet.gateways, nodes: fleet.nodes.map((n) => ({ ...n, rooms: 5, players: 40, lastSeenAt: 9 })) };
    expect(render(busier, settings).text).toBe(render(fleet, settings).text);
  });
});

describe("stable server ids (consistent hashing keeps rooms in place)", () => {
  test("an id depends on the name only: removing one replica changes no other replica's id", () => {
    const all = render(fleet, settings).gateways;
    const without = render({ ...fleet, gateways: fleet.gateways.filter((g) => g.id !== "gw-a") }, settings).gateways;
    for (const g of without) expect(g.id).toBe(all.find((x) => x.name === g.name)!.id);
    expect(new Set(all.map((g) => g.id)).size).toBe(all.length);
  });

  test("ids are positive 31-bit integers", () => {
    for (const name of ["a", "gw-1", "x".repeat(100), "node:7"]) {
      const id = serverIdFor(name);
      expect(id).toBeGreaterThan(0);
      expect(id).toBeLessThanOrEqual(0x7fffffff);
    }
  });

  test("a hash collision takes the next free id, wrapping past the top", () => {
    const ids = new ServerIds(() => 0x7fffffff);
    expect(["a", "b", "c"].map((n) => ids.take(n))).toEqual([0x7fffffff, 1, 2]);
  });

  test("300 nodes get 300 distinct ids", () => {
    const ids = render({ gateways: [], nodes: Array.from({ length: 300 }, (_, i) => nodeRecord(`n${i}`, "ready", 9000 + i)) }, settings).nodes.map((n) => n.id);
    expect(new Set(ids).size).toBe(300);
  });
});

describe("nodeAdminState", () => {
  const expected: Record<NodeState, string> = { starting: "ready", ready: "ready", draining: "drain", stopping: "maint", stopped: "maint", unhealthy: "ready" };
  test.each(NODE_STATES.map((s) => [s, expected[s]] as const))("%s → %s", (state, admin) => {
    expect(nodeAdminState(state)).toBe(admin as ReturnType<typeof nodeAdminState>);
  });
});

describe("configWord and isHost", () => {
  test.each([
    ["plain", "plain"],
    ["a b", "a\\ b"],
    ["a#b", "a\\#b"],
    [`'"`, `\\'\\"`],
    ["\\", "\\\\"],
    ["$X", "$X"],
    ["a\u00a0b", "a\u00a0b"],
  ])("configWord(%j) = %j", (input, out) => {
    expect(configWord(input)).toBe(out);
  });

  test("configWord refuses control characters", () => {
    expect(() => configWord("a\nb")).toThrow();
  });

  test.each([
    ["127.0.0.1", true],
    ["10.0.0.255", true],
    ["256.0.0.1", true], // not an IPv4 address, but a valid DNS label form: harmless, HAProxy resolves or fails the check
    ["::1", true],
    ["fe80::1", true],
    ["gateway-1.internal", true],
    ["-bad", false],
    ["a b", false],
    ["a\nb", false],
    ["", false],
    ["host:80", false],
  ])("isHost(%j) = %p", (h, ok) => {
    expect(isHost(h)).toBe(ok);
  });
});

describe("edgeSettings", () => {
  test("derives every runtime path from HAPROXY_CONFIG's folder", () => {
    expect(edgePaths("/x/y/haproxy.cfg")).toEqual({
      config: "/x/y/haproxy.cfg",
      dir: "/x/y",
      masterSocket: "/x/y/master.sock",
      statsSocket: "/x/y/runtime.sock",
      serverStateFile: "/x/y/server-state",
      pidFile: "/x/y/haproxy.pid",
    });
  });

  test("lists every problem at once", () => {
    try {
      edgeSettings(testConfig({ haproxyBind: "0.0.0.0 evil", haproxyStatsUser: "a b", haproxyPort: 0 }), { statsPassword: "x\ny" });
      throw new Error("expected EdgeSettingsError");
    } catch (e) {
      expect(e).toBeInstanceOf(EdgeSettingsError);
      expect((e as EdgeSettingsError).problems).toHaveLength(4);
    }
  });

  test("`*` binds every address", () => {
    const s = edgeSettings(testConfig({ haproxyBind: "*" }), { statsPassword: "p" });
    expect(render({ gateways: [], nodes: [] }, s).text).toMatch(/frontend public\n {4}bind :8080\n/);
  });
});

describe("broken templates", () => {
  test("a template naming a missing field throws instead of writing a half config", () => {
    const broken = { main: DEFAULT_TEMPLATES.main, partials: { ...DEFAULT_TEMPLATES.partials, global: "global\n    maxconn {{nope.missing}}\n" } };
    expect(() => render(fleet, settings, broken)).toThrow();
  });

  test("a Handlebars syntax error throws", () => {
    const broken = { main: "{{#each gateways}}", partials: {} };
    expect(() => render(fleet, settings, broken)).toThrow();
  });
});
