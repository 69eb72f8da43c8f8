/**
 * The whole 4v4 private-lobby flow through REAL WebSocket connections: a real gateway
 * (createApp, JWT auth, the /v1/connect relay, room-event subscription), a real reference node
 * (relay mode), real Redis. Create a private lobby, invite, join with and without the password,
 * refuse outsiders at the socket, kick (4003, no rejoin), host leaves (migration), the match runs
 * and ends (result in the stream), restart vote, close (4004).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { CloseCode } from "../../core/errors.ts";
import { closedWithin, openSocket, startTestGateway, startTestNode, type TestGateway, type TestNode, type TestSocket } from "../support/gateway-fixtures.ts";
import { need, testRedis, waitFor, type TestRedis } from "../support/services.ts";

interface Player {
  id: string;
  token: string;
}

describe.skipIf(!need("redis"))("e2e: 4v4 private lobby over real WebSockets", () => {
  let tr: TestRedis;
  let gw: TestGateway;
  let node: TestNode;
  const sockets: TestSocket[] = [];

  beforeAll(async () => {
    tr = testRedis("lobby");
    gw = await startTestGateway(tr.prefix);
    node = await startTestNode(gw.deps, { roomMode: "relay" });
  });
  afterAll(async () => {
    for (const s of sockets) s.ws.close();
    await gw?.stop();
    await node?.stop();
    await tr?.cleanup();
  });

  const api = async (method: string, path: string, who: Player | null, body?: unknown) => {
    const res = await fetch(`${gw.url}${path}`, {
      method,
      headers: { ...(who ? { authorization: `Bearer ${who.token}` } : {}), ...(body !== undefined ? { "content-type": "application/json" } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON bodies are asserted field by field
    return { status: res.status, body: (await res.json()) as any };
  };

  /** The gateway listens on a random port; connectUrl is built from PORT/PUBLIC_URL, so swap the origin and keep path + query. */
  const socketFor = (p: Player, connectUrl: string) => {
    const u = new URL(connectUrl);
    expect(u.pathname).toBe("/v1/connect");
    const s = openSocket(`${gw.wsUrl}${u.pathname}${u.search}`, ["bearer", p.token]);
    sockets.push(s);
    return s;
  };
  const rawSocket = (p: Player, room: string, seat?: string) => {
    const s = openSocket(`${gw.wsUrl}/v1/connect?room=${room}${seat ? `&seat=${seat}` : ""}`, ["bearer", p.token]);
    sockets.push(s);
    return s;
  };

  test("create → invite → join (password / invite) → kick → host migration → match → result → restart vote → close", async () => {
    const players: Player[] = [];
    for (let i = 1; i <= 11; i++) players.push({ id: `p${i}`, token: await gw.token(`p${i}`) });
    const [host, p2, p3, p4, p5, p6, p7, p8, p9, p10, outsider] = players as [Player, Player, Player, Player, Player, Player, Player, Player, Player, Player, Player];

    // 1. A private lobby with a password.
    const created = await api("POST", "/v1/rooms", host, { visibility: "private", password: "hunter2", mode: "ctf", maxPlayers: 8 });
    expect(created.status).toBe(201);
    const code: string = created.body.code;
    expect(created.body).toMatchObject({ hostId: "p1", players: ["p1"], visibility: "private", state: "waiting" });
    const conns = new Map<string, TestSocket>();
    conns.set("p1", socketFor(host, created.body.connectUrl));

    // 2. Invited players join without the password; others need it.
    for (const p of [p2, p3]) expect((await api("POST", `/v1/rooms/${code}/invite`, host, { playerId: p.id })).status).toBe(200);
    for (const p of [p2, p3]) {
      const j = await api("POST", `/v1/rooms/${code}/join`, p, {});
      expect(j.status).toBe(200);
      conns.set(p.id, socketFor(p, j.body.connectUrl));
    }
    expect((await api("POST", `/v1/rooms/${code}/join`, p4, {})).body.error.code).toBe("WRONG_PASSWORD");
    expect((await api("POST", `/v1/rooms/${code}/join`, p4, { password: "wrong" })).status).toBe(403);
    for (const p of [p4, p5, p6, p7, p8]) {
      const j = await api("POST", `/v1/rooms/${code}/join`, p, { password: "hunter2" });
      expect(j.status).toBe(200);
      conns.set(p.id, socketFor(p, j.body.connectUrl));
    }
    await Promise.all([...conns.values()].map((s) => s.opened));
    expect((await api("POST", `/v1/rooms/${code}/join`, p9, { password: "hunter2" })).body.error.code).toBe("ROOM_FULL");

    // Frames flow through the relay to the room's other players.
    conns.get("p1")!.ws.send("gl hf");
    await conns.get("p8")!.waitMessages(1);
    expect(conns.get("p8")!.messages[0]).toBe("gl hf");

    // 3. Knowing the code is not enough: no seat, or someone else's seat token → 4003.
    const noSeat = rawSocket(outsider, code);
    expect((await closedWithin(noSeat)).code).toBe(CloseCode.NOT_SEATED);
    const stolen = rawSocket(outsider, code, new URL(created.body.connectUrl).searchParams.get("seat")!);
    expect((await closedWithin(stolen)).code).toBe(CloseCode.NOT_SEATED);

    // 4. Kick p8: its socket closes 4003 and it cannot come back.
    const p8Seat = new URL((await api("POST", `/v1/rooms/${code}/join`, p8, {})).body.connectUrl).searchParams.get("seat")!;
    expect((await api("POST", `/v1/rooms/${code}/kick`, p2, { playerId: "p8" })).body.error.code).toBe("NOT_HOST");
    expect((await api("POST", `/v1/rooms/${code}/kick`, host, { playerId: "p8" })).status).toBe(200);
    expect((await closedWithin(conns.get("p8")!)).code).toBe(CloseCode.NOT_SEATED);
    conns.delete("p8");
    expect((await api("POST", `/v1/rooms/${code}/join`, p8, { password: "hunter2" })).body.error.code).toBe("KICKED");
    expect((await closedWithin(rawSocket(p8, code, p8Seat))).code).toBe(CloseCode.NOT_SEATED);
    // A private room with a free seat still refuses a seatless outsider.
    expect((await closedWithin(rawSocket(outsider, code))).code).toBe(CloseCode.NOT_SEATED);

    // 5. The host leaves: the longest-seated player (p2) becomes host.
    const left = await api("POST", `/v1/rooms/${code}/leave`, host);
    expect(left.body).toMatchObject({ closed: false, hostId: "p2" });
    conns.get("p1")!.ws.close();
    conns.delete("p1");
    const newHost = p2;
    expect((await api("POST", `/v1/rooms/${code}/kick`, host, { playerId: "p3" })).status).toBe(403);
    for (const p of [p9, p10]) {
      await api("POST", `/v1/rooms/${code}/invite`, newHost, { playerId: p.id });
      const j = await api("POST", `/v1/rooms/${code}/join`, p, {});
      expect(j.status).toBe(200);
      conns.set(p.id, socketFor(p, j.body.connectUrl));
    }
    await Promise.all([...conns.values()].map((s) => s.opened));
    const room = (await api("GET", `/v1/rooms/${code}`, newHost)).body;
    expect(room.players).toEqual(["p2", "p3", "p4", "p5", "p6", "p7", "p9", "p10"]);
    expect(room.hostId).toBe("p2");
    expect(room.nodeId).toBe(node.record.id);

    // 6. The match: start → active → end with results; the result lands in the stream.
    expect((await api("POST", `/v1/rooms/${code}/start`, newHost)).body.state).toBe("starting");
    expect((await api("POST", `/v1/rooms/${code}/activate`, newHost)).body.state).toBe("active");
    await Bun.sleep(50);
    const teams = [room.players.slice(0, 4), room.players.slice(4)];
    const ended = await api("POST", `/v1/rooms/${code}/end`, newHost, { results: { teams, scores: [5, 3], reason: "score_limit" } });
    expect(ended.body.state).toBe("ending");
    expect(ended.body.durationMs).toBeGreaterThanOrEqual(50);
    const entries = (await tr.redis.xrange(tr.keys.matchResults, "-", "+")) as [string, string[]][];
    expect(entries).toHaveLength(1);
    const fields = entries[0]![1];
    const get = (k: string) => fields[fields.indexOf(k) + 1];
    expect(get("room")).toBe(code);
    expect(JSON.parse(get("results")!)).toEqual({ teams, scores: [5, 3], reason: "score_limit" });
    expect(Number(get("durationMs"))).toBe(ended.body.durationMs);

    // 7. Restart vote: p10 leaves, the 7 who stay all vote → back to waiting for match 2.
    for (const p of [p2, p3, p4, p5, p6, p7]) expect((await api("POST", `/v1/rooms/${code}/restart`, p)).body.restarted).toBe(false);
    expect((await api("POST", `/v1/rooms/${code}/restart`, p9)).body.restarted).toBe(false);
    const leave = await api("POST", `/v1/rooms/${code}/leave`, p10);
    expect(leave.body.restarted).toBe(true);
    conns.get("p10")!.ws.close();
    conns.delete("p10");
    expect((await api("GET", `/v1/rooms/${code}`, newHost)).body).toMatchObject({ state: "waiting", matchNumber: 2 });

    // Sockets stayed up through the restart.
    conns.get("p3")!.ws.send("rematch");
    await conns.get("p9")!.waitMessages(1);

    // 8. The host closes the room: every socket closes 4004 and the code cannot be reused as ad hoc.
    expect((await api("POST", `/v1/rooms/${code}/close`, newHost)).body.state).toBe("completed");
    const closes = await Promise.all([...conns.values()].map((s) => closedWithin(s)));
    for (const c of closes) expect(c.code).toBe(CloseCode.UNKNOWN_ROOM);
    expect((await closedWithin(rawSocket(p3, code))).code).toBe(CloseCode.UNKNOWN_ROOM);
    await waitFor(async () => (await tr.redis.get(tr.keys.roomNode(code))) === null, 2000, "placement released");
  }, 30_000);
});
