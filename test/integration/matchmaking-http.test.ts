/** Matchmaking tickets over HTTP (app.handle) and matcher passes against a real Redis. */
import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import { Elysia } from "elysia";
import { FakeClock } from "../../core/clock.ts";
import { testConfig, type Config } from "../../core/config.ts";
import { matchmakingRoutes } from "../../gateway/matchmaking/routes.ts";
import { createSeatChecker } from "../../model/rooms/seat-check.ts";
import { RoomStore } from "../../model/rooms/room-store.ts";
import { matchPolicy, runTick } from "../../scheduler/matchmaker/index.ts";
import { runMatchPass } from "../../scheduler/matchmaker/match-pass.ts";
import { TicketStore } from "../../model/tickets/ticket-store.ts";
import { call, FixedTokenAuth, type Handler } from "../support/rooms-harness.ts";
import { need, testRedis, type TestRedis } from "../support/services.ts";

describe.skipIf(!need("redis"))("matchmaking tickets + matcher, real Redis", () => {
  const trs: TestRedis[] = [];
  let tr: TestRedis;
  let clock: FakeClock;
  let config: Config;
  let app: Handler;
  let store: TicketStore;

  beforeEach(() => {
    tr = testRedis("mm");
    trs.push(tr);
    clock = new FakeClock();
    config = testConfig({ port: 3999 });
    app = new Elysia().use(matchmakingRoutes({ redis: tr.redis, keys: tr.keys, clock, config, auth: new FixedTokenAuth() }));
    store = new TicketStore({ redis: tr.redis, keys: tr.keys, config });
  });
  afterAll(async () => {
    for (const t of trs) await t.cleanup();
  });

  const enqueue = async (player: string, body: Record<string, unknown> = { mode: "ctf" }) => {
    const r = await call(app, "POST", "/v1/matchmaking/tickets", player, body);
    expect(r.status).toBe(201);
    return r.body.ticketId as string;
  };

  test("create, read (owner only), cancel (owner only), bad input", async () => {
    const id = await enqueue("alice", { mode: "ctf", region: "eu", rating: 1500 });
    expect((await call(app, "GET", `/v1/matchmaking/tickets/${id}`, "alice")).body).toEqual({ ticketId: id, status: "queued", mode: "ctf", region: "eu" });
    expect((await call(app, "GET", `/v1/matchmaking/tickets/${id}`, "bob")).status).toBe(404);
    const dup = await call(app, "POST", "/v1/matchmaking/tickets", "alice", { mode: "ctf" });
    expect([dup.status, dup.body.error.code, dup.body.error.details.ticketId]).toEqual([409, "ALREADY_QUEUED", id]);
    const other = await call(app, "DELETE", `/v1/matchmaking/tickets/${id}`, "bob");
    expect([other.status, other.body.error.code]).toEqual([403, "NOT_TICKET_OWNER"]);
    expect((await call(app, "DELETE", `/v1/matchmaking/tickets/${id}`, "alice")).body).toEqual({ ticketId: id, status: "cancelled" });
    expect((await call(app, "GET", `/v1/matchmaking/tickets/${id}`, "alice")).body.status).toBe("cancelled");
    expect((await call(app, "DELETE", `/v1/matchmaking/tickets/${id}`, "alice")).body.error.code).toBe("TICKET_NOT_QUEUED");
    // After a cancel the player may queue again.
    await enqueue("alice");

    const bad: [string, string, string | null, unknown, number][] = [
      ["POST", "/v1/matchmaking/tickets", null, { mode: "ctf" }, 401],
      ["POST", "/v1/matchmaking/tickets", "bob", {}, 400],
      ["POST", "/v1/matchmaking/tickets", "player:a@b", { mode: "ctf" }, 403],
      ["POST", "/v1/matchmaking/tickets", "bob", { mode: "c t f" }, 400],
      ["POST", "/v1/matchmaking/tickets", "bob", { mode: "ctf", rating: "high" }, 400],
      ["POST", "/v1/matchmaking/tickets", "bob", { mode: "ctf", region: "eu|us" }, 400],
      ["GET", "/v1/matchmaking/tickets/short", "bob", undefined, 400],
      ["GET", `/v1/matchmaking/tickets/${"a".repeat(22)}`, "bob", undefined, 404],
      ["DELETE", `/v1/matchmaking/tickets/${"a".repeat(22)}`, "bob", undefined, 404],
    ];
    for (const [method, path, who, body, status] of bad) {
      const r = await call(app, method, path, who, body);
      expect({ path, status: r.status }).toEqual({ path, status });
      expect(typeof r.body.error.code).toBe("string");
    }
  });

  test("8 tickets → one private 4v4 room; every player gets room, seat token and connect URL that pass the seat check", async () => {
    const ids = new Map<string, string>();
    for (let i = 0; i < 8; i++) {
      ids.set(`p${i}`, await enqueue(`p${i}`, { mode: "ctf", rating: 1000 + i * 100 }));
      clock.advance(1);
    }
    const r = await runTick(store, config, clock);
    expect(r).toMatchObject({ rooms: 1, matched: 8, lost: 0 });
    const seats = createSeatChecker({ redis: tr.redis, keys: tr.keys, clock, config });
    let code = "";
    const teams: number[] = [];
    for (const [player, id] of ids) {
      const t = (await call(app, "GET", `/v1/matchmaking/tickets/${id}`, player)).body;
      expect(t.status).toBe("matched");
      code ||= t.roomCode;
      expect(t.roomCode).toBe(code);
      expect(t.connectUrl).toBe(`ws://localhost/v1/connect?room=${code}&seat=${t.seatToken}`);
      expect(await seats.checkSeat(code, player, t.seatToken, clock.now())).toMatchObject({ ok: true, seated: true });
      teams.push(t.team);
    }
    expect(teams.filter((t) => t === 0).length).toBe(4);
    expect(await seats.checkSeat(code, "outsider", undefined, clock.now())).toMatchObject({ ok: false });
    const room = (await new RoomStore({ redis: tr.redis, keys: tr.keys, config }).get(code))!;
    expect(room).toMatchObject({ visibility: "private", state: "starting", source: "match", maxPlayers: 8, hostId: "p0" });
    expect(room.players.sort()).toEqual([...ids.keys()].sort());
    const sum = (team: string[]) => team.reduce((s, p) => s + 1000 + Number(p.slice(1)) * 100, 0);
    expect(Math.abs(sum(room.teams![0]!) - sum(room.teams![1]!))).toBe(0);

    // The seat token expires; reading the ticket re-issues one while the seat is held.
    const firstToken = (await call(app, "GET", `/v1/matchmaking/tickets/${ids.get("p3")}`, "p3")).body.seatToken;
    clock.advance(config.seatTokenTtlMs + 1);
    const again = (await call(app, "GET", `/v1/matchmaking/tickets/${ids.get("p3")}`, "p3")).body;
    expect(again.seatToken).not.toBe(firstToken);
    expect(await seats.checkSeat(code, "p3", again.seatToken, clock.now())).toMatchObject({ ok: true, seated: true });
  });

  test("partial room after FLUSH_WAIT, region fallback, expiry after TICKET_TTL", async () => {
    const eu = [await enqueue("e1", { mode: "ctf", region: "eu" }), await enqueue("e2", { mode: "ctf", region: "eu" })];
    const us = await enqueue("u1", { mode: "ctf", region: "us" });
    const lonely = await enqueue("solo", { mode: "rare" });
    expect((await runTick(store, config, clock)).rooms).toBe(0);
    clock.advance(config.flushWaitMs);
    const r = await runTick(store, config, clock);
    // eu forms a 1v1 partial room; us (alone) joins nobody; the cross-region pool has only u1 left.
    expect(r.rooms).toBe(1);
    for (const id of eu) expect((await store.get(id))!.status).toBe("matched");
    expect((await store.get(us))!.status).toBe("queued");
    clock.advance(config.ticketTtlMs);
    expect((await call(app, "GET", `/v1/matchmaking/tickets/${lonely}`, "solo")).body.status).toBe("expired");
    const e = await runTick(store, config, clock);
    expect(e.expired).toBe(2);
    expect((await store.get(us))!.status).toBe("expired");
    expect(await tr.redis.zcard(tr.keys.ticketQueue("ctf", "us"))).toBe(0);
    expect(await tr.redis.smembers(tr.keys.ticketQueues)).toEqual([]);
    // An expired ticket frees the player to queue again.
    await enqueue("solo", { mode: "rare" });
  });

  test("8 concurrent passes over 400 tickets never match a ticket twice", async () => {
    for (let i = 0; i < 400; i++) await store.create({ playerId: `r${i}`, mode: "ctf", region: i % 2 ? "eu" : "us", rating: (i * 37) % 2000 }, clock.now() + i);
    clock.advance(1000);
    const results = await Promise.all(Array.from({ length: 8 }, (_, w) => runMatchPass(store, matchPolicy(config), clock.now(), { batch: 1000, random: seeded(w + 1) })));
    const rooms = results.reduce((s, r) => s + r.rooms, 0);
    const matched = results.reduce((s, r) => s + r.matched, 0);
    expect(rooms).toBe(50);
    expect(matched).toBe(400);
    expect(results.reduce((s, r) => s + r.lost, 0)).toBeGreaterThan(0); // they really raced
    const codes = await tr.redis.smembers(tr.keys.rooms);
    expect(codes).toHaveLength(50);
    const seen = new Set<string>();
    for (const c of codes) {
      const players = await tr.redis.hkeys(tr.keys.roomPlayers(c));
      expect(players).toHaveLength(8);
      for (const pl of players) {
        expect(seen.has(pl)).toBe(false);
        seen.add(pl);
      }
    }
    expect(seen.size).toBe(400);
  });
});

/** A small deterministic PRNG (mulberry32) so concurrent passes shuffle differently but reproducibly. */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a |= 0;
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
