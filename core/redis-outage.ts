/**
 * Redis outages, seen from one process: logged once when the first connection loses Redis and
 * once when every watched connection has it back (never per retry, never with a stack), and told
 * to whoever must act on recovery (a gateway re-registers itself, the templater re-renders).
 *
 * ioredis emits `error` on every failed reconnect attempt (without a listener it prints each one
 * with its stack) and `reconnecting` before every retry; `ready` once a connection works again;
 * `end` when it will not reconnect (quit/disconnect). An intentional quit emits no `reconnecting`.
 */
import { AppError } from "./errors.ts";
import type { Logger } from "./log.ts";

/** The events of an ioredis connection this module listens to. */
export interface RedisEvents {
  on(event: "error", fn: (err: Error) => void): unknown;
  on(event: "ready" | "reconnecting" | "end", fn: () => void): unknown;
}

export class RedisOutageWatch {
  private readonly down = new Set<RedisEvents>();
  private since: number | undefined;
  private lastReason = "";
  private readonly recovered = new Set<() => void>();

  constructor(
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** True while at least one watched connection has lost Redis. */
  get outage(): boolean {
    return this.since !== undefined;
  }

  /** Follows `conn` (and keeps ioredis from printing its errors). Returns `conn`. */
  watch<T extends RedisEvents>(conn: T): T {
    conn.on("error", (err: Error) => this.lost(conn, err.message || String(err)));
    conn.on("reconnecting", () => this.lost(conn, this.lastReason || "connection lost"));
    conn.on("ready", () => this.back(conn));
    // Closed for good (quit/disconnect): no longer counted, but its end is not a recovery.
    conn.on("end", () => this.down.delete(conn));
    return conn;
  }

  /** Calls `fn` each time an outage ends. Returns an unsubscribe function. */
  onRecover(fn: () => void): () => void {
    this.recovered.add(fn);
    return () => this.recovered.delete(fn);
  }

  private lost(conn: RedisEvents, reason: string): void {
    this.lastReason = reason;
    this.down.add(conn);
    if (this.since !== undefined) return;
    this.since = this.now();
    this.log.warn(`Redis unreachable (${reason}); requests that need it answer 503 until it is back`);
  }

  private back(conn: RedisEvents): void {
    if (!this.down.delete(conn) || this.down.size > 0 || this.since === undefined) return;
    const secs = ((this.now() - this.since) / 1000).toFixed(1);
    this.since = undefined;
    this.log.info(`Redis reachable again after ${secs} s`);
    for (const fn of this.recovered) {
      try {
        fn();
      } catch (err) {
        this.log.warn("Redis recovery hook failed", { err });
      }
    }
  }
}

/**
 * ioredis rejects commands it could not deliver with plain `Error`s, not classes of their own
 * (MaxRetriesPerRequestError has one, but ioredis 6's entry point does not export it); these are
 * their messages (Command.js, Redis.js, utils CONNECTION_CLOSED_ERROR_MSG). A reply error from
 * Redis itself is not an outage.
 */
const UNAVAILABLE_MESSAGES = new Set([
  "Command timed out",
  "Connection is closed.",
  "Stream isn't writeable and enableOfflineQueue options is false",
]);

/** True for an error that says Redis could not be reached (as opposed to a bad command). */
export function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  // Its class is not exported by ioredis 6's entry point: known by its name.
  if (err.name === "MaxRetriesPerRequestError") return true;
  if (UNAVAILABLE_MESSAGES.has(err.message)) return true;
  const code = (err as Error & { code?: unknown }).code;
  return code === "ECONNREFUSED" || code === "ECONNRESET" || code === "ETIMEDOUT" || code === "EPIPE";
}

/** The contract's 503 for a request that needs Redis while it is unreachable. */
export function redisUnavailable(): AppError {
  return new AppError(503, "REDIS_UNAVAILABLE", "the registry (Redis) is unreachable; retry shortly");
}
