/**
 * Matchmaking end to end: 8 players queue through the real gateway's HTTP API, the BullMQ
 * matchmaker places them, and every player connects to the matched room over a real WebSocket with
 * the seat token from its ticket; someone without a seat is refused.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { realClock } from "../../core/clock.ts";
import { CloseCode } from "../../core/errors.ts";
import { silentLogger } from "../../core/log.ts";
import { startMatchmaker } from "../../scheduler/matchmaker/index.ts";
import { closedWithin, openSocket, startTestGateway, startTestNode, type TestGateway, type TestNode, type TestSocket } from "../support/gateway-fixtures.ts";
import { need, testRedis, waitFor, type TestRedis } from "../support/services.ts";

describe.skipIf(!need("redis"))("e2e: matchmaking to a room over real WebSockets", () => {
  let tr: TestRedis;
  let gw: TestGateway;
  let node: TestNode;
  let matchmaker: { close(): Promise<void> } | undefined;
  const sockets: TestSocket[] = [];

  beforeAll(async () => {
    tr = testRedis("lobbymm");
    gw = await startTestGateway(tr.prefix, { matchmakerIntervalMs: 50 });
    node = await startTestNode(gw.deps, { roomMode: "relay" });
    matchmaker = await startMatchmaker({ ...gw.deps, newRedis: () => tr.connect(), clock: realClock, log: silentLogger });
  });
  afterAll(async () => {
    for (const s of sockets) s.ws.close();
    await matchmaker?.close();
    await gw?.stop();
    await node?.stop();
    await tr?.cleanup();
  });

  test("8 tickets → one 4v4 room; every player connects with its ticket's seat token", async () => {
    const players = await Promise.all(Array.from({ length: 8 }, async (_, i) => ({ id: `mm${i}`, token: await gw.token(`mm${i}`) })));
    const req = async (method: string, path: string, token: string, body?: unknown) => {
      const res = await fetch(`${gw.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
      // eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON bodies are asserted field by field
      return { status: res.status, body: (await res.json()) as any };
    };
    const tickets = new Map<string, string>();
    for (const p of players) {
      const r = await req("POST", "/v1/matchmaking/tickets", p.token, { mode: "ctf", rating: 1000 + Number(p.id.slice(2)) * 50 });
      expect(r.status).toBe(201);
      tickets.set(p.id, r.body.ticketId);
    }
    // Someone else's ticket is neither readable nor cancellable.
    expect((await req("GET", `/v1/matchmaking/tickets/${tickets.get("mm0")}`, players[1]!.token)).status).toBe(404);
    expect((await req("DELETE", `/v1/matchmaking/tickets/${tickets.get("mm0")}`, players[1]!.token)).status).toBe(403);

    const results = await waitFor(
      async () => {
        const all = await Promise.all(players.map((p) => req("GET", `/v1/matchmaking/tickets/${tickets.get(p.id)}`, p.token)));
        return all.every((r) => r.body.status === "matched") ? all.map((r) => r.body) : null;
      },
      5000,
      "all tickets matched",
      50,
    );
    const code = results[0].roomCode as string;
    expect(new Set(results.map((r) => r.roomCode))).toEqual(new Set([code]));
    expect(results.filter((r) => r.team === 0)).toHaveLength(4);

    players.forEach((p, i) => {
      const u = new URL(results[i].connectUrl as string);
      expect(u.searchParams.get("room")).toBe(code);
      const s = openSocket(`${gw.wsUrl}${u.pathname}${u.search}`, ["bearer", p.token]);
      sockets.push(s);
    });
    await Promise.all(sockets.map((s) => s.opened));
    sockets[0]!.ws.send("matched!");
    await sockets[7]!.waitMessages(1);
    expect(sockets[7]!.messages[0]).toBe("matched!");

    const outsider = openSocket(`${gw.wsUrl}/v1/connect?room=${code}`, ["bearer", await gw.token("nobody")]);
    sockets.push(outsider);
    expect((await closedWithin(outsider)).code).toBe(CloseCode.NOT_SEATED);
  }, 20_000);
});
