import IORedis, { type RedisOptions } from "ioredis";

/**
 * Redis connections. BullMQ needs `maxRetriesPerRequest: null` on every connection it uses (or the
 * Worker throws and the process hangs), so every connection made here has it.
 */
export function redisOptions(target: RedisTarget, extra: RedisOptions = {}): RedisOptions {
  const t: RedisTargetConfig = typeof target === "string" ? { redisUrl: target } : target;
  const u = new URL(t.redisUrl);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  const sentinels = t.redisSentinels ?? [];
  return {
    ...(sentinels.length > 0
      ? {
          // Sentinel mode: the primary's address is asked of the sentinels on every (re)connect;
          // a failover drops the connections to the old primary (killed, or demoted: Redis closes
          // its clients), so the reconnect finds the new one. ioredis's optional failover detector
          // (+switch-master subscriptions) is off: with it, a reconnect that raced the
          // announcement sometimes never completed (the chaos suite's failover failed 2 runs of 11
          // with it, 0 of 19 without).
          sentinels: sentinels.map((s) => ({ host: s.host, port: s.port })),
          name: t.redisSentinelName ?? "mymaster",
          failoverDetector: false,
        }
      : { host: u.hostname || "127.0.0.1", port: u.port ? Number(u.port) : 6379 }),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    db: Number.isFinite(db) ? db : 0,
    ...(u.protocol === "rediss:" ? { tls: {} } : {}),
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    lazyConnect: false,
    // Reconnect at least every 500 ms (ioredis's default backs off to 2 s): a Redis that is back is
    // used again within half a second (`/ready` 200, the gateway re-registered). The attempts are
    // not logged one by one (core/redis-outage.ts).
    retryStrategy: (times: number) => Math.min(times * 50, 500),
    ...extra,
  };
}

/** One sentinel's address (REDIS_SENTINELS entry). */
export interface SentinelAddress {
  host: string;
  port: number;
}

/**
 * Where Redis is: the config's REDIS_URL (credentials and db still come from it in Sentinel mode)
 * and, when REDIS_SENTINELS is set, the sentinels that name the current primary of
 * REDIS_SENTINEL_NAME. A `Config` is one.
 */
export interface RedisTargetConfig {
  readonly redisUrl: string;
  readonly redisSentinels?: readonly SentinelAddress[];
  readonly redisSentinelName?: string;
}

/** A bare URL, or the config's Redis fields. */
export type RedisTarget = string | RedisTargetConfig;

export function createRedis(target: RedisTarget, extra: RedisOptions = {}): IORedis {
  return new IORedis(redisOptions(target, extra));
}

/** True when Redis at `target` answers PING within `timeoutMs`. */
export async function redisAnswers(target: RedisTarget, timeoutMs = 1000): Promise<boolean> {
  const r = createRedis(target, {
    lazyConnect: true,
    retryStrategy: () => null,
    sentinelRetryStrategy: () => null,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 1,
    failoverDetector: false,
  });
  r.on("error", () => {});
  // The whole check is bounded: something that accepts the connection but never answers (not a
  // Redis) would otherwise hold the ready check, and the PING, forever.
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs * 2)));
  try {
    return await Promise.race([r.connect().then(async () => (await r.ping()) === "PONG"), late]);
  } catch {
    return false;
  } finally {
    if (timer) clearTimeout(timer);
    r.disconnect();
  }
}

export type Redis = IORedis;

/** Deletes every key under `prefix:` (SCAN, never KEYS). Returns how many were deleted. */
export async function deletePrefix(redis: IORedis, prefix: string): Promise<number> {
  let cursor = "0";
  let n = 0;
  do {
    const [next, batch] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
    cursor = next;
    if (batch.length) n += await redis.del(...batch);
  } while (cursor !== "0");
  return n;
}
