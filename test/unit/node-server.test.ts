/** The node server in-process (loopback sockets only): the edges the driver suites do not reach. */
import { afterEach, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { connect } from "node:net";
import { drainCloseReason, pathOf, startNodeServer, tokenMatches, type NodeServer, type NodeServerOptions } from "../../node/server.ts";
import { connectPlayer, frameBytes, getHealth, upgradeStatus, type TestPlayer } from "../support/node-harness.ts";

const TOKEN = "unit-token";
let servers: NodeServer[] = [];
let players: TestPlayer[] = [];

function serve(over: Partial<NodeServerOptions> = {}): NodeServer {
  const s = startNodeServer({ nodeId: "u1", port: 0, hostname: "127.0.0.1", maxRooms: 10, maxPlayers: 10, token: TOKEN, roomMode: "relay", closeGraceMs: 300, ...over });
  servers.push(s);
  return s;
}
const addr = (s: NodeServer) => ({ host: "127.0.0.1", port: s.port });
async function join(s: NodeServer, room: string, id: string): Promise<TestPlayer> {
  const p = await connectPlayer(addr(s), room, { token: TOKEN, playerId: id, playerName: id });
  players.push(p);
  return p;
}

afterEach(async () => {
  for (const p of players) p.close();
  await Promise.all(servers.map((s) => s.stop()));
  servers = [];
  players = [];
});

describe("node server", () => {
  test("an HTTP/1.0 health check without Host (HAProxy's default) answers 200 JSON, not Bun's error page", async () => {
    const s = serve();
    const raw = await new Promise<string>((resolve, reject) => {
      const sock = connect(s.port, "127.0.0.1", () => sock.write("GET /health HTTP/1.0\r\n\r\n"));
      let buf = "";
      sock.on("data", (d) => (buf += d.toString()));
      sock.on("end", () => resolve(buf));
      sock.on("error", reject);
      setTimeout(() => (sock.destroy(), resolve(buf)), 2000);
    });
    expect(raw.split("\r\n")[0]).toBe("HTTP/1.1 200 OK");
    expect(raw).toContain('"state":"ready"');
    expect(raw).not.toContain("<html");
    expect(pathOf("/rooms/abcd?x=1")).toBe("/rooms/abcd");
    expect(pathOf("http://h/health#f")).toBe("/health");
    expect(pathOf("::bad::")).toBe("");
  });

  test("HTTP edges: JSON errors, no stack, no 500", async () => {
    const s = serve();
    const base = `http://127.0.0.1:${s.port}`;
    const nf = await fetch(`${base}/nope`);
    expect(nf.status).toBe(404);
    expect(await nf.json()).toEqual({ error: { code: "NOT_FOUND", message: "unknown path" } });
    expect((await fetch(`${base}/health`, { method: "POST" })).status).toBe(405);
    const plain = await fetch(`${base}/rooms/abcd`, { headers: { "X-Node-Token": TOKEN, "X-Player-Id": "p" } });
    expect(plain.status).toBe(426);
    const bad = await fetch(`${base}/rooms/${"x".repeat(33)}`, { headers: { "X-Node-Token": TOKEN } });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe("BAD_ROOM_CODE");
    expect(await getHealth(addr(s))).toEqual({ state: "ready", rooms: 0, players: 0, nodeId: "u1", version: "dev" } as never);
  });

  test("racing upgrades for the last seats: exactly MAX_PLAYERS get in", async () => {
    const s = serve({ maxPlayers: 2 });
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) => upgradeStatus(addr(s), "/rooms/race", { token: TOKEN, playerId: `p${i}`, playerName: `p${i}` })),
    );
    expect(results.filter((r) => r === 101).length).toBe(2);
    expect(results.filter((r) => r === 503).length).toBe(4);
    // The accepted sockets were closed right after their 101: the seats come back.
    for (let i = 0; i < 100 && s.health().players > 0; i++) await Bun.sleep(20);
    expect(s.health()).toMatchObject({ players: 0, rooms: 0 });
  });

  test("racing upgrades for the last room: exactly MAX_ROOMS rooms open", async () => {
    const s = serve({ maxRooms: 3 });
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => upgradeStatus(addr(s), `/rooms/room-${i}`, { token: TOKEN, playerId: `p${i}` })));
    expect(results.filter((r) => r === 101).length).toBe(3);
  });

  test("a 1 MiB binary frame is relayed intact", async () => {
    const s = serve();
    const a = await join(s, "big-room", "a");
    const b = await join(s, "big-room", "b");
    const big = crypto.getRandomValues(new Uint8Array(1024 * 1024));
    a.ws.send(big);
    expect(frameBytes(await b.next(5000))).toEqual(big);
  });

  test("a player that stops reading is closed at the backpressure limit rather than skipped", async () => {
    const s = serve({ backpressureLimitBytes: 64 * 1024 });
    // A raw socket that upgrades and then stops reading: its kernel buffers fill, then the node's.
    const slow = connect(s.port, "127.0.0.1");
    await new Promise<void>((r) => slow.once("connect", () => r()));
    slow.write(
      ["GET /rooms/slow-room HTTP/1.1", `Host: 127.0.0.1:${s.port}`, "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", `X-Node-Token: ${TOKEN}`, "X-Player-Id: slow", "", ""].join("\r\n"),
    );
    await new Promise<void>((r) => slow.once("data", () => r()));
    slow.pause();
    try {
      const fast = await join(s, "slow-room", "fast");
      const chunk = new Uint8Array(64 * 1024);
      // Bounded: at most 400 × 64 KiB.
      for (let i = 0; i < 400 && s.health().players === 2; i++) {
        fast.ws.send(chunk);
        await Bun.sleep(1);
      }
      expect(s.health().players).toBe(1);
    } finally {
      slow.destroy();
    }
  });

  test("drain ends early when the rooms empty on their own: no 4009", async () => {
    const s = serve();
    const a = await join(s, "leave-room", "a");
    const t0 = performance.now();
    const drained = s.drain(10_000);
    expect(s.state()).toBe("draining");
    expect(await upgradeStatus(addr(s), "/rooms/leave-room", { token: TOKEN, playerId: "late" })).toBe(503);
    a.ws.close(1000, "bye");
    await drained;
    expect(performance.now() - t0).toBeLessThan(2000);
    expect((await a.closed).code).toBe(1000);
    expect(s.drain(10_000)).toBe(drained); // the same drain
  });

  test("drain with a zero deadline closes everyone with 4009 at once, naming the reconnect delay", async () => {
    const s = serve({ reconnectDelayMs: 2500 });
    const a = await join(s, "now-room", "a");
    const b = await join(s, "now-room-2", "b");
    await s.drain(0);
    for (const p of [a, b]) expect(await p.closed).toEqual({ code: 4009, reason: drainCloseReason(2500) });
    expect(drainCloseReason(2500)).toBe("node draining; reconnect after 2500 ms");
    expect(s.health()).toMatchObject({ state: "draining", rooms: 0, players: 0 });
  });

  test("stop is idempotent and frees the port", async () => {
    const s = serve();
    await s.stop();
    await s.stop();
    expect(await getHealth(addr(s), 300)).toBeUndefined();
  });
});

describe("tokenMatches", () => {
  const digest = createHash("sha256").update("secret").digest();
  const cases: Array<[string | null, boolean]> = [
    ["secret", true],
    ["secret ", false],
    ["Secret", false],
    ["", false],
    [null, false],
    ["x".repeat(10_000), false],
  ];
  for (const [given, want] of cases) test(`${JSON.stringify(given?.slice(0, 12))} → ${want}`, () => expect(tokenMatches(digest, given)).toBe(want));
});
