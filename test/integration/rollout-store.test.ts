/**
 * The rollout store and the placement version filter, one suite run against the in-memory and the
 * Redis implementations (real Redis): one running rollout at a time, the routing flip on finish,
 * promote, the timeline; new rooms to the target version (or a canary's share), a live room never
 * moves, and a full target version sends rooms to the old one rather than refusing them.
 */
import { afterAll, describe, expect, test } from "bun:test";
import type { NodeRecord } from "../../core/types.ts";
import type { Placement } from "../../model/contracts.ts";
import { MemoryNodeRegistry, RedisNodeRegistry, type NodeRegistry } from "../../model/node-registry.ts";
import { MemoryPlacement } from "../../model/placement/memory-placement.ts";
import { RedisPlacement } from "../../model/placement/redis-placement.ts";
import { MemoryRolloutStore, RedisRolloutStore, type RolloutStore } from "../../model/rollouts.ts";
import { makeNode } from "../support/nodes.ts";
import { need, testRedis, type TestRedis } from "../support/services.ts";

const V1 = { version: "v1", image: "img:v1" };
const NOW = 1_700_000_000_000;

interface UnderTest {
  store: RolloutStore;
  registry: NodeRegistry;
  placement: Placement;
}

const opened: TestRedis[] = [];
afterAll(async () => {
  for (const t of opened) await t.cleanup();
});

function memory(): UnderTest {
  const store = new MemoryRolloutStore(V1);
  const registry = new MemoryNodeRegistry();
  return { store, registry, placement: new MemoryPlacement(registry, undefined, store) };
}

function redis(): UnderTest {
  const t = testRedis("rollstore");
  opened.push(t);
  const store = new RedisRolloutStore(t.redis, t.keys, V1);
  const registry = new RedisNodeRegistry(t.redis, t.keys, () => t.connect());
  return { store, registry, placement: new RedisPlacement(t.redis, t.keys, registry, { versions: store }) };
}

const begin = (s: RolloutStore, id: string, over: { canaryPercent?: number; version?: string } = {}) =>
  s.begin({ id, version: over.version ?? "v2", image: `img:${over.version ?? "v2"}`, env: { A: "1" }, canaryPercent: over.canaryPercent ?? 100, maxSurge: 1, drainDeadlineMs: 20_000, startedAt: NOW, oldNodes: ["a"], by: "admin" });

async function nodes(t: UnderTest, list: Array<Partial<NodeRecord> & { id: string }>): Promise<void> {
  for (const n of list) await t.registry.create(makeNode({ capacity: 10_000, maxRooms: 10_000, ...n }), NOW);
}

for (const [name, make] of [
  ["memory", memory],
  ["redis", redis],
] as const) {
  describe.skipIf(name === "redis" && !need("redis"))(`rollout store + version placement: ${name}`, () => {
    test("one running rollout; finish flips the routing once; the record keeps the reason", async () => {
      const t = make();
      expect(await t.store.routing()).toEqual({ active: V1, canaryPercent: 100 });
      const a = await begin(t.store, "ro-a");
      expect(a.ok).toBe(true);
      if (a.ok) expect(a.record).toMatchObject({ fromVersion: "v1", fromImage: "img:v1", state: "running", env: { A: "1" }, oldNodes: ["a"] });
      expect(await begin(t.store, "ro-b", { version: "v3" })).toEqual({ ok: false, runningId: "ro-a" });
      expect(await t.store.routing()).toEqual({ active: V1, target: { version: "v2", image: "img:v2", env: { A: "1" } }, canaryPercent: 100, rolloutId: "ro-a" });
      expect(await t.store.nextSlot("ro-a")).toBe(0);
      expect(await t.store.nextSlot("ro-a")).toBe(1);
      expect(await t.store.addFailure("ro-a")).toBe(1);
      await t.store.addNewNode("ro-a", "n1");
      await t.store.addNewNode("ro-a", "n1");
      await t.store.addDrained("ro-a", "a");
      await t.store.event("ro-a", { at: NOW, event: "started" });
      await t.store.event("ro-a", { at: NOW + 5, event: "new node ready", detail: "n1" });
      expect(await t.store.finish("ro-a", "rolled_back", "3 failed", NOW + 10)).toBe(true);
      expect(await t.store.finish("ro-a", "succeeded", "again", NOW + 11)).toBe(false);
      const r = await t.store.get("ro-a");
      expect(r).toMatchObject({ state: "rolled_back", reason: "3 failed", finishedAt: NOW + 10, failures: 1, slots: 2, newNodes: ["n1"], drained: ["a"] });
      expect(await t.store.routing()).toEqual({ active: V1, canaryPercent: 100 });
      expect((await t.store.events("ro-a")).map((e) => e.event)).toEqual(["started", "new node ready"]);
      // A new rollout may start now; succeeding makes its version active.
      expect((await begin(t.store, "ro-c", { canaryPercent: 25 })).ok).toBe(true);
      expect((await t.store.routing()).canaryPercent).toBe(25);
      expect(await t.store.promote("ro-c")).toBe(true);
      expect((await t.store.routing()).canaryPercent).toBe(100);
      expect(await t.store.finish("ro-c", "succeeded", "done", NOW + 20)).toBe(true);
      expect(await t.store.promote("ro-c")).toBe(false);
      expect((await t.store.routing()).active).toEqual({ version: "v2", image: "img:v2", env: { A: "1" } });
      expect((await t.store.list(10)).map((x) => x.id).sort()).toEqual(["ro-a", "ro-c"]);
    });

    test("placement: new rooms go to the target version; a live room stays; a full target overflows to the old version", async () => {
      const t = make();
      await nodes(t, [
        { id: "old-1", version: "v1" },
        { id: "old-2", version: "" },
        { id: "new-1", version: "v2", capacity: 24, maxRooms: 3 },
      ]);
      const before = await t.placement.placeRoom("room-before", { now: NOW, seats: 8 });
      expect(before.version === "v1" || before.version === "").toBe(true); // no rollout: v2 is not preferred
      expect((await begin(t.store, "ro-p")).ok).toBe(true);
      const placed: string[] = [];
      for (let i = 0; i < 3; i++) placed.push((await t.placement.placeRoom(`room-new-${i}`, { now: NOW, seats: 8 })).id);
      expect(placed).toEqual(["new-1", "new-1", "new-1"]);
      // The target is full: the next room is not refused, it goes to the old version.
      const overflow = await t.placement.placeRoom("room-overflow", { now: NOW, seats: 8 });
      expect(overflow.id).not.toBe("new-1");
      // The room placed before the rollout never moves.
      expect((await t.placement.placeRoom("room-before", { now: NOW, seats: 8 })).id).toBe(before.id);
      // Cancelled: new rooms go to the active version again.
      await t.store.finish("ro-p", "cancelled", "test", NOW);
      await nodes(t, [{ id: "new-2", version: "v2" }]);
      for (let i = 0; i < 20; i++) expect((await t.placement.placeRoom(`room-after-${i}`, { now: NOW, seats: 1 })).version).not.toBe("v2");
    });

    test("placement: a 25% canary takes exactly 25 of 100 new rooms (the issue allows 15-35)", async () => {
      const t = make();
      await nodes(t, [
        { id: "old-1", version: "v1" },
        { id: "old-2", version: "v1" },
        { id: "new-1", version: "v2" },
      ]);
      expect((await begin(t.store, "ro-c", { canaryPercent: 25 })).ok).toBe(true);
      let onCanary = 0;
      for (let i = 0; i < 100; i++) if ((await t.placement.placeRoom(`canary-room-${i}`, { now: NOW, seats: 1 })).version === "v2") onCanary++;
      expect(onCanary).toBe(25);
    });
  });
}
