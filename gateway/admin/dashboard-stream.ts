/**
 * The dashboard's live feed (`/admin/events`, server-sent events). One hub per gateway: while at
 * least one browser listens it takes one snapshot per ADMIN_EVENTS_INTERVAL and at once on any
 * node or templater event, and sends it to every listener when it changed (otherwise a comment
 * line, which also keeps idle-timeouts of proxies and Bun from closing the stream). With no
 * listener it holds no timer and no subscription. While it has listeners it keeps
 * keys.dashboardWatch alive, so the scheduler samples node stats and log tails only then.
 */
import type { Clock, TimerHandle } from "../../core/clock.ts";
import type { Keys } from "../../core/keys.ts";
import type { Logger } from "../../core/log.ts";
import type { Redis } from "../../core/redis.ts";
import { dashboardSnapshot, type DashboardSources } from "./dashboard-data.ts";

export interface DashboardStreamDeps extends DashboardSources {
  keys: Keys;
  clock: Clock;
  log: Logger;
  newRedis: () => Redis;
  intervalMs: number;
  /** Written into keys.dashboardWatch (who is watching), for operators reading Redis. */
  gatewayId?: string;
}

interface Listener {
  send(chunk: string): void;
  /** The last snapshot JSON this listener got. */
  last: string | undefined;
}

const encoder = new TextEncoder();

export class DashboardStream {
  private readonly listeners = new Set<Listener>();
  private timer: TimerHandle | undefined;
  private sub: Redis | undefined;
  private ticking = false;
  private again = false;

  constructor(private readonly deps: DashboardStreamDeps) {}

  /** Number of open streams. */
  get size(): number {
    return this.listeners.size;
  }

  /** A `text/event-stream` response that lives until the client goes away. */
  open(signal: AbortSignal | undefined): Response {
    let listener: Listener | undefined;
    const stream = new ReadableStream<Uint8Array>({
      start: (controller) => {
        listener = {
          last: undefined,
          send: (chunk) => {
            try {
              controller.enqueue(encoder.encode(chunk));
            } catch {
              this.remove(listener);
            }
          },
        };
        this.add(listener);
        signal?.addEventListener("abort", () => {
          this.remove(listener);
          try {
            controller.close();
          } catch {
            /* already closed */
          }
        });
      },
      cancel: () => this.remove(listener),
    });
    return new Response(stream, {
      headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", connection: "keep-alive", "x-accel-buffering": "no" },
    });
  }

  /** Closes every stream and drops the subscription (gateway shutdown, tests). */
  async close(): Promise<void> {
    this.listeners.clear();
    await this.idle();
  }

  private add(l: Listener): void {
    this.listeners.add(l);
    l.send("retry: 2000\n\n");
    if (this.listeners.size === 1) this.wake();
    else void this.tick();
  }

  private remove(l: Listener | undefined): void {
    if (!l || !this.listeners.delete(l)) return;
    if (this.listeners.size === 0) void this.idle();
  }

  private wake(): void {
    this.timer = this.deps.clock.setInterval(() => void this.tick(), this.deps.intervalMs);
    const sub = this.deps.newRedis();
    this.sub = sub;
    sub.on("message", () => void this.tick());
    sub.on("error", (err: Error) => this.deps.log.debug("dashboard subscription error", { err }));
    sub.subscribe(this.deps.keys.nodeEventsChannel, this.deps.keys.templaterEventsChannel).catch((err: unknown) => this.deps.log.warn("dashboard could not subscribe", { err }));
    void this.tick();
  }

  private async idle(): Promise<void> {
    this.timer?.cancel();
    this.timer = undefined;
    const sub = this.sub;
    this.sub = undefined;
    if (sub) {
      await sub.unsubscribe().catch(() => {});
      sub.disconnect();
    }
  }

  /** One snapshot for everyone; ticks asked for while one runs fold into one more. */
  private async tick(): Promise<void> {
    if (this.ticking) {
      this.again = true;
      return;
    }
    this.ticking = true;
    try {
      do {
        this.again = false;
        if (this.listeners.size === 0) return;
        let json: string;
        try {
          // A dashboard is open: the scheduler samples node stats and log tails while this lives.
          await this.deps.redis.set(this.deps.keys.dashboardWatch, this.deps.gatewayId ?? "1", "PX", Math.max(3000, this.deps.intervalMs * 3));
          json = JSON.stringify(await dashboardSnapshot(this.deps, this.deps.clock.now()));
        } catch (err) {
          this.deps.log.warn("dashboard snapshot failed", { err });
          for (const l of this.listeners) l.send(`event: problem\ndata: ${JSON.stringify({ message: "snapshot failed; retrying" })}\n\n`);
          return;
        }
        // Snapshots differ in `at` only when nothing changed: compare without it.
        const key = json.replace(/^\{"at":\d+,/, "{");
        for (const l of this.listeners) {
          if (l.last === key) l.send(": unchanged\n\n");
          else {
            l.last = key;
            l.send(`event: snapshot\ndata: ${json}\n\n`);
          }
        }
      } while (this.again);
    } finally {
      this.ticking = false;
    }
  }
}
