/**
 * A Lua script run by SHA (EVALSHA), loaded on first NOSCRIPT. Used by the room store and the
 * matchmaker's ticket claim: every multi-key change there is one script, so it is atomic and
 * takes `now` as an argument instead of reading Redis's clock.
 */
import type { Redis } from "../core/redis.ts";

export class LuaScript {
  readonly sha: string;

  constructor(
    readonly name: string,
    readonly source: string,
  ) {
    this.sha = new Bun.CryptoHasher("sha1").update(source).digest("hex");
  }

  /** Runs the script; `keys` become KEYS, `args` ARGV. */
  async run(redis: Redis, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (err instanceof Error && err.message.startsWith("NOSCRIPT")) return await redis.eval(this.source, keys.length, ...keys, ...args);
      throw err;
    }
  }
}
