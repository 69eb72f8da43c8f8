/** REDIS_SENTINELS / REDIS_SENTINEL_NAME: parsed by loadConfig, turned into ioredis and BullMQ options. */
import { describe, expect, test } from "bun:test";
import { ConfigError, loadConfig } from "../../core/config.ts";
import { redisOptions } from "../../core/redis.ts";
import { bullConnection } from "../../scheduler/start-scheduler.ts";

describe("Redis Sentinel config", () => {
  test("unset: plain REDIS_URL host and port, no sentinels", () => {
    const c = loadConfig({ REDIS_URL: "redis://10.0.0.9:6390/2" });
    expect(c.redisSentinels).toEqual([]);
    expect(c.redisSentinelName).toBe("mymaster");
    const o = redisOptions(c);
    expect(o.host).toBe("10.0.0.9");
    expect(o.port).toBe(6390);
    expect(o.db).toBe(2);
    expect(o.sentinels).toBeUndefined();
  });

  test("set: sentinels and name, credentials and db still from REDIS_URL", () => {
    const c = loadConfig({ REDIS_URL: "redis://:pw@127.0.0.1:6379/3", REDIS_SENTINELS: "127.0.0.1:26379, 127.0.0.1:26380,[::1]:26381", REDIS_SENTINEL_NAME: "fleet" });
    expect(c.redisSentinels).toEqual([
      { host: "127.0.0.1", port: 26379 },
      { host: "127.0.0.1", port: 26380 },
      { host: "::1", port: 26381 },
    ]);
    const o = redisOptions(c);
    expect(o.sentinels).toEqual([...c.redisSentinels]);
    expect(o.name).toBe("fleet");
    expect(o.password).toBe("pw");
    expect(o.db).toBe(3);
    expect(o.maxRetriesPerRequest).toBeNull();
    const b = bullConnection(c) as Record<string, unknown>;
    expect(b.sentinels).toEqual([...c.redisSentinels]);
    expect(b.name).toBe("fleet");
    expect(b.host).toBeUndefined();
    expect(b.maxRetriesPerRequest).toBeNull();
  });

  test.each([
    ["127.0.0.1", "REDIS_SENTINELS entry"],
    ["127.0.0.1:0", "REDIS_SENTINELS entry"],
    ["host:99999", "REDIS_SENTINELS entry"],
    ["a:1,b", "REDIS_SENTINELS entry"],
  ])("bad REDIS_SENTINELS %p is refused", (value, message) => {
    expect(() => loadConfig({ REDIS_SENTINELS: value })).toThrow(ConfigError);
    expect(() => loadConfig({ REDIS_SENTINELS: value })).toThrow(message);
  });

  test("bad REDIS_SENTINEL_NAME is refused", () => {
    expect(() => loadConfig({ REDIS_SENTINEL_NAME: "a b" })).toThrow("REDIS_SENTINEL_NAME");
  });
});
