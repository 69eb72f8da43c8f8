/** The matchmaker as BullMQ work (issue 6). STUB: started by scheduler/main.ts. */
import type { Config } from "../../core/config.ts";
import type { Clock } from "../../core/clock.ts";
import type { Keys } from "../../core/keys.ts";
import type { Logger } from "../../core/log.ts";
import type { Redis } from "../../core/redis.ts";

export interface MatchmakerDeps {
  config: Config;
  keys: Keys;
  redis: Redis;
  newRedis: () => Redis;
  clock: Clock;
  log: Logger;
}

export async function startMatchmaker(_deps: MatchmakerDeps): Promise<{ close(): Promise<void> }> {
  return { async close() {} };
}
