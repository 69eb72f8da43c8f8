/**
 * The client SDK against a real gateway, real Redis and real reference nodes: guest sign-in,
 * join, heartbeats, token refresh, reconnect after the node is killed, clean leave.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { FleetgateClient, FleetgateError, type RoomEvents } from "../../sdk/client/src/index.ts";
import { startTestGateway, startTestNode, type TestGateway, type TestNode } from "../support/gateway-fixtures.ts";
import { need, testRedis, waitFor, type TestRedis } from "../support/services.ts";

describe.skipIf(!need("redis"))("client SDK end to end", () => {
  let tr: TestRedis;
  let gw: TestGateway;
  const nodes: TestNode[] = [];

  beforeAll(async () => {
    tr = testRedis("gwsdk");
    // RESUME=false: this suite tests the SDK's reconnect after a 4009 (resume: gateway-resume.test.ts).
    gw = await startTestGateway(tr.prefix, { heartbeatIntervalMs: 200, sessionTtlMs: 600, jwtTtlMs: 2000, reconnectDelayMs: 100, resume: false });
    nodes.push(await startTestNode(gw.deps, { capacity: 1, roomMode: "echo" }), await startTestNode(gw.deps, { capacity: 1, roomMode: "echo" }));
  });
  afterAll(async () => {
    await gw?.stop();
    for (const n of nodes) await n.stop();
    await tr?.cleanup();
  });

  test("join, relay, survive a killed node by reconnecting, refresh the token, leave", async () => {
    const client = new FleetgateClient({ baseUrl: gw.url, backoff: { initialMs: 50, maxMs: 400 } });
    const tokens: string[] = [];
    client.on("token", (t) => tokens.push(t.token));
    await client.signInAsGuest({ displayName: "sdk" });
    const session = await client.join();
    const room = client.connect();
    const messages: (string | ArrayBuffer)[] = [];
    const closes: RoomEvents["close"][] = [];
    room.on("message", (m) => messages.push(m));
    room.on("close", (c) => closes.push(c));
    room.send("queued before open"); // delivered on open, in order
    await room.once("open");
    room.send("ping");
    await waitFor(() => messages.length >= 2, 2000, "echoes");
    expect(messages.slice(0, 2)).toEqual(["queued before open", "ping"]);

    // Kill the room's node. The client is told 4009; reconnects fail (1011) until the fleet
    // notices — here we do what the scheduler's health check does and mark the node unhealthy.
    const first = nodes.find((n) => n.record.id === session.nodeId)!;
    const reopened = room.once("open");
    await first.stop();
    await waitFor(() => closes.some((c) => c.code === 4009 && c.willReconnect), 2000, "4009 close");
    await gw.deps.nodes.transition(first.record.id, "unhealthy", Date.now(), { reason: "test: health checks failed" });
    expect((await reopened).reconnect).toBe(true);
    const now = await gw.deps.placement.nodeForRoom(session.roomCode);
    expect(now?.id).not.toBe(first.record.id);
    const before = messages.length;
    room.send(new Uint8Array([1, 2, 3]));
    await waitFor(() => messages.length > before, 2000, "echo after reconnect");
    expect(new Uint8Array(messages[before] as ArrayBuffer)).toEqual(new Uint8Array([1, 2, 3]));

    // Heartbeats kept the session alive past SESSION_TTL (600 ms), and the token was refreshed
    // before its 2 s life ran out.
    await Bun.sleep(1200);
    expect(await gw.deps.redis.zscore(gw.deps.keys.sessions, session.sessionId)).not.toBeNull();
    expect(tokens.length).toBeGreaterThanOrEqual(2);
    expect(await gw.deps.auth.verify(client.accessToken)).not.toBeNull();

    await client.leave();
    expect(closes.at(-1)).toMatchObject({ code: 1000, willReconnect: false });
    expect(await gw.deps.redis.zscore(gw.deps.keys.sessions, session.sessionId)).toBeNull();
    const err = await client.request("POST", "/v1/players/heartbeat", { sessionId: session.sessionId }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FleetgateError);
    expect((err as FleetgateError).code).toBe("SESSION_NOT_FOUND");
    client.close();
  }, 20_000);

  test("a refused token (4001) is refreshed once, then the socket opens", async () => {
    const guest = new FleetgateClient({ baseUrl: gw.url });
    const g = await guest.signInAsGuest();
    guest.close();
    // A client holding an expired access token but a valid refresh token.
    const expired = await gw.token(g.playerId, ["player"], -10_000);
    const client = new FleetgateClient({ baseUrl: gw.url, token: expired, refreshToken: g.refreshToken });
    const room = client.connect(`${gw.wsUrl}/v1/connect?room=sdk-refresh`);
    const closes: number[] = [];
    const opens: boolean[] = [];
    room.on("close", (c) => closes.push(c.code));
    room.on("open", (o) => opens.push(o.reconnect));
    const messages: unknown[] = [];
    room.on("message", (m) => messages.push(m));
    // The refusal upgrades, then closes 4001; the SDK refreshes and the second socket stays open.
    await waitFor(() => closes.includes(4001) && opens.length === 2, 3000, "refresh and reopen");
    room.send("after refresh");
    await waitFor(() => messages.length === 1, 2000, "echo");
    expect(closes).toEqual([4001]);
    expect(await gw.deps.auth.verify(client.accessToken)).not.toBeNull();
    client.close();
  });
});
