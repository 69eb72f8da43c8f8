/**
 * An in-memory scheduler context for unit tests of the job processors: MemoryNodeRegistry,
 * MemoryPortAllocator, FakeDriver without sockets (its `healthOf` stands in for /health), a
 * FakeClock, and recorders for the work processors hand to other queues.
 */
import { FakeClock } from "../../core/clock.ts";
import { testConfig, type Config } from "../../core/config.ts";
import { silentLogger } from "../../core/log.ts";
import { MetricsRegistry } from "../../core/metrics.ts";
import { MemoryNodeRegistry } from "../../model/node-registry.ts";
import { MemoryRolloutStore, defaultVersion } from "../../model/rollouts.ts";
import type { DrainJob, ScaleUpJob } from "../../core/types.ts";
import { FakeDriver } from "./fake-driver.ts";
import type { HealthProbe } from "../../scheduler/fleet/health-probe.ts";
import { NodeLifecycle } from "../../scheduler/fleet/node-lifecycle.ts";
import { MemoryPortAllocator } from "../../scheduler/fleet/ports.ts";
import type { ScaleEvent, ScaleState } from "../../model/scale-state.ts";
import type { JobContext, SchedulerContext } from "../../scheduler/jobs/context.ts";
import { createSchedulerMetrics } from "../../scheduler/metrics.ts";
import type { ProbeResult } from "../../scheduler/policy/liveness.ts";
import type { ReapNodeJob } from "../../model/jobs.ts";
import { T0 } from "./scheduler-fixtures.ts";

export interface MemoryScheduler {
  ctx: SchedulerContext;
  clock: FakeClock;
  registry: MemoryNodeRegistry;
  driver: FakeDriver;
  ports: MemoryPortAllocator;
  probe: HealthProbe;
  /** Nodes whose probe fails regardless of the driver. */
  down: Set<string>;
  /** Replaces what every probe (lifecycle and health tick) answers; undefined restores the driver's. */
  setProbe(p: HealthProbe | undefined): void;
  state: ScaleState;
  events: ScaleEvent[];
  pendingJoins: { n: number };
  asked: { scaleUp: ScaleUpJob[]; drain: DrainJob[]; reap: ReapNodeJob[] };
  rollouts: MemoryRolloutStore;
  /** Every `POST /drain` the lifecycle sent. */
  drainTold: Array<{ nodeId: string; deadlineSeconds: number }>;
}

export function memoryScheduler(over: Partial<Config> = {}): MemoryScheduler {
  const config = testConfig({ serverPortStart: 20_000, serverPortEnd: 20_099, maxServers: 5, nodeStartTimeoutMs: 1_000, nodeDrainMs: 100, ...over });
  const clock = new FakeClock(T0);
  const registry = new MemoryNodeRegistry();
  const driver = new FakeDriver({ servers: false, clock });
  const ports = new MemoryPortAllocator({ start: config.serverPortStart, end: config.serverPortEnd, exclude: [], maxServers: config.maxServers }, registry);
  const down = new Set<string>();
  let override: HealthProbe | undefined;
  const probe: HealthProbe = async (t, ms): Promise<ProbeResult> => {
    if (override) return override(t, ms);
    const h = down.has(t.nodeId) ? undefined : driver.healthOf(t.nodeId);
    return h ? { ok: true, ...h } : { ok: false, error: "connection refused" };
  };
  const drainTold: Array<{ nodeId: string; deadlineSeconds: number }> = [];
  const lifecycle = new NodeLifecycle({
    config,
    registry,
    driver,
    ports,
    clock,
    log: silentLogger,
    probe,
    // The fake nodes have no sockets: POST /drain is recorded, and not taken (as by a node without it).
    notifyDrain: async (t, deadlineSeconds) => {
      drainTold.push({ nodeId: t.nodeId, deadlineSeconds });
      return false;
    },
  });
  const state: ScaleState = { floor: 0, lastScaleUpAt: 0, lastScaleDownAt: 0 };
  const events: ScaleEvent[] = [];
  const pendingJoins = { n: 0 };
  const asked: MemoryScheduler["asked"] = { scaleUp: [], drain: [], reap: [] };
  const rollouts = new MemoryRolloutStore(defaultVersion(config.nodeImage));
  const ctx: SchedulerContext = {
    rollouts,
    config,
    clock,
    log: silentLogger,
    registry,
    driver,
    ports,
    lifecycle,
    metrics: createSchedulerMetrics(new MetricsRegistry()),
    scaleState: {
      read: async () => ({ ...state }),
      async record(e) {
        events.push(e);
        if (e.action === "up" || e.action === "replace") state.lastScaleUpAt = e.at;
        if (e.action === "down") state.lastScaleDownAt = e.at;
      },
    },
    signals: { pendingJoins: async () => pendingJoins.n, pendingStarts: async () => 0 },
    requests: {
      scaleUp: async (j) => void asked.scaleUp.push(j),
      drain: async (j) => void asked.drain.push(j),
      reapNode: async (j) => void asked.reap.push(j),
    },
    locks: { tryTick: async () => async () => {} },
    autoscaleMemo: { lastReason: "" },
  };
  const setProbe = (p: HealthProbe | undefined) => {
    override = p;
  };
  return { ctx, clock, registry, driver, ports, probe, down, setProbe, state, events, pendingJoins, asked, drainTold, rollouts };
}

/** A JobContext that records progress. */
export function fakeJob<T>(data: T, over: Partial<JobContext<T>> = {}): JobContext<T> & { progress: unknown[] } {
  const progress: unknown[] = [];
  return {
    id: "job-1",
    data,
    timestamp: T0,
    attemptsMade: 0,
    progress,
    async updateProgress(p) {
      progress.push(p);
    },
    ...over,
  };
}

/** Runs `p` while moving the fake clock forward in `stepMs` steps (for code that sleeps). */
export async function driveClock<T>(clock: FakeClock, p: Promise<T>, stepMs = 10, maxMs = 120_000): Promise<T> {
  let done = false;
  const result = p.finally(() => {
    done = true;
  });
  for (let t = 0; !done && t < maxMs; t += stepMs) await clock.advanceAsync(stepMs);
  return result;
}
