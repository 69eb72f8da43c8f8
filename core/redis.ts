import IORedis, { type RedisOptions } from "ioredis";

/**
 * Redis connections. BullMQ needs `maxRetriesPerRequest: null` on every connection it uses (or the
 * Worker throws and the process hangs), so every connection made here has it.
 */
export function redisOptions(url: string, extra: RedisOptions = {}): RedisOptions {
  const u = new URL(url);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  return {
    host: u.hostname || "127.0.0.1",
    port: u.port ? Number(u.port) : 6379,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    db: Number.isFinite(db) ? db : 0,
    ...(u.protocol === "rediss:" ? { tls: {} } : {}),
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    lazyConnect: false,
    ...extra,
  };
}

export function createRedis(url: string, extra: RedisOptions = {}): IORedis {
  return new IORedis(redisOptions(url, extra));
}

/** True when Redis at `url` answers PING within `timeoutMs`. */
export async function redisAnswers(url: string, timeoutMs = 1000): Promise<boolean> {
  const r = createRedis(url, { lazyConnect: true, retryStrategy: () => null, connectTimeout: timeoutMs, maxRetriesPerRequest: 1 });
  r.on("error", () => {});
  try {
    await r.connect();
    return (await r.ping()) === "PONG";
  } catch {
    return false;
  } finally {
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
