import { afterEach, describe, expect, test } from "bun:test";
import { GatewayRegistry } from "../../model/gateway-registry.ts";
import type { GatewayEvent } from "../../core/types.ts";
import { need, testRedis, waitFor, type TestRedis } from "../support/services.ts";

describe.skipIf(!need("redis"))("GatewayRegistry (real Redis)", () => {
  let t: TestRedis;
  afterEach(async () => t.cleanup());

  test("replicas appear on heartbeat, vanish on deregister or after their TTL, with events", async () => {
    t = testRedis("gw");
    const reg = new GatewayRegistry(t.redis, t.keys, 1000);
    const sub = t.connect();
    const events: GatewayEvent[] = [];
    sub.on("message", (_c: string, m: string) => events.push(JSON.parse(m) as GatewayEvent));
    await sub.subscribe(t.keys.gatewayEventsChannel);

    await reg.heartbeat({ id: "g-b", host: "127.0.0.1", port: 3001, startedAt: 1 }, 10_000);
    await reg.heartbeat({ id: "g-a", host: "127.0.0.1", port: 3000, startedAt: 1 }, 10_000);
    await reg.heartbeat({ id: "g-a", host: "127.0.0.1", port: 3000, startedAt: 1 }, 10_500);
    expect((await reg.list(10_600)).map((g) => [g.id, g.port])).toEqual([
      ["g-a", 3000],
      ["g-b", 3001],
    ]);
    // g-b's last beat was at 10_000: dead at 11_100 with a 1 s TTL; g-a beat at 10_500.
    expect((await reg.list(11_100)).map((g) => g.id)).toEqual(["g-a"]);
    await reg.deregister("g-a", 11_200);
    expect(await reg.list(11_300)).toEqual([]);
    await waitFor(() => events.length >= 4, 2000, "gateway events");
    expect(events.map((e) => `${e.gatewayId}:${e.change}`)).toEqual(["g-b:up", "g-a:up", "g-b:down", "g-a:down"]);
  });
});
