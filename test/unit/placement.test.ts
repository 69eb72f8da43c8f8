import { describe, expect, test } from "bun:test";
import { MemoryNodeRegistry } from "../../model/node-registry.ts";
import { AppError } from "../../core/errors.ts";
import { placementCandidates, placementIsLive, roomCapacity } from "../../model/placement/candidates.ts";
import { MemoryPlacement } from "../../model/placement/memory-placement.ts";
import { chooseNode, hash32, HashRing, loadBound, type NodeLoad } from "../../model/placement/ring.ts";
import { makeNode } from "../support/nodes.ts";

const NOW = 1_700_000_000_000;

describe("hash32", () => {
  test.each(["", "a", "room-1", "Z".repeat(32)])("is stable and unsigned 32-bit for %p", (s) => {
    const h = hash32(s);
    expect(h).toBe(hash32(s));
    expect(Number.isInteger(h) && h >= 0 && h < 2 ** 32).toBe(true);
  });

  test("the empty string hashes to the finalised FNV offset basis, not 0", () => {
    expect(hash32("")).not.toBe(0);
    expect(hash32("a")).not.toBe(hash32("b"));
  });

  test("spreads similar keys", () => {
    const buckets = new Array(16).fill(0) as number[];
    for (let i = 0; i < 16_000; i++) buckets[hash32(`room-${i}`) >>> 28]!++;
    for (const b of buckets) expect(Math.abs(b - 1000)).toBeLessThan(150);
  });
});

describe("HashRing", () => {
  test("order lists every node once, deterministically, whatever the input order", () => {
    const a = new HashRing(["n1", "n2", "n3", "n4"]);
    const b = new HashRing(["n4", "n3", "n2", "n1", "n2"]);
    for (const key of ["x", "room-1", "ZZZZ", "a-b_c"]) {
      const o = a.order(key);
      expect(o).toEqual(b.order(key));
      expect([...o].sort()).toEqual(["n1", "n2", "n3", "n4"]);
    }
  });

  test("an empty ring has no order", () => {
    expect(new HashRing([]).order("room")).toEqual([]);
  });

  test("adding a node changes the first choice of about 1/n of keys only", () => {
    const before = new HashRing(["n1", "n2", "n3", "n4"]);
    const after = new HashRing(["n1", "n2", "n3", "n4", "n5"]);
    let changed = 0;
    for (let i = 0; i < 5000; i++) {
      const k = `room-${i}`;
      const was = before.order(k)[0];
      const now = after.order(k)[0];
      if (was !== now) {
        changed++;
        expect(now).toBe("n5"); // keys only ever move to the new node
      }
    }
    expect(changed / 5000).toBeGreaterThan(0.1);
    expect(changed / 5000).toBeLessThan(0.3);
  });
});

describe("loadBound", () => {
  test.each([
    [0, 4, 1.25, 1],
    [3, 4, 1.25, 2],
    [99, 10, 1.25, 13],
    [999, 10, 1.25, 125],
    [10, 0, 1.25, 0],
    [7, 1, 1.25, 10],
  ])("total %p over %p nodes, factor %p → %p", (total, n, f, want) => {
    expect(loadBound(total, n, f)).toBe(want);
  });
});

describe("chooseNode", () => {
  const loads = (entries: [string, number, number][]) => new Map<string, NodeLoad>(entries.map(([id, load, capacity]) => [id, { load, capacity }]));
  test.each<[string, string[], [string, number, number][], string | undefined]>([
    ["first in ring order when all are equal", ["b", "a", "c"], [["a", 0, 10], ["b", 0, 10], ["c", 0, 10]], "b"],
    ["skips a full node", ["b", "a"], [["a", 0, 10], ["b", 10, 10]], "a"],
    ["skips a node at the load bound", ["a", "b", "c"], [["a", 5, 100], ["b", 1, 100], ["c", 1, 100]], "b"],
    ["ignores nodes that are not candidates", ["x", "a"], [["a", 0, 10]], "a"],
    ["undefined when everything is full", ["a", "b"], [["a", 1, 1], ["b", 1, 1]], undefined],
    ["undefined with no candidates", ["a"], [], undefined],
    ["zero-capacity node never chosen", ["a", "b"], [["a", 0, 0], ["b", 0, 1]], "b"],
  ])("%s", (_name, order, entries, want) => {
    expect(chooseNode(order, loads(entries))).toBe(want);
  });
});

describe("placementCandidates", () => {
  const nodes = [
    makeNode({ id: "ready-eu", region: "eu" }),
    makeNode({ id: "ready-us", region: "us" }),
    makeNode({ id: "draining", state: "draining", region: "eu" }),
    makeNode({ id: "starting", state: "starting", region: "eu" }),
    makeNode({ id: "unhealthy", state: "unhealthy", region: "eu" }),
    makeNode({ id: "stopped", state: "stopped", region: "eu" }),
    makeNode({ id: "zero", capacity: 0, region: "eu" }),
  ];
  test.each<[string | undefined, string[]]>([
    [undefined, ["ready-eu", "ready-us"]],
    ["eu", ["ready-eu"]],
    ["us", ["ready-us"]],
    ["ap", ["ready-eu", "ready-us"]],
  ])("region %p → %p", (region, want) => {
    expect(placementCandidates(nodes, region).map((n) => n.id)).toEqual(want);
  });

  test.each([
    ["ready", true],
    ["draining", true],
    ["starting", true],
    ["unhealthy", false],
    ["stopping", false],
    ["stopped", false],
  ] as const)("a placement on a %s node is live: %p", (state, live) => {
    expect(placementIsLive(makeNode({ id: "n", state }))).toBe(live);
  });

  test("a missing node holds no live placement; room capacity is min(maxRooms, seats)", () => {
    expect(placementIsLive(undefined)).toBe(false);
    expect(roomCapacity({ maxRooms: 100, capacity: 1 })).toBe(1);
    expect(roomCapacity({ maxRooms: 3, capacity: 8 })).toBe(3);
  });
});

describe("MemoryPlacement with 1,000 live rooms", () => {
  async function fleet(n: number) {
    const reg = new MemoryNodeRegistry();
    for (let i = 0; i < n; i++) await reg.create(makeNode({ id: `node-${i}`, capacity: 10_000, maxRooms: 10_000 }), NOW);
    return reg;
  }

  function spread(p: MemoryPlacement, ids: string[]) {
    const counts = ids.map((id) => p.roomsOn(id));
    const mean = counts.reduce((a, b) => a + b, 0) / ids.length;
    return { max: Math.max(...counts), mean };
  }

  test("new rooms spread so no node holds more than 1.25 × the mean", async () => {
    const reg = await fleet(10);
    const p = new MemoryPlacement(reg);
    for (let i = 0; i < 1000; i++) await p.placeRoom(`room-${i}`, { now: NOW });
    const ids = (await reg.list()).map((n) => n.id);
    const { max, mean } = spread(p, ids);
    expect(mean).toBe(100);
    expect(max).toBeLessThanOrEqual(Math.ceil(1.25 * mean));
  });

  test("adding a node moves 0 live rooms; new rooms still respect the bound", async () => {
    const reg = await fleet(10);
    const p = new MemoryPlacement(reg);
    const before = new Map<string, string>();
    for (let i = 0; i < 1000; i++) before.set(`room-${i}`, (await p.placeRoom(`room-${i}`, { now: NOW })).id);
    await reg.create(makeNode({ id: "node-new", capacity: 10_000, maxRooms: 10_000 }), NOW);
    let moved = 0;
    for (const [code, nodeId] of before) {
      if ((await p.nodeForRoom(code))?.id !== nodeId) moved++;
      if ((await p.placeRoom(code, { now: NOW })).id !== nodeId) moved++;
    }
    expect(moved).toBe(0);
    for (let i = 1000; i < 1500; i++) await p.placeRoom(`room-${i}`, { now: NOW });
    const { max, mean } = spread(p, (await reg.list()).map((n) => n.id));
    expect(max).toBeLessThanOrEqual(Math.ceil(1.25 * mean));
    expect(p.roomsOn("node-new")).toBeGreaterThan(0);
  });

  test("removing a node moves 0 rooms of the other nodes; its own rooms are placed again", async () => {
    const reg = await fleet(10);
    const p = new MemoryPlacement(reg);
    const before = new Map<string, string>();
    for (let i = 0; i < 1000; i++) before.set(`room-${i}`, (await p.placeRoom(`room-${i}`, { now: NOW })).id);
    await reg.remove("node-3", NOW);
    let moved = 0;
    let replaced = 0;
    for (const [code, nodeId] of before) {
      const now = (await p.placeRoom(code, { now: NOW })).id;
      if (nodeId === "node-3") {
        expect(now).not.toBe("node-3");
        replaced++;
      } else if (now !== nodeId) moved++;
    }
    expect(moved).toBe(0);
    expect(replaced).toBeGreaterThan(0);
  });

  test("draining nodes keep their rooms but get no new ones", async () => {
    const reg = await fleet(3);
    const p = new MemoryPlacement(reg);
    const placed = new Map<string, string>();
    for (let i = 0; i < 30; i++) placed.set(`room-${i}`, (await p.placeRoom(`room-${i}`, { now: NOW })).id);
    await reg.transition("node-1", "draining", NOW);
    for (const [code, id] of placed) expect((await p.placeRoom(code, { now: NOW })).id).toBe(id);
    for (let i = 30; i < 60; i++) expect((await p.placeRoom(`room-${i}`, { now: NOW })).id).not.toBe("node-1");
  });

  test("no capacity is a 503 AppError", async () => {
    const reg = new MemoryNodeRegistry();
    await reg.create(makeNode({ id: "solo", capacity: 1, maxRooms: 1 }), NOW);
    const p = new MemoryPlacement(reg);
    await p.placeRoom("room-a", { now: NOW });
    const err = await p.placeRoom("room-b", { now: NOW }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).status).toBe(503);
    await p.releaseRoom("room-a");
    expect((await p.placeRoom("room-b", { now: NOW })).id).toBe("solo");
  });
});
