/**
 * Chaos: Redis SIGKILLed and restarted from its append-only file, under a live gateway (its own
 * redis-server, so no one else's Redis is touched). Live relays keep flowing through the outage;
 * `/ready` answers 503 during it and 200 within 5 s after; joins during it answer 503 with the
 * contract's error body and never hang; no queued job, room or session is lost.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { jobIds } from "../../model/jobs.ts";
import { startTestGateway, startTestNode, type TestGateway, type TestNode } from "../support/gateway-fixtures.ts";
import { need, waitFor } from "../support/services.ts";
import { openPlayer, reportChaos, startOwnRedis, type OwnRedis } from "../support/chaos.ts";

/** How long Redis stays down. */
const OUTAGE_MS = 3_000;
/** A request during the outage that has not answered after this long counts as hanging. */
const HANG_MS = 8_000;

describe.skipIf(!need("redis"))("chaos: Redis killed and restarted (AOF)", () => {
  let r: OwnRedis;
  let gw: TestGateway;
  let node: TestNode;
  const prefix = `fgchaos-redis-${crypto.randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    r = await startOwnRedis({ label: "restart" });
    gw = await startTestGateway(prefix, { redisUrl: r.url, joinWaitTimeoutMs: 2_000 });
    node = await startTestNode(gw.deps, { roomMode: "echo" });
  }, 30_000);

  afterAll(async () => {
    await gw?.stop().catch(() => {});
    await node?.stop().catch(() => {});
    // The whole Redis is this test's: removing its data dir is the cleanup.
    await r?.stop();
  }, 30_000);

  async function post(path: string, token: string, body: unknown): Promise<{ status: number; body: unknown; ms: number }> {
    const t0 = Date.now();
    const res = await fetch(`${gw.url}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(HANG_MS),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {}
    return { status: res.status, body: parsed, ms: Date.now() - t0 };
  }

  test(
    "relays flow, /ready 503 then 200 within 5 s, joins 503 never hang, nothing lost",
    async () => {
      // Before: a player session with a live socket, a room, a queued job no scheduler takes.
      const pTok = await gw.token("p_chaos_player");
      const joined = await post("/v1/players/join", pTok, {});
      expect(joined.status).toBe(201);
      const session = joined.body as { sessionId: string; roomCode: string };
      const hostTok = await gw.token("p_chaos_host");
      const created = await post("/v1/rooms", hostTok, { visibility: "public", maxPlayers: 4 });
      expect(created.status).toBe(201);
      const roomCode = (created.body as { code: string }).code;
      const requestId = `chaos-${crypto.randomUUID().slice(0, 6)}`;
      await gw.deps.scheduler.requestScaleUp({ count: 1, region: "local", reason: "chaos: queued across a Redis restart", requestId });
      expect(await gw.deps.queues.scaleUp.getJob(jobIds.scaleUp(requestId))).toBeDefined();

      const player = openPlayer(`${gw.wsUrl}/v1/connect?room=${encodeURIComponent(session.roomCode)}`, ["bearer", pTok]);
      await player.opened;
      let seq = 0;
      const ticker = setInterval(() => {
        if (player.ws.readyState === WebSocket.OPEN) player.ws.send(`f${seq++}`);
      }, 20);

      const players: string[] = [];
      let readyBackMs: number | undefined;
      let ok = false;
      try {
        await player.waitFrames(3, 5_000);
        await r.kill("SIGKILL");
        const downAt = Date.now();

        // During the outage.
        const notReady = await waitFor(async () => (await fetch(`${gw.url}/ready`, { signal: AbortSignal.timeout(HANG_MS) })).status === 503, 3_000, "/ready 503", 50);
        expect(notReady).toBe(true);
        const duringJoin = await post("/v1/players/join", await gw.token("p_chaos_late"), {});
        players.push(`join during outage: ${duringJoin.status} in ${duringJoin.ms} ms`);
        expect(duringJoin.status).toBe(503);
        expect((duringJoin.body as { error?: { code?: unknown } }).error?.code).toBeString();
        // The other requests of the issue that used to hang: guest sign-in, a room join, the server list.
        const others = await Promise.all([
          post("/v1/auth/guest", "", { displayName: "late" }),
          post(`/v1/rooms/${roomCode}/join`, await gw.token("p_chaos_late2"), {}),
          (async () => {
            const t0 = Date.now();
            const res = await fetch(`${gw.url}/v1/servers`, { signal: AbortSignal.timeout(HANG_MS) });
            const body = (await res.json().catch(() => undefined)) as unknown;
            return { status: res.status, body, ms: Date.now() - t0 };
          })(),
        ]);
        players.push(`guest sign-in ${others[0].status} in ${others[0].ms} ms, room join ${others[1].status} in ${others[1].ms} ms, /v1/servers ${others[2].status} in ${others[2].ms} ms`);
        for (const o of others) {
          expect(o.status).toBe(503);
          expect((o.body as { error?: { code?: unknown } }).error?.code).toBeString();
        }
        const sentBefore = seq;
        await waitFor(() => player.received.length >= sentBefore, 3_000, "relay frames during the outage", 20);
        const remaining = OUTAGE_MS - (Date.now() - downAt);
        if (remaining > 0) await Bun.sleep(remaining);
        const midOutage = seq;

        // After: Redis back from its AOF.
        await r.restart();
        const upAt = Date.now();
        await waitFor(async () => (await fetch(`${gw.url}/ready`, { signal: AbortSignal.timeout(2_000) })).status === 200, 5_000, "/ready 200 after Redis is back", 50);
        readyBackMs = Date.now() - upAt;
        await waitFor(() => player.received.length >= midOutage, 3_000, "relay frames after the outage", 20);
        expect(player.closeInfo).toBeUndefined();
        const inOrder = player.received.every((f, i) => f === `f${i}`);
        expect(inOrder).toBe(true);
        players.push(`relay: ${player.received.length} frames echoed in order, socket never closed`);

        expect(await gw.deps.queues.scaleUp.getJob(jobIds.scaleUp(requestId))).toBeDefined();
        const room = await fetch(`${gw.url}/v1/rooms/${roomCode}`, { headers: { authorization: `Bearer ${hostTok}` } });
        expect(room.status).toBe(200);
        const beat = await post("/v1/players/heartbeat", pTok, { sessionId: session.sessionId });
        expect(beat.status).toBe(204);
        players.push("job, room and session all there after");
        ok = readyBackMs <= 5_000;
      } catch (e) {
        players.push(`FAILED: ${e instanceof Error ? e.message : String(e)}`);
        throw e;
      } finally {
        clearInterval(ticker);
        player.ws.close();
        reportChaos({ scenario: "Redis killed + restarted (AOF)", done: `SIGKILL redis, ${OUTAGE_MS / 1000} s down, restart from AOF`, players: players.join("; "), recoveryMs: readyBackMs, ok });
      }
    },
    40_000,
  );
});
