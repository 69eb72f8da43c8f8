/**
 * The reference node's `POST /drain {deadlineSeconds}` (node contract, optional; issue 11 "drain as
 * a contract"): token first, bad input 400, then every player gets the notice, new players are
 * refused, and whoever is left is closed 4009 at the deadline — told once, the first deadline holds.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { drainNotice, startNodeServer, type NodeServer } from "../../node/server.ts";
import { connectPlayer, type TestPlayer } from "../support/node-harness.ts";

const TOKEN = "drain-token";
let servers: NodeServer[] = [];
let players: TestPlayer[] = [];

afterEach(async () => {
  for (const p of players) p.close();
  await Promise.all(servers.map((s) => s.stop()));
  servers = [];
  players = [];
});

function serve(): NodeServer {
  const s = startNodeServer({ nodeId: "d1", port: 0, hostname: "127.0.0.1", maxRooms: 10, maxPlayers: 10, token: TOKEN, roomMode: "relay", closeGraceMs: 300, version: "v7" });
  servers.push(s);
  return s;
}
const post = (s: NodeServer, body: unknown, token: string | null = TOKEN) =>
  fetch(`http://127.0.0.1:${s.port}/drain`, { method: "POST", headers: { "content-type": "application/json", ...(token === null ? {} : { "x-node-token": token }) }, body: typeof body === "string" ? body : JSON.stringify(body) });

describe("node POST /drain", () => {
  test("token first, bad input 400, GET refused; /health shows the version", async () => {
    const s = serve();
    expect((await post(s, { deadlineSeconds: 1 }, null)).status).toBe(401);
    expect((await post(s, { deadlineSeconds: 1 }, "wrong")).status).toBe(401);
    for (const bad of ["{", { deadlineSeconds: -1 }, { deadlineSeconds: "1" }, {}, { deadlineSeconds: 1e9 }]) expect((await post(s, bad)).status).toBe(400);
    expect((await fetch(`http://127.0.0.1:${s.port}/drain`)).status).toBe(405);
    expect(s.state()).toBe("ready");
    expect(((await (await fetch(`http://127.0.0.1:${s.port}/health`)).json()) as { version: string }).version).toBe("v7");
  });

  test("players get the notice, newcomers are refused, the rest are closed 4009 at the deadline", async () => {
    const s = serve();
    const a = await connectPlayer({ host: "127.0.0.1", port: s.port }, "room-1", { token: TOKEN, playerId: "a", playerName: "a" });
    const b = await connectPlayer({ host: "127.0.0.1", port: s.port }, "room-1", { token: TOKEN, playerId: "b", playerName: "b" });
    players.push(a, b);
    const t0 = Date.now();
    const res = await post(s, { deadlineSeconds: 0.6 });
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ state: "draining", deadlineSeconds: 0.6, players: 2 });
    for (const p of [a, b]) expect(await p.next(2000)).toBe(drainNotice(0.6));
    expect(s.state()).toBe("draining");
    // Told again (a resumed drain): no second notice, the first deadline holds.
    expect((await post(s, { deadlineSeconds: 30 })).status).toBe(202);
    await expect(connectPlayer({ host: "127.0.0.1", port: s.port }, "room-2", { token: TOKEN, playerId: "c", playerName: "c" }, 1000)).rejects.toThrow();
    const [ca, cb] = await Promise.all([a.closed, b.closed]);
    const ms = Date.now() - t0;
    expect(ca.code).toBe(4009);
    expect(cb.code).toBe(4009);
    expect(ms).toBeGreaterThanOrEqual(550);
    expect(ms).toBeLessThan(1_500);
    expect(a.pending.length + b.pending.length).toBe(0); // one notice each, nothing else
  });
});
