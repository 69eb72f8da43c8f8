/**
 * Node stats and log tails for the dashboard's node view. While a dashboard is open (a gateway
 * keeps keys.dashboardWatch alive), one scheduler replica per interval (keys.lock("node-stats"))
 * asks the driver for every live node's CPU / memory (Docker: the engine's container stats) and
 * the tail of its log, and stores them under keys.nodeStats / keys.nodeLogs with a short TTL. With
 * no dashboard open it costs one EXISTS per interval.
 */
import type { Clock, TimerHandle } from "../../core/clock.ts";
import type { Keys } from "../../core/keys.ts";
import type { Logger } from "../../core/log.ts";
import type { Redis } from "../../core/redis.ts";
import type { NodeRegistry } from "../../model/node-registry.ts";
import type { NodeDriver } from "../drivers/driver.ts";

/** Lines of log kept per node. */
export const NODE_LOG_TAIL_LINES = 200;
/** Bytes of log kept per node (the tail of the tail). */
export const NODE_LOG_MAX_BYTES = 64 * 1024;
/** Nodes sampled at once. */
const CONCURRENCY = 8;

export interface NodeStatsDeps {
  redis: Redis;
  keys: Keys;
  nodes: NodeRegistry;
  driver: NodeDriver;
  clock: Clock;
  log: Logger;
  intervalMs: number;
}

export class NodeStatsCollector {
  private timer: TimerHandle | undefined;
  private running: Promise<unknown> | undefined;

  constructor(private readonly deps: NodeStatsDeps) {}

  start(): void {
    if (this.timer) return;
    this.timer = this.deps.clock.setInterval(() => {
      if (this.running) return;
      this.running = this.tick()
        .catch((err: unknown) => this.deps.log.debug("node stats sample failed", { err }))
        .finally(() => (this.running = undefined));
    }, this.deps.intervalMs);
  }

  async stop(): Promise<void> {
    this.timer?.cancel();
    this.timer = undefined;
    await this.running;
  }

  /** One round; returns how many nodes were sampled (0 when no dashboard is open or another replica has the turn). */
  async tick(): Promise<number> {
    const { redis, keys, driver } = this.deps;
    if (!(await redis.exists(keys.dashboardWatch))) return 0;
    const turn = await redis.set(keys.lock("node-stats"), "1", "PX", Math.max(1, Math.floor(this.deps.intervalMs * 0.9)), "NX");
    if (turn !== "OK") return 0;
    const live = (await this.deps.nodes.list()).filter((n) => n.state !== "stopped");
    const ttl = Math.max(3000, this.deps.intervalMs * 3);
    let done = 0;
    for (let i = 0; i < live.length; i += CONCURRENCY) {
      await Promise.all(
        live.slice(i, i + CONCURRENCY).map(async (n) => {
          const [stats, logs] = await Promise.all([driver.stats ? driver.stats(n.id).catch(() => undefined) : Promise.resolve(undefined), driver.logs(n.id, NODE_LOG_TAIL_LINES).catch(() => undefined)]);
          const m = redis.multi();
          if (stats) m.set(keys.nodeStats(n.id), JSON.stringify(stats), "PX", ttl);
          if (logs !== undefined) m.set(keys.nodeLogs(n.id), logs.length > NODE_LOG_MAX_BYTES ? logs.slice(-NODE_LOG_MAX_BYTES) : logs, "PX", ttl);
          await m.exec();
          done++;
        }),
      );
    }
    return done;
  }
}
