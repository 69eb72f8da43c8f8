/** What every process-level service is built from: config, keys, Redis, time and a logger. */
import type { Clock } from "./clock.ts";
import type { Config } from "./config.ts";
import type { Keys } from "./keys.ts";
import type { Logger } from "./log.ts";
import type { Redis } from "./redis.ts";

export interface BaseDeps {
  config: Config;
  keys: Keys;
  /** Shared command connection. */
  redis: Redis;
  /** Makes a new connection (subscribers, BullMQ); the caller closes it. */
  newRedis: () => Redis;
  clock: Clock;
  log: Logger;
}
