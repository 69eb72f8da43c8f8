/**
 * The matchmaker as BullMQ work (issue 6), started by scheduler/main.ts. A BullMQ 6 job scheduler
 * adds a `tick` job every MATCHMAKER_INTERVAL to the `matchmaker` queue; every scheduler replica
 * upserts the same scheduler id (idempotent) and runs a worker on the queue. A tick runs passes
 * (./match-pass.ts) until a pass makes no room, so a burst of tickets is placed in one tick; when a
 * tick outlasts the interval, the next tick goes to another replica's worker and both run at once,
 * which the all-or-nothing claim makes safe.
 */
import { Queue, Worker } from "bullmq";
import type { Config } from "../../core/config.ts";
import type { Clock } from "../../core/clock.ts";
import type { BaseDeps } from "../../core/deps.ts";
import type { MetricsRegistry } from "../../core/metrics.ts";
import type { MatchPolicy } from "../../model/tickets/match-plan.ts";
import { runMatchPass, type MatchPassResult } from "./match-pass.ts";
import { TicketStore } from "../../model/tickets/ticket-store.ts";
import { isRedisUnavailable } from "../../core/redis-outage.ts";

export interface MatchmakerDeps extends BaseDeps {
  /** Called after every tick with what it did (tests, the benchmark, metrics). */
  onTick?: (result: MatchPassResult, worker: string) => void;
  /** A name for this worker in logs and `onTick`. Default: `matchmaker`. */
  name?: string;
  /** Where the matchmaker's counters and ticket-wait histogram go (the scheduler's registry). */
  metrics?: MetricsRegistry;
}

/** The job scheduler's id: one per deployment, shared by every replica. */
export const MATCHMAKER_SCHEDULER_ID = "matchmaker-tick";
/** Passes per tick at most, so one tick cannot run forever under a steady flood. */
const MAX_PASSES_PER_TICK = 50;

export function matchPolicy(config: Config): MatchPolicy {
  return {
    sessionSize: config.sessionSize,
    minPartialSessionSize: config.minPartialSessionSize,
    flushWaitMs: config.flushWaitMs,
    regionFallbackWaitMs: config.regionFallbackWaitMs,
    ticketTtlMs: config.ticketTtlMs,
  };
}

/** Oldest tickets read per queue per pass: enough for many full rooms, bounded for one Redis round. */
export function batchSize(config: Config): number {
  return Math.max(config.sessionSize * 128, 256);
}

/** Runs passes until one makes no room (or MAX_PASSES_PER_TICK). Exported for tests and the bench. */
export async function runTick(store: TicketStore, config: Config, clock: Clock, observeWait?: (ms: number) => void): Promise<MatchPassResult> {
  const total: MatchPassResult = { rooms: 0, matched: 0, expired: 0, lost: 0 };
  const policy = matchPolicy(config);
  for (let i = 0; i < MAX_PASSES_PER_TICK; i++) {
    const r = await runMatchPass(store, policy, clock.now(), { batch: batchSize(config), ...(observeWait ? { observeWait } : {}) });
    total.rooms += r.rooms;
    total.matched += r.matched;
    total.expired += r.expired;
    total.lost += r.lost;
    if (r.rooms === 0) break;
  }
  return total;
}

export async function startMatchmaker(deps: MatchmakerDeps): Promise<{ close(): Promise<void> }> {
  const log = deps.log.child("matchmaker");
  const name = deps.name ?? "matchmaker";
  const m = deps.metrics;
  const rooms = m?.counter("fleetgate_matchmaker_rooms_total", "Rooms created by the matchmaker");
  const tickets = m?.counter("fleetgate_matchmaker_tickets_total", "Tickets leaving the queue, by outcome (matched, expired)", ["outcome"]);
  const lost = m?.counter("fleetgate_matchmaker_lost_claims_total", "Planned matches another worker (or a cancel) got to first");
  const wait = m?.histogram("fleetgate_matchmaker_ticket_wait_seconds", "Time from enqueue to match", [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60]);
  const store = new TicketStore(deps);
  const queueConn = deps.newRedis();
  const workerConn = deps.newRedis();
  const queue = new Queue(deps.keys.queues.matchmaker, { connection: queueConn, prefix: deps.keys.bullPrefix });
  await queue.upsertJobScheduler(
    MATCHMAKER_SCHEDULER_ID,
    { every: deps.config.matchmakerIntervalMs },
    { name: "tick", data: {}, opts: { removeOnComplete: true, removeOnFail: { count: 100 } } },
  );
  const worker = new Worker(
    deps.keys.queues.matchmaker,
    async () => {
      const r = await runTick(store, deps.config, deps.clock, wait ? (ms) => wait.observe(ms / 1000) : undefined);
      rooms?.inc(undefined, r.rooms);
      tickets?.inc({ outcome: "matched" }, r.matched);
      tickets?.inc({ outcome: "expired" }, r.expired);
      lost?.inc(undefined, r.lost);
      if (r.rooms || r.expired || r.lost) log.debug("tick", { worker: name, ...r });
      deps.onTick?.(r, name);
      return r;
    },
    { connection: workerConn, prefix: deps.keys.bullPrefix, concurrency: 1 },
  );
  worker.on("failed", (_job, err) => log.warn("tick failed", { err }));
  // Connection errors repeat on every reconnect attempt (and a Queue with no listener prints each
  // with a stack); a Redis outage is logged once by the scheduler's RedisOutageWatch.
  worker.on("error", (err) => !isRedisUnavailable(err) && log.warn("worker error", { err }));
  queue.on("error", (err) => !isRedisUnavailable(err) && log.warn("queue error", { err }));
  return {
    async close() {
      await worker.close();
      await queue.close();
      queueConn.disconnect();
      workerConn.disconnect();
    },
  };
}
