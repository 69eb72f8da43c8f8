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

/**
 * The client address a rate limit counts: the last X-Forwarded-For hop (appended by the HAProxy
 * edge; earlier hops are whatever the client sent) when proxies are trusted, else the peer.
 */
export function clientAddress(request: Request, peer: string | undefined, trustProxy: boolean): string {
  if (trustProxy) {
    const xff = request.headers.get("x-forwarded-for");
    if (xff) {
      const last = xff.slice(xff.lastIndexOf(",") + 1).trim();
      if (last) return last.slice(0, 64);
    }
  }
  return peer ?? "local";
}
