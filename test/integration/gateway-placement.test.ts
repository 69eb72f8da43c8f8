/** RedisPlacement against real Redis: the placement properties, and agreement under races. */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { AppError } from "../../core/errors.ts";
import { RedisNodeRegistry } from "../../model/node-registry.ts";
import { RedisPlacement } from "../../model/placement/redis-placement.ts";
import { makeNode } from "../support/nodes.ts";
import { testConfig } from "../../core/config.ts";
import { desiredNodes } from "../../scheduler/policy/desired-nodes.ts";
import { summarizeCapacity } from "../../gateway/ops/capacity.ts";
import { need, testRedis, type TestRedis } from "../support/services.ts";

const NOW = Date.now();

describe.skipIf(!need("redis"))("RedisPlacement", () => {
  let tr: TestRedis;
  let reg: RedisNodeRegistry;

  beforeEach(() => {
    tr = testRedis("gwplace");
    reg = new RedisNodeRegistry(tr.redis, tr.keys, () => tr.connect());
  });
  afterEach(async () => {
    await tr.cleanup();
  });

  async function fleet(n: number, capacity = 10_000) {
    for (let i = 0; i < n; i++) await reg.create(makeNode({ id: `node-${i}`, capacity, maxRooms: capacity }), NOW);
  }
  const roomsOn = (id: string) => tr.redis.scard(tr.keys.nodeRooms(id));

  test("1,000 rooms: no node above ceil(1.25 × mean); adding then removing a node moves 0 live rooms", async () => {
    await fleet(10);
    const p = new RedisPlacement(tr.redis, tr.keys, reg);
    const placed = new Map<string, string>();
    for (let i = 0; i < 1000; i++) placed.set(`room-${i}`, (await p.placeRoom(`room-${i}`, { now: NOW })).id);
    const counts = await Promise.all(Array.from({ length: 10 }, (_, i) => roomsOn(`node-${i}`)));
    expect(counts.reduce((a, b) => a + b, 0)).toBe(1000);
    expect(Math.max(...counts)).toBeLessThanOrEqual(Math.ceil(1.25 * 100));

    await reg.create(makeNode({ id: "node-new", capacity: 10_000, maxRooms: 10_000 }), NOW);
    let moved = 0;
    for (const [code, id] of placed) if ((await p.placeRoom(code, { now: NOW })).id !== id) moved++;
    expect(moved).toBe(0);

    await reg.remove("node-new", NOW);
    await reg.transition("node-9", "draining", NOW);
    for (const [code, id] of placed) if ((await p.nodeForRoom(code))?.id !== id) moved++;
    expect(moved).toBe(0);

    // New rooms spread over the ready nodes within the bound, never onto the draining one.
    for (let i = 1000; i < 1450; i++) expect((await p.placeRoom(`room-${i}`, { now: NOW })).id).not.toBe("node-9");
    const after = await Promise.all(Array.from({ length: 9 }, (_, i) => roomsOn(`node-${i}`)));
    const mean = after.reduce((a, b) => a + b, 0) / 9;
    expect(Math.max(...after)).toBeLessThanOrEqual(Math.ceil(1.25 * mean));
  }, 30_000);

  test("two gateways placing the same new rooms at once agree", async () => {
    await fleet(5);
    const a = new RedisPlacement(tr.redis, tr.keys, reg);
    const b = new RedisPlacement(tr.connect(), tr.keys, reg);
    const codes = Array.from({ length: 200 }, (_, i) => `race-${i}`);
    const [ra, rb] = await Promise.all([Promise.all(codes.map((c) => a.placeRoom(c, { now: NOW }))), Promise.all(codes.map((c) => b.placeRoom(c, { now: NOW })))]);
    for (let i = 0; i < codes.length; i++) expect(ra[i]!.id).toBe(rb[i]!.id);
    const total = (await Promise.all(Array.from({ length: 5 }, (_, i) => roomsOn(`node-${i}`)))).reduce((x, y) => x + y, 0);
    expect(total).toBe(200);
  });

  test("racing for a node's last slot: exactly one room gets it", async () => {
    await reg.create(makeNode({ id: "solo", capacity: 1, maxRooms: 1 }), NOW);
    const p = new RedisPlacement(tr.redis, tr.keys, reg);
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => p.placeRoom(`last-${i}`, { now: NOW })));
    expect(results.filter((r) => r.status === "fulfilled").length).toBe(1);
    const rejected = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    expect(rejected.every((r) => r.reason instanceof AppError && r.reason.status === 503)).toBe(true);
  });

  test("seat reservations never exceed MAX_PLAYERS_PER_SERVER", async () => {
    await fleet(3, 2);
    const p = new RedisPlacement(tr.redis, tr.keys, reg);
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => p.placeRoomWithSeat(`seat-${i}`, `s_holder${i}xx`)));
    expect(results.filter(Boolean).length).toBe(6);
    for (let i = 0; i < 3; i++) expect(await tr.redis.scard(tr.keys.nodeSeats(`node-${i}`))).toBe(2);
    // Reserved, not reported: the node record keeps the two apart (the seat budget).
    expect((await reg.get("node-0"))!).toMatchObject({ reservedSeats: 2, reservedRooms: 2, players: 0 });
  });

  test("rooms take their seats: 8-player rooms on 32-player nodes fit 4 a node, never more; release frees them", async () => {
    await fleet(2, 32);
    const p = new RedisPlacement(tr.redis, tr.keys, reg);
    const results = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => p.placeRoom(`lobby-${i}`, { now: NOW, seats: 8 })));
    expect(results.filter((r) => r.status === "fulfilled").length).toBe(8);
    for (const id of ["node-0", "node-1"]) {
      const seats = Object.values(await tr.redis.hgetall(tr.keys.nodeRoomSeats(id))).reduce((a, v) => a + Number(v), 0);
      expect(seats).toBe(32);
    }
    // A session seat does not fit on a node full of rooms; releasing a room makes space for it.
    expect(await p.placeRoomWithSeat("session-room", "s_holder_x")).toBeUndefined();
    await p.releaseRoom("lobby-0");
    expect(await p.placeRoomWithSeat("session-room", "s_holder_x")).toBeDefined();
  });

  test("the autoscaler sees lobby seats: 4 lobbies of 8 placed on a 32-seat node (nobody connected yet) scale the fleet", async () => {
    await fleet(1, 32);
    const p = new RedisPlacement(tr.redis, tr.keys, reg);
    for (let i = 0; i < 4; i++) await p.placeRoom(`lobby-${i}`, { now: NOW, seats: 8 });
    const nodes = await reg.list();
    const config = testConfig({ minReadyServers: 0, maxServers: 10, maxPlayersPerServer: 32 });
    const d = desiredNodes({ nodes, pendingJoins: 0, pendingStarts: 0, floor: 0, lastScaleUpAt: 0, lastScaleDownAt: 0 }, config, NOW);
    expect(d).toMatchObject({ action: "up" });
    expect(summarizeCapacity(nodes, {})).toMatchObject({ players: 32, capacity: 32, utilization: 1 });
  });

  test("with one server per match (capacity 1) a room of 8 takes its node whole", async () => {
    await fleet(2, 1);
    const p = new RedisPlacement(tr.redis, tr.keys, reg);
    const a = await p.placeRoom("match-a", { now: NOW, seats: 8 });
    const b = await p.placeRoom("match-b", { now: NOW, seats: 8 });
    expect(a.id).not.toBe(b.id);
    await expect(p.placeRoom("match-c", { now: NOW, seats: 8 })).rejects.toBeInstanceOf(AppError);
  });

  test("a room whose node is gone is placed again; releaseRoom forgets it", async () => {
    await fleet(2);
    const p = new RedisPlacement(tr.redis, tr.keys, reg);
    const first = await p.placeRoom("room-x", { now: NOW });
    await reg.remove(first.id, NOW);
    expect(await p.nodeForRoom("room-x")).toBeUndefined();
    const second = await p.placeRoom("room-x", { now: NOW });
    expect(second.id).not.toBe(first.id);
    await p.releaseRoom("room-x");
    expect(await tr.redis.get(tr.keys.roomNode("room-x"))).toBeNull();
    expect(await roomsOn(second.id)).toBe(0);
  });
});
