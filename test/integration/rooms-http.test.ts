/** Rooms over HTTP (app.handle) against a real Redis: lobby, seats, invites, kicks, host, states. */
import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import { Elysia } from "elysia";
import { FakeClock } from "../../core/clock.ts";
import { CloseCode } from "../../core/errors.ts";
import type { RoomEvent } from "../../core/types.ts";
import { roomsRoutes } from "../../gateway/rooms/routes.ts";
import { createSeatChecker } from "../../model/rooms/seat-check.ts";
import { call, roomsDeps, type Handler } from "../support/rooms-harness.ts";
import { need, testRedis, waitFor, type TestRedis } from "../support/services.ts";

describe.skipIf(!need("redis"))("rooms HTTP + Redis", () => {
  const trs: TestRedis[] = [];
  let tr: TestRedis;
  let clock: FakeClock;
  let deps: ReturnType<typeof roomsDeps>;
  let app: Handler;

  beforeEach(() => {
    tr = testRedis("rooms");
    trs.push(tr);
    clock = new FakeClock();
    deps = roomsDeps(tr, clock);
    app = new Elysia().use(roomsRoutes(deps));
  });
  afterAll(async () => {
    for (const t of trs) await t.cleanup();
  });

  const create = async (host: string, body: Record<string, unknown>) => {
    const r = await call(app, "POST", "/v1/rooms", host, body);
    expect(r.status).toBe(201);
    return r.body;
  };

  test("create: caller is host and seated; GET shows the contract fields; no password hash leaks", async () => {
    const room = await create("alice", { visibility: "public", mode: "ctf", password: "pw" });
    expect(room.code).toMatch(/^[A-HJ-KM-NP-Z2-9]{6}$/);
    expect(room.seatToken).toBeString();
    expect(room.connectUrl).toBe(`ws://localhost/v1/connect?room=${room.code}&seat=${room.seatToken}`);
    const got = await call(app, "GET", `/v1/rooms/${room.code}`, "bob");
    expect(got.status).toBe(200);
    for (const k of ["code", "mode", "region", "visibility", "state", "players", "maxPlayers", "hostId", "nodeId"]) expect(got.body).toHaveProperty(k);
    expect(got.body).toMatchObject({ mode: "ctf", region: "local", visibility: "public", state: "waiting", players: ["alice"], maxPlayers: 8, hostId: "alice", nodeId: null, hasPassword: true });
    expect(JSON.stringify(got.body)).not.toContain("argon");
    expect(got.body.passwordHash).toBeUndefined();
  });

  test("bad input gets the contract error shape", async () => {
    const cases: [string, string, string | null, unknown, number, string][] = [
      ["POST", "/v1/rooms", null, { visibility: "public" }, 401, "TOKEN_MISSING"],
      ["POST", "/v1/rooms", "alice", { visibility: "secret" }, 400, "VALIDATION"],
      ["POST", "/v1/rooms", "alice", { visibility: "public", maxPlayers: 0 }, 400, "VALIDATION"],
      ["POST", "/v1/rooms", "alice", { visibility: "public", maxPlayers: 2.5 }, 400, "VALIDATION"],
      // Larger than one node accepts (NODE_MAX_PLAYERS, 8 by default): the room could never fill.
      ["POST", "/v1/rooms", "alice", { visibility: "public", maxPlayers: 9 }, 400, "VALIDATION"],
      ["POST", "/v1/rooms", "alice", { visibility: "public", mode: "a|b" }, 400, "VALIDATION"],
      ["POST", "/v1/rooms", "alice", { visibility: "public", settings: [1] }, 400, "VALIDATION"],
      ["POST", "/v1/rooms", "alice", [1, 2], 400, "VALIDATION"],
      ["GET", "/v1/rooms/abc", "alice", undefined, 400, "INVALID_ROOM_CODE"],
      ["GET", `/v1/rooms/${"x".repeat(33)}`, "alice", undefined, 400, "INVALID_ROOM_CODE"],
      ["GET", "/v1/rooms/ab%20cd", "alice", undefined, 400, "INVALID_ROOM_CODE"],
      ["GET", "/v1/rooms/room%3Ax", "alice", undefined, 400, "INVALID_ROOM_CODE"],
      ["GET", "/v1/rooms/NOSUCHROOM", "alice", undefined, 404, "ROOM_NOT_FOUND"],
      ["POST", "/v1/rooms/NOSUCHROOM/join", "alice", {}, 404, "ROOM_NOT_FOUND"],
      ["GET", "/v1/rooms?mode=a:b", "alice", undefined, 400, "VALIDATION"],
      ["POST", "/v1/rooms", "player:bad@id", { visibility: "public" }, 403, "INVALID_PLAYER_ID"],
      ["POST", "/v1/rooms", "bogus:token", { visibility: "public" }, 401, "TOKEN_INVALID"],
    ];
    for (const [method, path, who, body, status, code] of cases) {
      const r = await call(app, method, path, who, body);
      expect({ path, body, status: r.status, code: r.body?.error?.code }).toEqual({ path, body, status, code });
      expect(typeof r.body.error.message).toBe("string");
    }
    const badJson = await call(app, "POST", "/v1/rooms", "alice", undefined, "{not json");
    expect(badJson.status).toBe(400);
    expect(badJson.body.error.code).toBeString();
  });

  test("join: public room, idempotent second join, WRONG_PASSWORD, ROOM_FULL", async () => {
    const open = await create("alice", { visibility: "public", maxPlayers: 3 });
    const j1 = await call(app, "POST", `/v1/rooms/${open.code}/join`, "bob", {});
    expect(j1.status).toBe(200);
    expect(j1.body).toMatchObject({ roomCode: open.code, alreadySeated: false });
    expect(j1.body.connectUrl).toBe(`ws://localhost/v1/connect?room=${open.code}&seat=${j1.body.seatToken}`);
    const again = await call(app, "POST", `/v1/rooms/${open.code}/join`, "bob");
    expect(again.status).toBe(200);
    expect(again.body.alreadySeated).toBe(true);
    expect(again.body.seatToken).not.toBe(j1.body.seatToken);
    expect((await call(app, "POST", `/v1/rooms/${open.code}/join`, "carol")).status).toBe(200);
    const full = await call(app, "POST", `/v1/rooms/${open.code}/join`, "dave");
    expect([full.status, full.body.error.code]).toEqual([409, "ROOM_FULL"]);

    const locked = await create("alice", { visibility: "public", password: "s3cret" });
    const none = await call(app, "POST", `/v1/rooms/${locked.code}/join`, "bob", {});
    expect([none.status, none.body.error.code]).toEqual([403, "WRONG_PASSWORD"]);
    const wrong = await call(app, "POST", `/v1/rooms/${locked.code}/join`, "bob", { password: "nope" });
    expect([wrong.status, wrong.body.error.code]).toEqual([403, "WRONG_PASSWORD"]);
    const right = await call(app, "POST", `/v1/rooms/${locked.code}/join`, "bob", { password: "s3cret" });
    expect(right.status).toBe(200);
  });

  test("private rooms: invite or password; the code alone is not enough", async () => {
    const priv = await create("alice", { visibility: "private" });
    const outsider = await call(app, "POST", `/v1/rooms/${priv.code}/join`, "mallory", {});
    expect([outsider.status, outsider.body.error.code]).toEqual([403, "NOT_INVITED"]);
    expect((await call(app, "GET", `/v1/rooms/${priv.code}`, "mallory")).status).toBe(404);
    expect((await call(app, "GET", `/v1/rooms/${priv.code}`, "admin:root")).status).toBe(200);
    expect((await call(app, "POST", `/v1/rooms/${priv.code}/invite`, "mallory", { playerId: "eve" })).body.error.code).toBe("NOT_IN_ROOM");
    expect((await call(app, "POST", `/v1/rooms/${priv.code}/invite`, "alice", { playerId: "bob" })).status).toBe(200);
    expect((await call(app, "GET", `/v1/rooms/${priv.code}`, "bob")).status).toBe(200);
    expect((await call(app, "POST", `/v1/rooms/${priv.code}/join`, "bob")).status).toBe(200);

    const withPw = await create("alice", { visibility: "private", password: "pw" });
    expect((await call(app, "POST", `/v1/rooms/${withPw.code}/join`, "carol", { password: "bad" })).body.error.code).toBe("WRONG_PASSWORD");
    expect((await call(app, "POST", `/v1/rooms/${withPw.code}/join`, "carol", { password: "pw" })).status).toBe(200);
    await call(app, "POST", `/v1/rooms/${withPw.code}/invite`, "alice", { playerId: "dave" });
    expect((await call(app, "POST", `/v1/rooms/${withPw.code}/join`, "dave", {})).status).toBe(200);
  });

  test("50 concurrent joins never overfill a room", async () => {
    const room = await create("host", { visibility: "public", maxPlayers: 8 });
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => call(app, "POST", `/v1/rooms/${room.code}/join`, `p${i}`, {})));
    expect(results.filter((r) => r.status === 200).length).toBe(7);
    expect(results.filter((r) => r.status === 409 && r.body.error.code === "ROOM_FULL").length).toBe(43);
    expect(await tr.redis.hlen(tr.keys.roomPlayers(room.code))).toBe(8);
  });

  test("kick: host only, publishes the RoomEvent, kicked player cannot rejoin or connect", async () => {
    const sub = tr.connect();
    const events: RoomEvent[] = [];
    await sub.subscribe(tr.keys.roomEventsChannel);
    sub.on("message", (_c, m) => events.push(JSON.parse(m) as RoomEvent));

    const room = await create("alice", { visibility: "public" });
    const bob = await call(app, "POST", `/v1/rooms/${room.code}/join`, "bob", {});
    await call(app, "POST", `/v1/rooms/${room.code}/join`, "carol", {});
    const notHost = await call(app, "POST", `/v1/rooms/${room.code}/kick`, "carol", { playerId: "bob" });
    expect([notHost.status, notHost.body.error.code]).toEqual([403, "NOT_HOST"]);
    expect((await call(app, "POST", `/v1/rooms/${room.code}/kick`, "alice", { playerId: "alice" })).status).toBe(400);
    expect((await call(app, "POST", `/v1/rooms/${room.code}/kick`, "alice", {})).status).toBe(400);
    const kicked = await call(app, "POST", `/v1/rooms/${room.code}/kick`, "alice", { playerId: "bob" });
    expect(kicked.body).toEqual({ kicked: "bob", wasSeated: true });
    await waitFor(() => events.find((e) => e.type === "kick"), 2000, "kick event");
    expect(events.find((e) => e.type === "kick")).toMatchObject({ type: "kick", roomCode: room.code, playerId: "bob" });

    const rejoin = await call(app, "POST", `/v1/rooms/${room.code}/join`, "bob", {});
    expect([rejoin.status, rejoin.body.error.code]).toEqual([403, "KICKED"]);
    const seats = createSeatChecker(deps);
    expect(await seats.checkSeat(room.code, "bob", bob.body.seatToken, clock.now())).toMatchObject({ ok: false, close: CloseCode.NOT_SEATED });
    expect((await call(app, "POST", `/v1/rooms/${room.code}/invite`, "alice", { playerId: "bob" })).body.error.code).toBe("PLAYER_KICKED");
  });

  test("host leaves: the longest-seated player becomes host; the last one out closes the room", async () => {
    const room = await create("alice", { visibility: "public" });
    await call(app, "POST", `/v1/rooms/${room.code}/join`, "bob", {});
    await call(app, "POST", `/v1/rooms/${room.code}/join`, "carol", {});
    const left = await call(app, "POST", `/v1/rooms/${room.code}/leave`, "alice");
    expect(left.body).toMatchObject({ left: true, closed: false, hostId: "bob" });
    expect((await call(app, "GET", `/v1/rooms/${room.code}`, "carol")).body.hostId).toBe("bob");
    expect((await call(app, "POST", `/v1/rooms/${room.code}/leave`, "alice")).body.error.code).toBe("NOT_IN_ROOM");

    const transfer = await call(app, "POST", `/v1/rooms/${room.code}/host`, "bob", { playerId: "carol" });
    expect(transfer.body).toEqual({ hostId: "carol" });
    expect((await call(app, "POST", `/v1/rooms/${room.code}/host`, "bob", { playerId: "bob" })).body.error.code).toBe("NOT_HOST");
    expect((await call(app, "POST", `/v1/rooms/${room.code}/host`, "carol", { playerId: "zed" })).status).toBe(404);

    await call(app, "POST", `/v1/rooms/${room.code}/leave`, "bob");
    const last = await call(app, "POST", `/v1/rooms/${room.code}/leave`, "carol");
    expect(last.body).toMatchObject({ closed: true });
    expect(deps.placement.released).toEqual([room.code]);
    expect((await call(app, "GET", `/v1/rooms/${room.code}`, "carol")).body.state).toBe("completed");
    expect((await call(app, "POST", `/v1/rooms/${room.code}/join`, "carol", {})).body.error.code).toBe("ROOM_CLOSED");
    expect(await tr.redis.pttl(tr.keys.room(room.code))).toBeGreaterThan(0);
    expect(await createSeatChecker(deps).checkSeat(room.code, "carol", undefined, clock.now())).toMatchObject({ ok: false, close: CloseCode.UNKNOWN_ROOM });
  });

  test("lobby browser lists public waiting rooms with open seats only", async () => {
    const a = await create("h1", { visibility: "public", mode: "ctf", region: "eu" });
    const full = await create("h2", { visibility: "public", mode: "ctf", region: "eu", maxPlayers: 2 });
    await call(app, "POST", `/v1/rooms/${full.code}/join`, "x", {});
    await create("h3", { visibility: "private", mode: "ctf", region: "eu" });
    const us = await create("h4", { visibility: "public", mode: "ctf", region: "us" });
    const dm = await create("h5", { visibility: "public", mode: "dm", region: "eu" });
    const codes = async (q: string) => (await call(app, "GET", `/v1/rooms${q}`, "viewer")).body.rooms.map((r: { code: string }) => r.code).sort();
    expect(await codes("?mode=ctf&region=eu")).toEqual([a.code]);
    expect(await codes("?mode=ctf")).toEqual([a.code, us.code].sort());
    expect(await codes("")).toEqual([a.code, us.code, dm.code].sort());
    // A seat frees up: the room is listed again.
    await call(app, "POST", `/v1/rooms/${full.code}/leave`, "x");
    expect(await codes("?mode=ctf&region=eu")).toEqual([a.code, full.code].sort());
    // A started room leaves the browser.
    await call(app, "POST", `/v1/rooms/${a.code}/join`, "y", {});
    expect((await call(app, "POST", `/v1/rooms/${a.code}/start`, "h1")).body.state).toBe("starting");
    expect(await codes("?mode=ctf&region=eu")).toEqual([full.code]);
  });

  test("states: start → activate → end (result in the stream) → restart vote → waiting; close", async () => {
    const room = await create("alice", { visibility: "private" });
    const code = room.code;
    expect((await call(app, "POST", `/v1/rooms/${code}/start`, "alice")).body.error.code).toBe("NOT_ENOUGH_PLAYERS");
    for (const p of ["bob", "carol"]) {
      await call(app, "POST", `/v1/rooms/${code}/invite`, "alice", { playerId: p });
      await call(app, "POST", `/v1/rooms/${code}/join`, p);
    }
    expect((await call(app, "POST", `/v1/rooms/${code}/start`, "bob")).body.error.code).toBe("NOT_HOST");
    expect((await call(app, "POST", `/v1/rooms/${code}/end`, "alice", { results: { teams: [["alice"]], scores: [1], reason: "x" } })).body.error.code).toBe("INVALID_STATE");
    expect((await call(app, "POST", `/v1/rooms/${code}/start`, "alice")).body.state).toBe("starting");
    await call(app, "POST", `/v1/rooms/${code}/invite`, "alice", { playerId: "late" });
    expect((await call(app, "POST", `/v1/rooms/${code}/join`, "late")).body.error.code).toBe("ROOM_NOT_JOINABLE");
    expect((await call(app, "POST", `/v1/rooms/${code}/activate`, "alice")).body.state).toBe("active");
    expect((await call(app, "POST", `/v1/rooms/${code}/close`, "alice")).body.error.code).toBe("INVALID_STATE");
    clock.advance(90_000);
    expect((await call(app, "POST", `/v1/rooms/${code}/end`, "alice", { results: { teams: [["alice"]], scores: [1, 2], reason: "x" } })).status).toBe(400);
    const results = { teams: [["alice", "bob"], ["carol"]], scores: [3, 1], reason: "score_limit" };
    const ended = await call(app, "POST", `/v1/rooms/${code}/end`, "alice", { results });
    expect(ended.body).toMatchObject({ state: "ending", durationMs: 90_000, results });
    const stream = (await tr.redis.xrange(tr.keys.matchResults, "-", "+")) as [string, string[]][];
    expect(stream).toHaveLength(1);
    const [id, flat] = stream[0]!;
    expect(id).toBe(ended.body.resultId);
    const entry = Object.fromEntries(flat.map((v, i, a) => (i % 2 === 0 ? [v, a[i + 1]] : null)).filter((x): x is [string, string] => x !== null));
    expect(entry).toMatchObject({ room: code, durationMs: "90000", match: "1" });
    expect(JSON.parse(entry.results!)).toEqual(results);
    expect(JSON.parse(entry.players!)).toEqual(["alice", "bob", "carol"]);

    expect((await call(app, "POST", `/v1/rooms/${code}/restart`, "alice")).body).toMatchObject({ votes: 1, seated: 3, restarted: false });
    expect((await call(app, "POST", `/v1/rooms/${code}/restart`, "bob")).body).toMatchObject({ votes: 2, restarted: false });
    expect((await call(app, "POST", `/v1/rooms/${code}/restart`, "outsider")).body.error.code).toBe("NOT_IN_ROOM");
    // carol leaves instead of voting: the two who stay both voted → restart.
    expect((await call(app, "POST", `/v1/rooms/${code}/leave`, "carol")).body).toMatchObject({ restarted: true });
    const after = (await call(app, "GET", `/v1/rooms/${code}`, "alice")).body;
    expect(after).toMatchObject({ state: "waiting", matchNumber: 2, players: ["alice", "bob"], restartVotes: [] });

    expect((await call(app, "POST", `/v1/rooms/${code}/close`, "alice")).body.state).toBe("completed");
    expect(deps.placement.released).toContain(code);
  });

  test("seat checker: ad hoc, private token rules, public seats, full, expired token", async () => {
    const seats = createSeatChecker(deps);
    const now = () => clock.now();
    expect(await seats.checkSeat("ADHOC-room", "anyone", undefined, now())).toEqual({ ok: true });
    expect((await seats.checkSeat("bad code", "anyone", undefined, now())).ok).toBe(false);

    const priv = await create("alice", { visibility: "private", maxPlayers: 2 });
    expect(await seats.checkSeat(priv.code, "alice", priv.seatToken, now())).toEqual({ ok: true, seated: true, roomSeats: 2, regions: "local" });
    expect(await seats.checkSeat(priv.code, "alice", undefined, now())).toMatchObject({ ok: false, close: CloseCode.NOT_SEATED });
    expect(await seats.checkSeat(priv.code, "mallory", priv.seatToken, now())).toMatchObject({ ok: false, close: CloseCode.NOT_SEATED });
    await call(app, "POST", `/v1/rooms/${priv.code}/invite`, "alice", { playerId: "bob" });
    const bob = (await call(app, "POST", `/v1/rooms/${priv.code}/join`, "bob")).body;
    expect(await seats.checkSeat(priv.code, "bob", bob.seatToken, now())).toEqual({ ok: true, seated: true, roomSeats: 2, regions: "local" });
    expect(await seats.checkSeat(priv.code, "bob", priv.seatToken, now())).toMatchObject({ ok: false, close: CloseCode.NOT_SEATED });
    expect(await seats.checkSeat(priv.code, "mallory", undefined, now())).toMatchObject({ ok: false, close: CloseCode.NOT_SEATED });
    clock.advance(deps.config.seatTokenTtlMs + 1);
    expect(await seats.checkSeat(priv.code, "bob", bob.seatToken, now())).toMatchObject({ ok: false, close: CloseCode.NOT_SEATED });

    const pub = await create("carol", { visibility: "public" });
    expect(await seats.checkSeat(pub.code, "carol", undefined, now())).toEqual({ ok: true, seated: true, roomSeats: 8, regions: "local" });
    expect(await seats.checkSeat(pub.code, "dave", undefined, now())).toMatchObject({ ok: false, close: CloseCode.NOT_SEATED });
    const tiny = await create("erin", { visibility: "public", maxPlayers: 1 });
    expect(await seats.checkSeat(tiny.code, "dave", undefined, now())).toMatchObject({ ok: false, close: CloseCode.ROOM_FULL });
  });
});
