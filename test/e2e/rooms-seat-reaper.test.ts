/**
 * The seat reaper end to end (issue 6): a real gateway (createApp, JWT, the /v1/connect relay and
 * its presence writes), a real reference node, real Redis and real WebSocket clients. A socket's
 * close starts a seat's absence clock, a reconnect stops it, and the sweep the scheduler runs
 * frees only a seat whose player stayed away for ROOM_SEAT_GRACE (small here: 300 ms).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { realClock } from "../../core/clock.ts";
import { silentLogger } from "../../core/log.ts";
import { startReplicaHeartbeat, type ReplicaPresence } from "../../gateway/ops/replica.ts";
import { sweepAbsentSeats } from "../../model/rooms/seat-reaper.ts";
import { openSocket, startTestGateway, startTestNode, type TestGateway, type TestNode, type TestSocket } from "../support/gateway-fixtures.ts";
import { need, testRedis, waitFor, type TestRedis } from "../support/services.ts";

const GRACE_MS = 300;

describe.skipIf(!need("redis"))("e2e: absent seats are reaped over real WebSockets", () => {
  let tr: TestRedis;
  let gw: TestGateway;
  let node: TestNode;
  let replica: ReplicaPresence | undefined;
  const sockets: TestSocket[] = [];

  beforeAll(async () => {
    tr = testRedis("seatreap-e2e");
    gw = await startTestGateway(tr.prefix, { roomSeatGraceMs: GRACE_MS });
    node = await startTestNode(gw.deps, { roomMode: "relay" });
    // As gateway/main.ts does: a live replica heartbeats, so the sweep keeps its sockets' presence.
    replica = await startReplicaHeartbeat(gw.deps.gateways, { id: gw.deps.gatewayId, host: "127.0.0.1", port: gw.port, startedAt: Date.now() }, { clock: realClock, intervalMs: gw.deps.config.gatewayHeartbeatMs, log: silentLogger });
  });
  afterAll(async () => {
    for (const s of sockets) s.ws.close();
    await replica?.stop();
    await gw?.stop();
    await node?.stop();
    await tr?.cleanup();
  });

  const api = async (method: string, path: string, token: string, body?: unknown) => {
    const res = await fetch(`${gw.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON bodies are asserted field by field
    return { status: res.status, body: (await res.json()) as any };
  };
  const connect = async (token: string, code: string) => {
    const s = openSocket(`${gw.wsUrl}/v1/connect?room=${code}`, ["bearer", token]);
    sockets.push(s);
    await s.opened;
    return s;
  };
  const absentSince = async (code: string, player: string) => {
    const s = await tr.redis.zscore(tr.keys.roomAbsences, `${code}|${player}`);
    return s === null ? null : Number(s);
  };
  const sweep = () => sweepAbsentSeats({ redis: tr.redis, keys: tr.keys, config: gw.deps.config }, Date.now());
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  test("a socket's close starts the clock, a reconnect stops it; only a seat away for the grace is freed", async () => {
    const host = await gw.token("host1");
    const bob = await gw.token("bob1");
    const created = await api("POST", "/v1/rooms", host, { visibility: "public", mode: "reap" });
    expect(created.status).toBe(201);
    const code: string = created.body.code;
    expect(await absentSince(code, "host1")).not.toBeNull();
    await connect(host, code);
    await waitFor(async () => (await absentSince(code, "host1")) === null, 3000, "host present");

    expect((await api("POST", `/v1/rooms/${code}/join`, bob, {})).status).toBe(200);
    const joinedAt = await absentSince(code, "bob1");
    expect(joinedAt).not.toBeNull();
    let bobSocket = await connect(bob, code);
    await waitFor(async () => (await absentSince(code, "bob1")) === null, 3000, "bob present");

    // A real close starts the clock...
    const beforeClose = Date.now();
    bobSocket.ws.close(1000, "bye");
    const since = await waitFor(() => absentSince(code, "bob1"), 3000, "bob absent after close");
    expect(since).toBeGreaterThanOrEqual(beforeClose - 5);

    // ...and a reconnect inside the grace stops it: a sweep after the grace finds nothing.
    bobSocket = await connect(bob, code);
    await waitFor(async () => (await absentSince(code, "bob1")) === null, 3000, "bob present again");
    await sleep(GRACE_MS + 100);
    expect((await sweep()).reaped).toEqual([]);
    expect((await api("GET", `/v1/rooms/${code}`, host)).body.players).toEqual(["host1", "bob1"]);

    // Gone for good: freed once the grace has passed since the close, not before.
    bobSocket.ws.close(1000, "bye for good");
    const since2 = await waitFor(() => absentSince(code, "bob1"), 3000, "bob absent again");
    if (Date.now() - since2 < GRACE_MS - 50) expect((await sweep()).reaped).toEqual([]);
    await sleep(Math.max(0, since2 + GRACE_MS - Date.now()) + 20);
    const r = await sweep();
    expect(r.reaped).toEqual([{ code, playerId: "bob1", since: since2 }]);
    const room = (await api("GET", `/v1/rooms/${code}`, host)).body;
    expect(room.players).toEqual(["host1"]);
    expect(room.state).toBe("waiting");
  });
});
