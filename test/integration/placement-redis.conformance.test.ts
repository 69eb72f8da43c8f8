import { describe } from "bun:test";
import { RedisNodeRegistry } from "../../model/node-registry.ts";
import { RedisPlacement } from "../../model/placement/redis-placement.ts";
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
});
