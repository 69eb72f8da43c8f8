import { describe, expect, test } from "bun:test";
import { RedisNodeRegistry } from "../../model/node-registry.ts";
import { RedisPlacement } from "../../model/placement/redis-placement.ts";
import { makeNode } from "../support/nodes.ts";
import { placementConformance } from "../support/placement-conformance.ts";
import { need, testRedis, type TestRedis } from "../support/services.ts";

describe.skipIf(!need("redis"))("real Redis", () => {
  let tr: TestRedis | undefined;
  placementConformance(
    "RedisPlacement",
    () => {
      tr = testRedis("placeconf");
      const registry = new RedisNodeRegistry(tr.redis, tr.keys, () => tr!.connect());
      return { registry, placement: new RedisPlacement(tr.redis, tr.keys, registry) };
    },
    async () => {
      await tr?.cleanup();
      tr = undefined;
    },
  );

  test("RedisPlacement: removing a node deletes its reservation keys with the record", async () => {
    const t = testRedis("placekeys");
    try {
      const registry = new RedisNodeRegistry(t.redis, t.keys, () => t.connect());
      const p = new RedisPlacement(t.redis, t.keys, registry);
      await registry.create(makeNode({ id: "n1", capacity: 8, maxRooms: 8 }), 1);
      await p.placeRoom("room-a", { now: 1, seats: 4 });
      await p.placeRoomWithSeat("sess-a", "holder-a");
      expect(await t.redis.exists(t.keys.nodeRooms("n1"), t.keys.nodeSeats("n1"), t.keys.nodeRoomSeats("n1"))).toBe(3);
      await registry.remove("n1", 2);
      expect(await t.redis.exists(t.keys.nodeRooms("n1"), t.keys.nodeSeats("n1"), t.keys.nodeRoomSeats("n1"))).toBe(0);
    } finally {
      await t.cleanup();
    }
  });
});
