/**
 * Fixed-window rate limiting per key (IP), in memory: O(1) per check, no Redis round trip on the
 * request path. Each gateway replica counts its own traffic; HAProxy's per-IP connection rate
 * (HAPROXY_CONN_RATE) is the fleet-wide guard in front of them.
 */
import type { Clock } from "../../core/clock.ts";

/** Entries kept before stale windows are pruned (bounds memory under an address scan). */
const PRUNE_AT = 10_000;

export class FixedWindowLimiter {
  private readonly hits = new Map<string, { window: number; count: number }>();

  constructor(
    /** Allowed hits per key per window. */
    private readonly limit: number,
    private readonly clock: Pick<Clock, "now">,
    private readonly windowMs = 1000,
  ) {}

  /** Counts one hit for `key`; false when the key is over its limit in the current window. */
  hit(key: string): boolean {
    const window = Math.floor(this.clock.now() / this.windowMs);
    let e = this.hits.get(key);
    if (!e || e.window !== window) {
      if (!e && this.hits.size >= PRUNE_AT) this.prune(window);
      e = { window, count: 0 };
      this.hits.set(key, e);
    }
    e.count++;
    return e.count <= this.limit;
  }

  private prune(window: number): void {
    for (const [k, v] of this.hits) if (v.window !== window) this.hits.delete(k);
  }
}
