/**
 * The seat reaper against a real Redis (issue 6): presence written on connect/disconnect and by
 * the seat claims; absent seats freed after ROOM_SEAT_GRACE with the same effects as POST /leave.
 * Time is a FakeClock: the sweep and the presence writes take `now`, so no test waits the grace.
 */
import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import { Elysia } from "elysia";
import { FakeClock } from "../../core/clock.ts";
import { CloseCode } from "../../core/errors.ts";
import { GatewayRegistry } from "../../model/gateway-registry.ts";
import type { RoomEvent } from "../../core/types.ts";
import { createRoomPresence } from "../../model/rooms/presence.ts";
import { RoomStore } from "../../model/rooms/room-store.ts";
import { roomsRoutes } from "../../gateway/rooms/routes.ts";
import { sweepAbsentSeats } from "../../model/rooms/seat-reaper.ts";
import { createSeatChecker } from "../../model/rooms/seat-check.ts";
import { TicketStore } from "../../model/tickets/ticket-store.ts";
import { call, roomsDeps, type Handler } from "../support/rooms-harness.ts";
import { need, testRedis, waitFor, type TestRedis } from "../support/services.ts";

const GRACE = 60_000;
const GW = "gw-a";

describe.skipIf(!need("redis"))("seat reaper, real Redis", () => {
  const trs: TestRedis[] = [];
  let tr: TestRedis;
  let clock: FakeClock;
  let deps: ReturnType<typeof roomsDeps>;
  let app: Handler;
  let presence: ReturnType<typeof createRoomPresence>;

  beforeEach(() => {
    tr = testRedis("seatreap");
    trs.push(tr);
    clock = new FakeClock();
    deps = roomsDeps(tr, clock, { roomSeatGraceMs: GRACE });
    app = new Elysia().use(roomsRoutes(deps));
    presence = createRoomPresence({ ...tr, gatewayId: GW });
  });
  afterAll(async () => {
    for (const t of trs) await t.cleanup();
  });

  /** The gateway that reports presence is alive: it heartbeats (GatewayRegistry) before each sweep. */
  const beat = (gw = GW) => new GatewayRegistry(tr.redis, tr.keys, 3 * deps.config.gatewayHeartbeatMs).heartbeat({ id: gw, host: "127.0.0.1", port: 1, startedAt: 0 }, clock.now());
  const sweep = async () => {
    await beat();
    return sweepAbsentSeats(deps, clock.now());
  };
  // Straight from the store: a matched room is private, GET would hide it from an observer.
  const room = async (code: string) => (await new RoomStore(deps).get(code))!;
  const absence = (code: string, player: string) => tr.redis.zscore(tr.keys.roomAbsences, `${code}|${player}`);
  const create = async (host: string, body: Record<string, unknown> = { visibility: "public" }) => {
    const r = await call(app, "POST", "/v1/rooms", host, body);
    expect(r.status).toBe(201);
    return r.body.code as string;
  };
  const join = async (code: string, who: string) => expect((await call(app, "POST", `/v1/rooms/${code}/join`, who, {})).status).toBe(200);

  test("a seat taken and never connected is freed after the grace, not before", async () => {
    const code = await create("alice");
    await presence.connected(code, "alice", clock.now());
    await join(code, "bob");
    expect(Number(await absence(code, "bob"))).toBe(clock.now());
    expect(await absence(code, "alice")).toBeNull();
    clock.advance(GRACE - 1);
    expect((await sweep()).reaped).toEqual([]);
    expect((await room(code)).players).toEqual(["alice", "bob"]);
    clock.advance(1);
    const r = await sweep();
    expect(r.reaped.map((a) => a.playerId)).toEqual(["bob"]);
    expect((await room(code)).players).toEqual(["alice"]);
    expect(await absence(code, "bob")).toBeNull();
    // The lobby shows the freed seat again.
    const lobby = (await call(app, "GET", "/v1/rooms", "observer")).body;
    expect(JSON.stringify(lobby)).toContain(code);
  });

  test("connected → disconnected starts the clock; reaped a grace after the last socket closed", async () => {
    const code = await create("alice");
    await presence.connected(code, "alice", clock.now());
    await join(code, "bob");
    // Two sockets: the first close does not make bob absent.
    await presence.connected(code, "bob", clock.now());
    await presence.connected(code, "bob", clock.now());
    clock.advance(10 * GRACE);
    expect((await sweep()).reaped).toEqual([]);
    await presence.disconnected(code, "bob", clock.now());
    expect(await absence(code, "bob")).toBeNull();
    await presence.disconnected(code, "bob", clock.now());
    const since = clock.now();
    expect(Number(await absence(code, "bob"))).toBe(since);
    clock.advance(GRACE - 1);
    expect((await sweep()).reaped).toEqual([]);
    clock.advance(1);
    expect((await sweep()).reaped).toEqual([{ code, playerId: "bob", since }]);
    expect((await room(code)).players).toEqual(["alice"]);
  });

  test("a reconnect inside the grace keeps the seat, and a sweep's stale read does not reap it", async () => {
    const code = await create("alice");
    await presence.connected(code, "alice", clock.now());
    await join(code, "bob");
    await presence.connected(code, "bob", clock.now());
    await presence.disconnected(code, "bob", clock.now());
    const firstSince = clock.now();
    clock.advance(GRACE / 2);
    await presence.connected(code, "bob", clock.now());
    clock.advance(5 * GRACE);
    expect((await sweep()).reaped).toEqual([]);
    expect((await room(code)).players).toEqual(["alice", "bob"]);
    // A sweeper that read bob's first absence before he came back (and left again) acts on nothing.
    await presence.disconnected(code, "bob", clock.now());
    const store = new RoomStore(deps);
    const r = await store.reapAbsent({ code, mode: "default", region: "local" }, "bob", firstSince, clock.now());
    expect(r).toEqual({ reaped: false, why: "moved" });
    expect((await room(code)).players).toEqual(["alice", "bob"]);
  });

  test("the host reaped: the longest-seated player becomes host and gateways hear it", async () => {
    const events: RoomEvent[] = [];
    const sub = tr.connect();
    sub.on("message", (_ch: string, msg: string) => events.push(JSON.parse(msg) as RoomEvent));
    await sub.subscribe(tr.keys.roomEventsChannel);
    const code = await create("alice");
    await join(code, "bob");
    await join(code, "carol");
    await presence.connected(code, "bob", clock.now());
    await presence.connected(code, "carol", clock.now());
    clock.advance(GRACE);
    expect((await sweep()).reaped.map((a) => a.playerId)).toEqual(["alice"]);
    const r = await room(code);
    expect(r.players).toEqual(["bob", "carol"]);
    expect(r.hostId).toBe("bob");
    await waitFor(() => events.find((e) => e.type === "host" && e.roomCode === code), 2000, "host event");
    expect(events.find((e) => e.type === "host")!.playerId).toBe("bob");
  });

  test("the last seat reaped closes the room: its code answers 4004 (retention), the lobby forgets it", async () => {
    const code = await create("alice");
    await join(code, "bob");
    await tr.redis.set(tr.keys.roomNode(code), "node-x");
    clock.advance(GRACE);
    const r = await sweep();
    expect(r.reaped.map((a) => a.playerId).sort()).toEqual(["alice", "bob"]);
    expect(r.closed).toEqual([code]);
    expect((await room(code)).state).toBe("completed");
    expect(await createSeatChecker(deps).checkSeat(code, "alice", undefined, clock.now())).toMatchObject({ ok: false, close: CloseCode.UNKNOWN_ROOM });
    expect(await tr.redis.zcard(tr.keys.roomAbsences)).toBe(0);
    expect(await tr.redis.sismember(tr.keys.rooms, code)).toBe(0);
    expect(JSON.stringify((await call(app, "GET", "/v1/rooms", "observer")).body)).not.toContain(code);
    // The placement is released like a closed room's.
    expect(await tr.redis.get(tr.keys.roomNode(code))).toBeNull();
  });

  test("an active match keeps an absent seat; once it ends, the seat is reaped", async () => {
    const code = await create("alice");
    await join(code, "bob");
    await presence.connected(code, "alice", clock.now());
    expect((await call(app, "POST", `/v1/rooms/${code}/start`, "alice")).status).toBe(200);
    expect((await call(app, "POST", `/v1/rooms/${code}/activate`, "alice")).status).toBe(200);
    clock.advance(100 * GRACE);
    expect((await sweep()).reaped).toEqual([]);
    expect((await room(code)).players).toEqual(["alice", "bob"]);
    expect((await call(app, "POST", `/v1/rooms/${code}/end`, "alice", { results: { teams: [["alice"], ["bob"]], scores: [1, 0], reason: "score" } })).status).toBe(200);
    expect((await sweep()).reaped.map((a) => a.playerId)).toEqual(["bob"]);
    expect((await room(code)).players).toEqual(["alice"]);
  });

  test("leave and kick forget the absence in the same step", async () => {
    const code = await create("alice");
    await join(code, "bob");
    await join(code, "carol");
    expect(await absence(code, "bob")).not.toBeNull();
    expect((await call(app, "POST", `/v1/rooms/${code}/kick`, "alice", { playerId: "bob" })).status).toBe(200);
    expect(await absence(code, "bob")).toBeNull();
    expect((await call(app, "POST", `/v1/rooms/${code}/leave`, "carol")).status).toBe(200);
    expect(await absence(code, "carol")).toBeNull();
    expect(await absence(code, "alice")).not.toBeNull();
  });

  test("a matched room whose players never show is emptied and closed (the claim records the absences)", async () => {
    const cfg = deps.config;
    const tickets = new TicketStore({ redis: tr.redis, keys: tr.keys, config: cfg });
    const queued = [];
    for (const p of ["m1", "m2", "m3", "m4"]) {
      const id = await tickets.create({ playerId: p, mode: "duel", region: "local" }, clock.now());
      queued.push({ id, playerId: p, mode: "duel", region: "local", createdAt: clock.now() });
    }
    const claim = await tickets.claim({ mode: "duel", region: "local", kind: "full", crossRegion: false, teams: [queued.slice(0, 2), queued.slice(2)] }, clock.now());
    expect(claim.ok).toBe(true);
    const code = (claim as { roomCode: string }).roomCode;
    expect((await room(code)).state).toBe("starting");
    for (const p of ["m1", "m2", "m3", "m4"]) expect(Number(await absence(code, p))).toBe(clock.now());
    await presence.connected(code, "m3", clock.now());
    clock.advance(GRACE);
    expect((await sweep()).reaped.map((a) => a.playerId).sort()).toEqual(["m1", "m2", "m4"]);
    const r = await room(code);
    expect(r.players).toEqual(["m3"]);
    expect(r.hostId).toBe("m3");
  });

  test("a gateway that dies without reporting closes: its players become absent once it is dead, then are reaped", async () => {
    const other = createRoomPresence({ ...tr, gatewayId: "gw-b" });
    const code = await create("alice");
    await join(code, "bob");
    await join(code, "carol");
    await presence.connected(code, "alice", clock.now());
    // bob has sockets on both gateways, carol only on the one that dies.
    await presence.connected(code, "bob", clock.now());
    await other.connected(code, "bob", clock.now());
    await other.connected(code, "carol", clock.now());
    await beat("gw-b");
    const deadAfter = 3 * deps.config.gatewayHeartbeatMs;
    clock.advance(deadAfter - 1);
    expect((await sweep()).deadGateways).toEqual([]);
    expect(await absence(code, "carol")).toBeNull();
    clock.advance(1);
    const diedAt = clock.now();
    const first = await sweep();
    expect(first.deadGateways).toEqual(["gw-b"]);
    expect(Number(await absence(code, "carol"))).toBe(diedAt);
    expect(await absence(code, "bob")).toBeNull();
    expect(await tr.redis.exists(tr.keys.gatewayPresence("gw-b"))).toBe(0);
    expect(await tr.redis.zscore(tr.keys.presenceGateways, "gw-b")).toBeNull();
    clock.advance(GRACE);
    const r = await sweep();
    expect(r.reaped.map((a) => a.playerId)).toEqual(["carol"]);
    expect((await room(code)).players).toEqual(["alice", "bob"]);
  });

  test("two sweepers at once free each absent seat exactly once", async () => {
    const codes: string[] = [];
    for (let i = 0; i < 15; i++) {
      const code = await create(`h${i}`);
      await join(code, `a${i}`);
      await join(code, `b${i}`);
      codes.push(code);
    }
    clock.advance(GRACE);
    const depsB = { ...deps, redis: tr.connect() };
    await beat();
    const [a, b] = await Promise.all([sweepAbsentSeats(deps, clock.now()), sweepAbsentSeats(depsB, clock.now())]);
    const all = [...a.reaped, ...b.reaped].map((x) => `${x.code}|${x.playerId}`);
    expect(all.length).toBe(45);
    expect(new Set(all).size).toBe(45);
    expect([...a.closed, ...b.closed].sort()).toEqual(codes.slice().sort());
    for (const code of codes) expect((await room(code)).state).toBe("completed");
    expect(await tr.redis.zcard(tr.keys.roomAbsences)).toBe(0);
  });
});
