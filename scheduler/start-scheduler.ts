/**
 * startScheduler: the scheduler as a library, so `scheduler/main.ts`, `npm start` and tests run the
 * same thing in-process. It wires the node registry, port allocator, lifecycle service and job
 * processors to BullMQ workers, installs the job schedulers (autoscale, health, reap ticks), serves
 * Prometheus metrics, and starts the matchmaker. Any number of replicas may run at once against
 * one Redis prefix; none is a leader (see scheduler/fleet/node-lifecycle.ts for why that is safe).
 */
import { QueueEvents, Worker, type ConnectionOptions, type Job } from "bullmq";
import type { Server } from "bun";
import { randomUUID } from "node:crypto";
import { realClock, type Clock } from "../core/clock.ts";
import type { Config } from "../core/config.ts";
import { createKeys, type Keys } from "../core/keys.ts";
import { createLogger, type Logger } from "../core/log.ts";
import { within } from "../core/process-lifecycle.ts";
import { isRedisUnavailable, RedisOutageWatch } from "../core/redis-outage.ts";
import { MetricsRegistry } from "../core/metrics.ts";
import { RedisNodeRegistry, type NodeRegistry } from "../model/node-registry.ts";
import { createRedis, redisOptions, type Redis, type RedisTarget } from "../core/redis.ts";
import type { DrainJob, NodeRecord, ReapJob, ScaleUpJob, WakeJob } from "../core/types.ts";
import { sweepExpiredSessions } from "../model/sessions/session-store.ts";
import { sweepAbsentSeats } from "../model/rooms/seat-reaper.ts";
import type { NodeDriver } from "./drivers/driver.ts";
import { httpHealthProbe, type HealthProbe } from "./fleet/health-probe.ts";
import { NodeLifecycle, localPortInUse } from "./fleet/node-lifecycle.ts";
import { NodeStatsCollector } from "./fleet/node-stats.ts";
import { RedisPortAllocator } from "./fleet/ports.ts";
import { ScaleStateStore, livePendingJoins } from "../model/scale-state.ts";
import { RedisRolloutStore, defaultVersion } from "../model/rollouts.ts";
import { processRestart, processRollout } from "./jobs/rollout.ts";
import type { RestartJob, RolloutJob } from "../core/types.ts";
import { processAutoscaleTick } from "./jobs/autoscale.ts";
import type { SchedulerContext, TickLocks } from "./jobs/context.ts";
import { processDrain } from "./jobs/drain.ts";
import { processHealthTick } from "./jobs/health.ts";
import { processReapNode, processReapSweep } from "./jobs/reap.ts";
import { processScaleUp } from "./jobs/scale-up.ts";
import { processWake } from "./jobs/wake.ts";
import { startMatchmaker } from "./matchmaker/index.ts";
import { createSchedulerMetrics, type SchedulerMetrics } from "./metrics.ts";
import { createQueues, createSchedulerClient, jobIds, jobNames, schedulerIds, type SchedulerClient, type SchedulerQueues } from "../model/jobs.ts";

export interface StartSchedulerDeps {
  config: Config;
  /** The driver that runs nodes (chosen by main.ts from config.nodeDriver). Closed on close(). */
  driver: NodeDriver;
  log?: Logger;
  clock?: Clock;
  metrics?: MetricsRegistry;
  /** Node health probe. Default: HTTP GET /health. */
  probe?: HealthProbe;
  /** Port-in-use check for new reservations. Default: try to bind on NODE_BIND_ADDRESS. */
  portInUse?: (port: number) => Promise<boolean>;
  /**
   * The player-session sweeper the reaper runs each tick. Default: the gateway's
   * (model/sessions/session-store.ts sweepExpiredSessions — gateways sweep too; a sweep is
   * idempotent, and this one keeps seats released while no gateway runs). `false`: none.
   */
  sweepSessions?: ((now: number) => Promise<unknown>) | false;
  /**
   * The rooms' absent-seat reaper the reaper runs each tick. Default: model/rooms/seat-reaper.ts
   * sweepAbsentSeats on this scheduler's Redis (safe in every replica at once). `false`: none.
   */
  sweepAbsentSeats?: ((now: number) => Promise<unknown>) | false;
  /** Install the autoscale/health/reap job schedulers. Default true (tests of single jobs turn them off). */
  ticks?: boolean;
  /** Start the matchmaker. Default true. */
  matchmaker?: boolean;
}

export interface RunningScheduler {
  keys: Keys;
  redis: Redis;
  registry: NodeRegistry;
  queues: SchedulerQueues;
  client: SchedulerClient;
  /** Long-lived QueueEvents of the scale-up queue (created before any job is added). */
  scaleUpEvents: QueueEvents;
  lifecycle: NodeLifecycle;
  metrics: SchedulerMetrics;
  /** `http://host:port/metrics`, when served. */
  metricsUrl: string | undefined;
  close(): Promise<void>;
}

/**
 * BullMQ connection options from REDIS_URL: options, not an instance, so BullMQ makes (and closes)
 * its own connections — with `maxRetriesPerRequest: null`, or its Worker throws and the process
 * hangs (DESIGN, Stack notes). Picked field by field: BullMQ's option type is not ioredis 6's.
 */
export function bullConnection(target: RedisTarget): ConnectionOptions {
  const o = redisOptions(target);
  return {
    // Sentinel mode (REDIS_SENTINELS): BullMQ's connections follow a failover like ours do.
    ...(o.sentinels ? { sentinels: o.sentinels, name: o.name, failoverDetector: o.failoverDetector } : { host: o.host, port: o.port }),
    db: o.db,
    ...(o.username ? { username: o.username } : {}),
    ...(o.password ? { password: o.password } : {}),
    ...(o.tls ? { tls: o.tls } : {}),
    maxRetriesPerRequest: null,
  };
}

/** Lock TTLs keep a dead holder from blocking ticks for longer than that. */
function redisTickLocks(redis: Redis, keys: Keys): TickLocks {
  const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;
  return {
    async tryTick(name, ttlMs) {
      const token = randomUUID();
      const key = keys.lock(name);
      const ok = await redis.set(key, token, "PX", ttlMs, "NX");
      if (ok !== "OK") return undefined;
      return async () => {
        await redis.eval(RELEASE, 1, key, token);
      };
    },
  };
}

/** How long close() lets running jobs finish before leaving them to stalled-job recovery. */
const CLOSE_GRACE_MS = 3_000;

export async function startScheduler(deps: StartSchedulerDeps): Promise<RunningScheduler> {
  const { config, driver } = deps;
  const clock = deps.clock ?? realClock;
  const log = deps.log ?? createLogger("scheduler", config.logLevel, { format: config.logFormat });
  const keys = createKeys(config.redisPrefix);
  const connections: Redis[] = [];
  // One log line when Redis goes away and one when it is back (ioredis would print every retry).
  const outage = new RedisOutageWatch(log);
  const newRedis = () => {
    const r = createRedis(config);
    outage.watch(r);
    connections.push(r);
    return r;
  };
  const redis = newRedis();
  const registry = new RedisNodeRegistry(redis, keys, newRedis);
  const ports = new RedisPortAllocator(redis, keys, {
    start: config.serverPortStart,
    end: config.serverPortEnd,
    // Ports of the stack itself are never handed to a node, even when nothing listens on them yet.
    exclude: [config.port, config.haproxyPort, config.haproxyStatsPort, config.haproxyTlsPort, config.schedulerMetricsPort].filter((p) => p > 0),
    maxServers: config.maxServers,
  });
  const metrics = createSchedulerMetrics(deps.metrics ?? new MetricsRegistry({ processMetrics: true }));
  const lifecycle = new NodeLifecycle({
    config,
    registry,
    driver,
    ports,
    clock,
    log: log.child("lifecycle"),
    probe: deps.probe ?? httpHealthProbe,
    portInUse: deps.portInUse ?? localPortInUse(config.nodeBindAddress),
  });
  const connection = bullConnection(config);
  const queues = createQueues(connection, keys);
  // Queues re-emit their connections' errors, one per reconnect attempt (printed with a stack when
  // nobody listens); the outage watch reports an outage once.
  const quiet = (what: string) => (err: Error) => !outage.outage && !isRedisUnavailable(err) && log.warn(`${what} error`, { error: err.message });
  for (const q of queues.all()) q.on("error", quiet("job queue"));
  const client = createSchedulerClient(queues);
  // One long-lived QueueEvents, created and ready before any job is added (a QueueEvents created
  // per wait misses events that fire before it subscribes).
  const scaleUpEvents = new QueueEvents(keys.queues.scaleUp, { connection, prefix: keys.bullPrefix });
  scaleUpEvents.on("error", quiet("queue events"));
  await scaleUpEvents.waitUntilReady();
  scaleUpEvents.on("failed", ({ jobId, failedReason }) => log.warn("scale-up job failed", { jobId, failedReason }));

  const scaleState = new ScaleStateStore(redis, keys);
  const rollouts = new RedisRolloutStore(redis, keys, defaultVersion(config.nodeImage));
  const ctx: SchedulerContext = {
    config,
    clock,
    log,
    registry,
    driver,
    ports,
    lifecycle,
    scaleState,
    rollouts,
    metrics,
    locks: redisTickLocks(redis, keys),
    autoscaleMemo: { lastReason: "" },
    signals: {
      pendingJoins: (now) => livePendingJoins(redis, keys, now),
      async pendingStarts(nodes: readonly NodeRecord[]) {
        // Nodes promised by scale-up jobs not yet processed or mid-start, minus those of them
        // already registered — so a tick right after a scale-up does not ask again.
        const jobs = await queues.scaleUp.getJobs(["waiting", "active", "delayed", "prioritized"], 0, 999);
        const registered = new Map<string, number>();
        for (const n of nodes) registered.set(n.requestId, (registered.get(n.requestId) ?? 0) + 1);
        let pending = 0;
        for (const j of jobs) {
          const d = j.data as ScaleUpJob | undefined;
          if (d && Number.isInteger(d.count)) pending += Math.max(0, d.count - (registered.get(d.requestId) ?? 0));
        }
        return pending;
      },
    },
    requests: {
      scaleUp: (job) => client.requestScaleUp(job),
      drain: (job) => client.requestDrain(job),
      async reapNode(job) {
        // The id dedupes an action while it is queued or running (two replicas sweeping at once);
        // removed once done, so a later sweep can decide the same action again if it is still
        // needed (a step that stepped aside, an orphan that reappeared). A failed one is kept for
        // a while for the board, and blocks its id only that long.
        await queues.reap.add(jobNames.reapNode, job, {
          jobId: jobIds.reap(job.nodeId, job.stage, job.epoch),
          removeOnComplete: true,
          removeOnFail: { age: 600, count: 1000 },
        });
      },
    },
    ...(deps.sweepSessions === false ? {} : { sweepSessions: deps.sweepSessions ?? ((now: number) => sweepExpiredSessions(redis, keys, now)) }),
    ...(deps.sweepAbsentSeats === false ? {} : { sweepAbsentSeats: deps.sweepAbsentSeats ?? ((now: number) => sweepAbsentSeats({ redis, keys, config, log }, now)) }),
  };

  const workerOpts = {
    connection,
    prefix: keys.bullPrefix,
    concurrency: config.schedulerConcurrency,
    lockDuration: config.schedulerLockDurationMs,
    // Check for stalled jobs twice per lock period: a replica killed mid-job is replaced within
    // about one SCHEDULER_LOCK_DURATION.
    stalledInterval: Math.max(500, Math.floor(config.schedulerLockDurationMs / 2)),
    maxStalledCount: 3,
  };
  const probe = deps.probe ?? httpHealthProbe;
  const workers: Worker[] = [
    new Worker<ScaleUpJob>(keys.queues.scaleUp, (job) => processScaleUp(job, ctx), workerOpts),
    new Worker<DrainJob>(keys.queues.drain, (job) => processDrain(job, ctx), workerOpts),
    new Worker<WakeJob>(keys.queues.wake, (job) => processWake(job, ctx), workerOpts),
    new Worker<ReapJob>(keys.queues.reap, (job) => (job.name === jobNames.reapSweep ? processReapSweep(ctx) : processReapNode(job, ctx)), workerOpts),
    new Worker(keys.queues.autoscale, (job) => (job.name === jobNames.health ? processHealthTick(ctx, probe) : processAutoscaleTick(ctx)), workerOpts),
    new Worker<RolloutJob | RestartJob>(keys.queues.rollout, (job) => (job.name === jobNames.restart ? processRestart(job as Job<RestartJob>, ctx) : processRollout(job as Job<RolloutJob>, ctx)), workerOpts),
  ];
  for (const w of workers) {
    w.on("completed", (job: Job) => observe(job, "completed"));
    w.on("failed", (job: Job | undefined, err: Error) => {
      if (!job) return;
      const final = job.attemptsMade >= (job.opts.attempts ?? 1) || err.name === "UnrecoverableError";
      observe(job, final ? "failed" : "retried");
      if (job.name !== jobNames.health && job.name !== jobNames.autoscale) log.warn(`job ${final ? "failed" : "will retry"}`, { queue: w.name, jobId: job.id, attempt: job.attemptsMade, error: err.message });
    });
    w.on("error", (err: Error) => {
      // During a Redis outage every worker connection fails on every retry: RedisOutageWatch says it once.
      if (outage.outage || isRedisUnavailable(err)) return;
      log.error("worker error", { queue: w.name, error: err.message });
    });
  }
  function observe(job: Job, outcome: string): void {
    metrics.jobs.inc({ type: job.name, outcome });
    if (job.processedOn && job.finishedOn) metrics.jobDuration.observe((job.finishedOn - job.processedOn) / 1000, { type: job.name });
  }
  await Promise.all(workers.map((w) => w.waitUntilReady()));

  if (deps.ticks !== false) {
    // Job schedulers (BullMQ v6): upserting is idempotent, so every replica may do it at start.
    const tickOpts = { removeOnComplete: { count: 20 }, removeOnFail: { count: 50 }, attempts: 1 };
    await queues.autoscale.upsertJobScheduler(schedulerIds.autoscale, { every: config.autoscaleIntervalMs }, { name: jobNames.autoscale, data: {}, opts: tickOpts });
    await queues.autoscale.upsertJobScheduler(schedulerIds.health, { every: config.healthCheckIntervalMs }, { name: jobNames.health, data: {}, opts: tickOpts });
    await queues.reap.upsertJobScheduler(schedulerIds.reapSweep, { every: config.autoscaleIntervalMs }, { name: jobNames.reapSweep, data: {}, opts: tickOpts });
  }

  // The nodes gauge is refreshed here too, so every replica's /metrics is current even when the
  // ticks ran elsewhere.
  const gaugeTimer = clock.setInterval(() => {
    registry.list().then(metrics.observeNodes, () => {});
  }, Math.max(1_000, config.autoscaleIntervalMs));

  // Node CPU / memory and log tails for the dashboard's node view, only while a dashboard is open.
  const nodeStats = new NodeStatsCollector({ redis, keys, nodes: registry, driver, clock, log, intervalMs: Math.max(1_000, config.adminEventsIntervalMs * 2) });
  nodeStats.start();

  let server: Server<undefined> | undefined;
  if (config.schedulerMetricsPort > 0) {
    server = Bun.serve({
      hostname: config.host,
      port: config.schedulerMetricsPort,
      async fetch(req) {
        const path = new URL(req.url).pathname;
        if (path === "/metrics") {
          // Nodes by state as of this scrape, not of the last tick.
          await registry.list().then(metrics.observeNodes, () => {});
          return new Response(await metrics.registry.render(), { headers: { "content-type": metrics.registry.contentType } });
        }
        if (path === "/health") return Response.json({ status: "ok" });
        return Response.json({ error: { code: "NOT_FOUND", message: "not found" } }, { status: 404 });
      },
    });
  }
  const metricsUrl = server ? `http://${config.host}:${server.port}/metrics` : undefined;

  const matchmaker = deps.matchmaker === false ? undefined : await startMatchmaker({ config, keys, redis, newRedis, clock, log, metrics: metrics.registry });
  log.info("scheduler started", { prefix: config.redisPrefix, driver: driver.kind, maxServers: config.maxServers, metrics: metricsUrl ?? "off" });

  let closed: Promise<void> | undefined;
  return {
    keys,
    redis,
    registry,
    queues,
    client,
    scaleUpEvents,
    lifecycle,
    metrics,
    metricsUrl,
    close() {
      closed ??= (async () => {
        gaugeTimer.cancel();
        void nodeStats.stop();
        // Every Redis step is bounded (BullMQ's closes wait for Redis forever), and short when Redis is
        // already gone, so the nodes are removed well within SHUTDOWN_TIMEOUT either way.
        const step = outage.outage ? 200 : Math.max(200, Math.floor(config.shutdownTimeoutMs / 8));
        await within(matchmaker?.close().catch((e: unknown) => log.warn("matchmaker close failed", { error: e })) ?? Promise.resolve(), step, undefined);
        // Let short jobs finish; a long one (a drain) is left to stalled-job recovery on another
        // replica — its steps are repeatable.
        await Promise.all(workers.map((w) => Promise.race([w.close(), Bun.sleep(outage.outage ? 0 : Math.min(CLOSE_GRACE_MS, step * 2))])));
        await within(Promise.all(workers.map((w) => w.close(true).catch(() => {}))), step, undefined);
        if (config.stopNodesOnExit) {
          const n = await lifecycle.stopAll("scheduler exit (STOP_NODES_ON_EXIT)", step * 2);
          log.info("stopped fleet on exit", { nodes: n });
        }
        server?.stop(true);
        await within(Promise.all([scaleUpEvents.close(), queues.close()]).catch(() => {}), step, undefined);
        await driver.close().catch(() => {});
        for (const r of connections) r.disconnect();
        log.info("scheduler stopped");
      })();
      return closed;
    },
  };
}
