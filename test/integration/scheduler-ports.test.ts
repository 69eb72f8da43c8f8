/**
 * The port allocator's contract, run against both implementations (Redis Lua and in-memory), and
 * the registry's conditional remove the delete path relies on.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { MemoryNodeRegistry, RedisNodeRegistry, type NodeRegistry } from "../../model/node-registry.ts";
import { MemoryPortAllocator, RedisPortAllocator, type PortAllocator, type PortRange } from "../../scheduler/fleet/ports.ts";
import { T0, nodeRec } from "../support/scheduler-fixtures.ts";
import { need, testRedis, type TestRedis } from "../support/services.ts";

interface Subject {
  ports: PortAllocator;
  registry: NodeRegistry;
}

const redisRuns: TestRedis[] = [];
afterAll(async () => {
  for (const t of redisRuns) await t.cleanup();
});

const impls: { name: string; skip: boolean; make(range: PortRange): Subject }[] = [
  {
    name: "memory",
    skip: false,
    make(range) {
      const registry = new MemoryNodeRegistry();
      return { registry, ports: new MemoryPortAllocator(range, registry) };
    },
  },
  {
    name: "redis",
    skip: !need("redis"),
    make(range) {
      const t = testRedis("ports");
      redisRuns.push(t);
      return { registry: new RedisNodeRegistry(t.redis, t.keys, () => t.connect()), ports: new RedisPortAllocator(t.redis, t.keys, range) };
    },
  },
];

for (const impl of impls) {
  describe.skipIf(impl.skip)(`port allocator (${impl.name})`, () => {
    const range = (over: Partial<PortRange> = {}): PortRange => ({ start: 9000, end: 9009, exclude: [9001], maxServers: 5, ...over });

    test("hands out the lowest free port, skips excluded ones, and is idempotent per node", async () => {
      const { ports } = impl.make(range());
      expect(await ports.reserve("a", T0)).toEqual({ ok: true, port: 9000, existing: false });
      expect(await ports.reserve("b", T0)).toEqual({ ok: true, port: 9002, existing: false });
      expect(await ports.reserve("a", T0)).toEqual({ ok: true, port: 9000, existing: true });
    });

    test("200 concurrent reservations for 50 nodes: one port each, never above MAX_SERVERS", async () => {
      const { ports } = impl.make(range({ end: 9099, maxServers: 20 }));
      const results = await Promise.all(Array.from({ length: 200 }, (_, i) => ports.reserve(`n${i % 50}`, T0)));
      const byNode = new Map<string, Set<number>>();
      results.forEach((r, i) => {
        if (r.ok) {
          const s = byNode.get(`n${i % 50}`) ?? new Set<number>();
          s.add(r.port);
          byNode.set(`n${i % 50}`, s);
        }
      });
      expect(byNode.size).toBe(20);
      for (const s of byNode.values()) expect(s.size).toBe(1);
      const all = [...byNode.values()].map((s) => [...s][0]);
      expect(new Set(all).size).toBe(20);
      expect(results.filter((r) => !r.ok).every((r) => !r.ok && r.reason === "max-servers")).toBe(true);
      expect(await ports.liveCount()).toBe(20);
    });

    test("stopped nodes do not count against MAX_SERVERS but keep their port", async () => {
      const { ports, registry } = impl.make(range({ maxServers: 2 }));
      for (const id of ["a", "b"]) {
        const r = await ports.reserve(id, T0);
        await registry.create(nodeRec(id, { state: "ready", port: r.ok ? r.port : 0 }), T0);
      }
      expect(await ports.reserve("c", T0)).toMatchObject({ ok: false, reason: "max-servers" });
      await registry.transition("a", "stopping", T0);
      await registry.transition("a", "stopped", T0);
      expect(await ports.liveCount()).toBe(1);
      expect(await ports.reserve("c", T0)).toEqual({ ok: true, port: 9003, existing: false });
      expect(await ports.reserve("a", T0)).toEqual({ ok: true, port: 9000, existing: true });
    });

    test("a busy port is skipped until its mark expires; release frees a node's port", async () => {
      const { ports } = impl.make(range());
      const r = await ports.reserve("a", T0);
      expect(r).toMatchObject({ ok: true, port: 9000 });
      await ports.markBusy(9000, "a", T0, 1_000);
      expect(await ports.reserve("a", T0)).toMatchObject({ ok: true, port: 9002, existing: false });
      expect(await ports.reserve("b", T0 + 1_000)).toMatchObject({ ok: true, port: 9000 });
      await ports.releaseNode("b");
      expect(await ports.reserve("c", T0 + 1_000)).toMatchObject({ ok: true, port: 9000 });
    });

    test("no free port is reported as such", async () => {
      const { ports } = impl.make(range({ start: 9000, end: 9001, exclude: [9001] }));
      await ports.reserve("a", T0);
      expect(await ports.reserve("b", T0)).toEqual({ ok: false, reason: "no-free-port" });
    });

    test("sweep frees reservations of starts that died before registering, after the grace", async () => {
      const { ports, registry } = impl.make(range());
      await ports.reserve("ghost", T0);
      await ports.reserve("real", T0);
      await registry.create(nodeRec("real", { state: "starting" }), T0);
      expect(await ports.sweep(T0 + 500, 1_000)).toBe(0);
      expect(await ports.sweep(T0 + 1_001, 1_000)).toBe(1);
      expect(await ports.reserve("real", T0 + 2_000)).toMatchObject({ existing: true });
      expect(await ports.reserve("next", T0 + 2_000)).toMatchObject({ ok: true, port: 9000 });
    });

    test("registry: a conditional remove acts only in the expected state and epoch", async () => {
      const { registry } = impl.make(range());
      await registry.create(nodeRec("x", { state: "ready" }), T0);
      await registry.transition("x", "stopping", T0 + 1);
      await registry.transition("x", "stopped", T0 + 2);
      expect(await registry.remove("x", T0 + 3, "test", { state: "ready" })).toBe(false);
      expect(await registry.remove("x", T0 + 3, "test", { state: "stopped", stateChangedAt: T0 + 1 })).toBe(false);
      expect(await registry.get("x")).toBeDefined();
      expect(await registry.remove("x", T0 + 3, "test", { state: "stopped", stateChangedAt: T0 + 2 })).toBe(true);
      expect(await registry.get("x")).toBeUndefined();
      expect(await registry.remove("x", T0 + 4, "test")).toBe(false);
    });
  });
}
