/** One suite, two registries: the in-memory one used by unit tests must behave like the Redis one. */
import { afterAll, describe, expect, test } from "bun:test";
import { InvalidTransitionError, MemoryNodeRegistry, NodeNotFoundError, RedisNodeRegistry, type NodeRegistry } from "../../model/node-registry.ts";
import type { NodeEvent } from "../../core/types.ts";
import { makeNode } from "../support/nodes.ts";
import { need, testRedis, waitFor, type TestRedis } from "../support/services.ts";

function conformance(name: string, make: () => Promise<NodeRegistry>) {
  describe(`NodeRegistry conformance: ${name}`, () => {
    test("create, get, list; a second create of the same id is refused", async () => {
      const r = await make();
      expect(await r.create(makeNode({ id: "n-2", state: "starting", port: 9002 }), 10)).toBe(true);
      expect(await r.create(makeNode({ id: "n-1", state: "starting", port: 9001 }), 10)).toBe(true);
      expect(await r.create(makeNode({ id: "n-1", state: "ready" }), 11)).toBe(false);
      const n1 = await r.get("n-1");
      expect(n1?.state).toBe("starting");
      expect(n1?.port).toBe(9001);
      expect((await r.list()).map((n) => n.id)).toEqual(["n-1", "n-2"]);
      expect(await r.get("nope")).toBeUndefined();
    });

    test("transitions follow the state machine and are stamped with now", async () => {
      const r = await make();
      await r.create(makeNode({ id: "n-1", state: "starting" }), 10);
      const ready = await r.transition("n-1", "ready", 50, { patch: { players: 2 } });
      expect(ready.state).toBe("ready");
      expect(ready.stateChangedAt).toBe(50);
      expect(ready.players).toBe(2);
      await expect(r.transition("n-1", "stopped", 60)).rejects.toBeInstanceOf(InvalidTransitionError);
      await expect(r.transition("missing", "ready", 60)).rejects.toBeInstanceOf(NodeNotFoundError);
      // expectFrom narrows further: only one of two racing drains wins.
      await r.transition("n-1", "draining", 70, { expectFrom: ["ready"] });
      await expect(r.transition("n-1", "draining", 71, { expectFrom: ["ready"] })).rejects.toBeInstanceOf(InvalidTransitionError);
      const s = await r.transition("n-1", "stopping", 80);
      expect(s.state).toBe("stopping");
      expect((await r.transition("n-1", "stopped", 90, { patch: { stoppedAt: 90 } })).stoppedAt).toBe(90);
      expect((await r.transition("n-1", "starting", 100)).state).toBe("starting"); // wake
    });

    test("concurrent transitions: exactly one wins", async () => {
      const r = await make();
      await r.create(makeNode({ id: "n-1", state: "ready" }), 10);
      const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => r.transition("n-1", "draining", 20 + i, { expectFrom: ["ready"] })));
      expect(results.filter((x) => x.status === "fulfilled").length).toBe(1);
    });

    test("update changes fields but never the state; touchActivity only moves forward", async () => {
      const r = await make();
      await r.create(makeNode({ id: "n-1", state: "ready", lastActivityAt: 100 }), 10);
      expect(await r.update("n-1", { rooms: 3, players: 4 })).toBe(true);
      expect(await r.update("ghost", { rooms: 3 })).toBe(false);
      await r.touchActivity("n-1", 500);
      await r.touchActivity("n-1", 300);
      await r.touchActivity("ghost", 300);
      const n = await r.get("n-1");
      expect(n?.rooms).toBe(3);
      expect(n?.players).toBe(4);
      expect(n?.lastActivityAt).toBe(500);
      expect(n?.state).toBe("ready");
      expect(await r.get("ghost")).toBeUndefined();
    });

    test("events: created, moved, deleted — in order", async () => {
      const r = await make();
      const seen: NodeEvent[] = [];
      const unsub = await r.subscribe((e) => seen.push(e));
      await r.create(makeNode({ id: "n-9", state: "starting" }), 1);
      await r.transition("n-9", "ready", 2, { reason: "healthy" });
      expect(await r.remove("n-9", 3)).toBe(true);
      expect(await r.remove("n-9", 4)).toBe(false);
      await waitFor(() => seen.length >= 3, 2000, "3 events");
      await unsub();
      expect(seen.map((e) => [e.nodeId, e.from ?? null, e.to ?? null, e.at])).toEqual([
        ["n-9", null, "starting", 1],
        ["n-9", "starting", "ready", 2],
        ["n-9", "ready", null, 3],
      ]);
      expect(await r.list()).toEqual([]);
    });
  });
}

conformance("memory", async () => new MemoryNodeRegistry());

const useRedis = need("redis");
const opened: TestRedis[] = [];
afterAll(async () => {
  for (const t of opened) await t.cleanup();
});
if (useRedis) {
  conformance("redis", async () => {
    const t = testRedis("registry");
    opened.push(t);
    return new RedisNodeRegistry(t.redis, t.keys, () => t.connect());
  });

  test("redis: removing a node deletes its rooms, activity and seat keys too (nothing leaks)", async () => {
    const t = testRedis("registry-rm");
    opened.push(t);
    const r = new RedisNodeRegistry(t.redis, t.keys, () => t.connect());
    await r.create(makeNode({ id: "n-1", state: "ready" }), 1);
    await t.redis.sadd(t.keys.nodeRooms("n-1"), "ROOM1");
    await t.redis.sadd(t.keys.nodeSeats("n-1"), "session-1");
    await t.redis.set(t.keys.nodeActivity("n-1"), "5");
    expect(await r.remove("n-1", 2)).toBe(true);
    const left = await t.redis.keys(`${t.prefix}:node:*`);
    expect(left).toEqual([]);
  });
}
