/**
 * A node lost under live players (its process SIGKILLed: connections cut without a close frame):
 * the gateway that saw the upstreams drop takes it out of placement at once — no scheduler, no
 * health check runs here — so the players' reconnects after the 4009 delay land on another node.
 * Then the health check's part (confirm or restore) on the reported node.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { realClock } from "../../core/clock.ts";
import type { NodeRecord } from "../../core/types.ts";
import { makeNode } from "../support/nodes.ts";
import { closedWithin, openSocket, startTestGateway, type TestGateway } from "../support/gateway-fixtures.ts";
import { freePort, need, waitFor } from "../support/services.ts";
import { healthVerdict } from "../../scheduler/policy/liveness.ts";
import { httpHealthProbe } from "../../scheduler/fleet/health-probe.ts";
import { testConfig } from "../../core/config.ts";

describe.skipIf(!need("redis"))("a lost node leaves placement when the gateway sees it", () => {
  const prefix = `fgtest-loss-${crypto.randomUUID().slice(0, 8)}`;
  let gw: TestGateway | undefined;
  const procs: ReturnType<typeof Bun.spawn>[] = [];

  /** A reference node in a process of its own (so it can be SIGKILLed), registered as ready. */
  async function processNode(id: string): Promise<{ proc: ReturnType<typeof Bun.spawn>; record: NodeRecord }> {
    const port = freePort();
    const token = `tok-${crypto.randomUUID()}`;
    const proc = Bun.spawn([process.execPath, "node/main.ts"], {
      cwd: `${import.meta.dir}/../..`,
      env: { ...process.env, NODE_ID: id, PORT: String(port), HOST: "127.0.0.1", NODE_TOKEN: token, ROOM_MODE: "echo", MAX_ROOMS: "100", MAX_PLAYERS: "100", LOG_LEVEL: "warn", RECONNECT_DELAY_MS: "100" },
      stdout: "ignore",
      stderr: "ignore",
    });
    procs.push(proc);
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined))?.ok, 15_000, `node ${id} to listen`, 50);
    const record = makeNode({ id, port, token, capacity: 100, maxRooms: 100, region: "local", state: "ready", startedAt: Date.now(), lastSeenAt: Date.now() });
    await gw!.deps.nodes.create(record, Date.now());
    return { proc, record };
  }

  afterAll(async () => {
    for (const p of procs) p.kill("SIGKILL");
    await gw?.stop();
    const { createRedis, deletePrefix } = await import("../../core/redis.ts");
    const r = createRedis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
    await deletePrefix(r, prefix);
    r.disconnect();
  });

  test("SIGKILL of the node: 4009 to its players, the node unhealthy at once, reconnects land on the other node", async () => {
    // Session resume off: this is the contract's plain path (4009, then the client reconnects).
    gw = await startTestGateway(prefix, { resume: false, reconnectDelayMs: 100 });
    const a = await processNode(`n-a-${crypto.randomUUID().slice(0, 6)}`);
    const token = await gw.token();
    const room = `LOSS${crypto.randomUUID().slice(0, 6)}`;
    const url = `${gw.wsUrl}/v1/connect?room=${room}`;
    const s1 = openSocket(url, ["bearer", token]);
    await s1.opened;
    s1.ws.send("hello");
    await s1.waitMessages(1);
    expect((await gw.deps.placement.nodeForRoom(room))?.id).toBe(a.record.id);
    // The other node comes up only now, so the room went to `a`.
    const b = await processNode(`n-b-${crypto.randomUUID().slice(0, 6)}`);

    const t0 = performance.now();
    a.proc.kill("SIGKILL");
    const closed = await closedWithin(s1, 3000);
    expect(closed.code).toBe(4009);
    await waitFor(async () => (await gw!.deps.nodes.get(a.record.id))?.state === "unhealthy", 1000, "the lost node to leave placement", 10);
    const outMs = performance.now() - t0;
    console.log(`node SIGKILLed → player closed ${closed.code}; node out of placement ${outMs.toFixed(0)} ms after the kill`);
    // "At once": well before a single health-check interval (2 s by default), let alone three.
    expect(outMs).toBeLessThan(1000);

    // The reconnect after the delay lands on the other node and works.
    await Bun.sleep(100);
    const s2 = openSocket(url, ["bearer", token]);
    await s2.opened;
    s2.ws.send("again");
    await s2.waitMessages(1);
    expect(s2.messages[0]).toBe("again");
    expect((await gw.deps.placement.nodeForRoom(room))?.id).toBe(b.record.id);
    s2.ws.close(1000);

    // The health check's part: the reported node does not answer → confirmed, replaced once.
    const c = testConfig();
    const reported = (await gw.deps.nodes.get(a.record.id))!;
    expect(reported.healthFailures).toBe(0);
    const probe = await httpHealthProbe({ nodeId: reported.id, host: reported.host, port: reported.port }, 500);
    expect(probe.ok).toBe(false);
    const v = healthVerdict(reported, probe, realClock.now(), c);
    expect(v.replace).toBe(true);
    expect(v.to).toBeUndefined();
    // …while a node reported by mistake that answers is restored.
    const bRecord = (await gw.deps.nodes.get(b.record.id))!;
    const okProbe = await httpHealthProbe({ nodeId: bRecord.id, host: bRecord.host, port: bRecord.port }, 1000);
    expect(healthVerdict({ ...bRecord, state: "unhealthy", healthFailures: 0 }, okProbe, realClock.now(), c).to).toBe("ready");
  }, 40_000);
});
