/**
 * `npm run loadtest` against a real test stack (gateway, Redis, a relay-mode reference node, the
 * matchmaker): the rooms flow in-process, all three flows through the CLI with --json, and the
 * non-zero exit when clients fail (a gateway that is not there). Small and short by design.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { realClock } from "../../core/clock.ts";
import { silentLogger } from "../../core/log.ts";
import { startMatchmaker } from "../../scheduler/matchmaker/index.ts";
import { parseArgs } from "../../scripts/loadtest/args.ts";
import { runLoadTest } from "../../scripts/loadtest/runner.ts";
import { summarize, type Summary } from "../../scripts/loadtest/stats.ts";
import { startTestGateway, startTestNode, type TestGateway, type TestNode } from "../support/gateway-fixtures.ts";
import { captureOutput, freePort, need, testRedis, type TestRedis } from "../support/services.ts";

const options = (argv: string[]) => {
  const r = parseArgs(argv);
  if (!r.ok) throw new Error(r.problems.join("; "));
  return r.options;
};

async function cli(args: string[]): Promise<{ code: number; out: string }> {
  const proc = Bun.spawn([process.execPath, join(import.meta.dir, "..", "..", "scripts", "loadtest.ts"), ...args], { stdout: "pipe", stderr: "pipe" });
  const out = captureOutput(proc);
  const code = await proc.exited;
  return { code, out: out.output() };
}
const jsonOf = (out: string) => JSON.parse(out.slice(out.indexOf("{\n"))) as Summary & { passed: boolean };

describe.skipIf(!need("redis"))("loadtest against a test stack", () => {
  let tr: TestRedis;
  let gw: TestGateway;
  let node: TestNode;
  let matchmaker: { close(): Promise<void> } | undefined;

  beforeAll(async () => {
    tr = testRedis("loadtest");
    gw = await startTestGateway(tr.prefix, { port: freePort(), maxPlayersPerServer: 100, matchmakerIntervalMs: 50, flushWaitMs: 300, minPartialSessionSize: 2 });
    node = await startTestNode(gw.deps, { roomMode: "relay" });
    matchmaker = await startMatchmaker({ ...gw.deps, newRedis: () => tr.connect(), clock: realClock, log: silentLogger });
  });
  afterAll(async () => {
    await matchmaker?.close();
    await gw?.stop();
    await node?.stop();
    await tr?.cleanup();
  });

  test("rooms flow: 8 clients in rooms of 4 exchange messages; every ping answered", async () => {
    const lines: string[] = [];
    const counts = await runLoadTest(options(["--url", gw.url, "--clients", "8", "--spawn-rate", "40", "--match-duration", "1.5", "--msg-rate", "10", "--room-size", "4", "--progress", "0.5", "--timeout", "30"]), {
      onProgress: (l) => lines.push(l),
    });
    const s = summarize(counts);
    expect(s.joins).toMatchObject({ ok: 8, failed: 0 });
    expect(s.failedClients).toBe(0);
    expect(s.joins.latencyMs.p99).toBeGreaterThan(0);
    // 8 clients × 10 Hz × 1.5 s ≈ 120 pings, each answered by the room's next player through the relay.
    expect(s.messages.sent).toBeGreaterThanOrEqual(80);
    expect(s.messages.answered).toBe(s.messages.sent);
    expect(s.messages.framesLost).toBe(0);
    expect(s.messages.rttMs.p50).toBeGreaterThan(0);
    expect(Object.keys(s.closeCodes)).toEqual(["1000"]);
    expect(s.timedOut).toBe(false);
    expect(lines.at(-1)).toMatch(/clients 8\/8 connected 0 +joins 8 ok 0 failed/);
    // Every room the run created was left (the last player's leave closes it).
    const lobby = await fetch(`${gw.url}/v1/rooms?mode=loadtest`, { headers: { authorization: `Bearer ${await gw.token()}` } });
    expect(((await lobby.json()) as { rooms: unknown[] }).rooms).toEqual([]);
  }, 40_000);

  test("CLI, --json: the matchmaking and dedicated flows pass their threshold (exit 0)", async () => {
    const mm = await cli(["--url", gw.url, "--flow", "matchmaking", "--clients", "4", "--spawn-rate", "50", "--match-duration", "1", "--msg-rate", "5", "--json", "--timeout", "30"]);
    expect(mm.code).toBe(0);
    const s = jsonOf(mm.out);
    expect(s).toMatchObject({ flow: "matchmaking", passed: true, failedClients: 0, joins: { ok: 4, failed: 0 } });
    expect(s.messages.answered).toBe(s.messages.sent);
    expect(s.messages.sent).toBeGreaterThan(0);

    // Dedicated sessions on a relay node: a player alone in its room gets no echo, so RTT is not
    // measurable and nothing counts as lost.
    const ded = await cli(["--url", gw.url, "--flow", "dedicated", "--clients", "3", "--spawn-rate", "50", "--match-duration", "0.5", "--msg-rate", "4", "--json", "--timeout", "30"]);
    expect(ded.code).toBe(0);
    const d = jsonOf(ded.out);
    expect(d).toMatchObject({ flow: "dedicated", passed: true, joins: { ok: 3, failed: 0 } });
    expect(d.messages.framesLost).toBe(0);
    expect(d.messages.unanswerable).toBe(d.messages.sent);
  }, 60_000);

  test("CLI: failing clients above --max-error-rate exit 1; bad arguments exit 2", async () => {
    const dead = `http://127.0.0.1:${freePort()}`;
    const r = await cli(["--url", dead, "--clients", "2", "--spawn-rate", "100", "--match-duration", "0", "--timeout", "20", "--progress", "0"]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/joins\s+0 ok, 2 failed/);
    expect(r.out).toMatch(/NETWORK_ERROR×2/);
    expect(r.out).toMatch(/result\s+FAIL/);
    const bad = await cli(["--url", "nope", "--flow", "teleport"]);
    expect(bad.code).toBe(2);
    expect(bad.out).toMatch(/--flow "teleport"/);
  }, 60_000);
});
