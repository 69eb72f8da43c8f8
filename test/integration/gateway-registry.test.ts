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
    // Listing is a pure read: the dead entry is still there (the templater re-renders on its own).
    expect(await t.redis.zscore(t.keys.gateways, "g-b")).toBe("10000");
    await reg.deregister("g-a", 11_200);
    expect(await reg.list(11_300)).toEqual([]);
    await waitFor(() => events.length >= 3, 2000, "gateway events");
    expect(events.map((e) => `${e.gatewayId}:${e.change}`)).toEqual(["g-b:up", "g-a:up", "g-a:down"]);
  });

  test("a replica whose record expired (a Redis outage longer than the TTL) is announced up again; a live beat prunes long-dead ones", async () => {
    t = testRedis("gw");
    const reg = new GatewayRegistry(t.redis, t.keys, 1000);
    const sub = t.connect();
    const events: GatewayEvent[] = [];
    sub.on("message", (_c: string, m: string) => events.push(JSON.parse(m) as GatewayEvent));
    await sub.subscribe(t.keys.gatewayEventsChannel);
    await reg.heartbeat({ id: "g-a", host: "127.0.0.1", port: 3000, startedAt: 1 }, 10_000);
    await reg.heartbeat({ id: "g-b", host: "127.0.0.1", port: 3001, startedAt: 1 }, 10_000);
    // What an outage does: the record expired, the set entry (append-only file) stayed.
    await t.redis.del(t.keys.gateway("g-a"));
    await reg.heartbeat({ id: "g-a", host: "127.0.0.1", port: 3000, startedAt: 1 }, 13_000);
    expect((await reg.list(13_100)).map((g) => g.id)).toEqual(["g-a"]);
    // g-b is more than two TTLs old at 13_000: pruned by g-a's beat.
    expect(await t.redis.zscore(t.keys.gateways, "g-b")).toBeNull();
    await waitFor(() => events.length >= 3, 2000, "gateway events");
    expect(events.map((e) => `${e.gatewayId}:${e.change}`)).toEqual(["g-a:up", "g-b:up", "g-a:up"]);
  });
});
