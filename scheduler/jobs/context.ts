/**
 * What every job processor gets: the lifecycle service and small seams over Redis/BullMQ, so the
 * processors run the same against real Redis (startScheduler) and in-memory fakes (unit tests).
 */
import type { Clock } from "../../core/clock.ts";
import type { Config } from "../../core/config.ts";
import type { Logger } from "../../core/log.ts";
import type { NodeRegistry } from "../../model/node-registry.ts";
import type { DrainJob, NodeRecord, ScaleUpJob } from "../../core/types.ts";
import type { NodeDriver } from "../drivers/driver.ts";
import type { NodeLifecycle } from "../fleet/node-lifecycle.ts";
import type { PortAllocator } from "../fleet/ports.ts";
import type { ScaleEvent, ScaleState } from "../../model/scale-state.ts";
import type { SchedulerMetrics } from "../metrics.ts";
import type { ReapNodeJob } from "../../model/jobs.ts";
import type { RolloutStore } from "../../model/rollouts.ts";

/** The part of a BullMQ Job a processor uses (a real Job satisfies it). */
export interface JobContext<T> {
  id?: string | undefined;
  data: T;
  /** When the job was added (ms). */
  timestamp: number;
  attemptsMade: number;
  updateProgress(progress: number | object): Promise<void>;
}

/** Shared autoscaler state (Redis: ScaleStateStore). */
export interface ScaleStateRepo {
  read(): Promise<ScaleState>;
  record(e: ScaleEvent): Promise<void>;
}

/** Reads what the autoscaler needs besides the registry. */
export interface FleetSignals {
  /** Joins waiting for a node now. */
  pendingJoins(now: number): Promise<number>;
  /** Nodes requested by scale-up jobs that are not in `nodes` yet. */
  pendingStarts(nodes: readonly NodeRecord[]): Promise<number>;
}

/** Work the processors hand to other queues. */
export interface JobRequests {
  scaleUp(job: ScaleUpJob): Promise<void>;
  drain(job: DrainJob): Promise<void>;
  reapNode(job: ReapNodeJob): Promise<void>;
}

/** Mutual exclusion of periodic ticks across replicas (a tick that overran its interval). */
export interface TickLocks {
  /** Takes the lock for `ttlMs`; returns its release, or undefined when another holder has it. */
  tryTick(name: string, ttlMs: number): Promise<(() => Promise<void>) | undefined>;
}

export interface SchedulerContext {
  config: Config;
  clock: Clock;
  log: Logger;
  registry: NodeRegistry;
  driver: NodeDriver;
  ports: PortAllocator;
  lifecycle: NodeLifecycle;
  scaleState: ScaleStateRepo;
  signals: FleetSignals;
  requests: JobRequests;
  locks: TickLocks;
  metrics: SchedulerMetrics;
  /**
   * What this replica's autoscaler said last when it decided to do nothing, so an unchanged
   * "no change" is logged at debug level and a new reason (cooling down, at MAX_SERVERS) at info.
   */
  autoscaleMemo: { lastReason: string };
  /**
   * The gateway's player-session sweeper (expires sessions without heartbeats), when the gateway
   * exports one; the reaper calls it each tick.
   */
  sweepSessions?: (now: number) => Promise<unknown>;
  /**
   * The rooms' seat reaper (model/rooms/seat-reaper.ts sweepAbsentSeats: seats of players with
   * no socket for ROOM_SEAT_GRACE are freed); the reaper calls it each tick.
   */
  sweepAbsentSeats?: (now: number) => Promise<unknown>;
  /**
   * Fleet versions and rollouts (model/rollouts.ts): the version a scale-up starts, the rollout
   * job's record. Without it every node runs NODE_IMAGE and rollouts cannot run.
   */
  rollouts?: RolloutStore;
}
