/**
 * Queue names, deterministic job ids, and the client other processes use to ask the scheduler for
 * work. Deterministic ids mean a retried or duplicated request cannot start two servers: BullMQ
 * ignores an add whose job id already exists.
 */
import { Queue, type ConnectionOptions, type JobsOptions } from "bullmq";
import type { Keys } from "../core/keys.ts";
import type { DrainJob, ReapJob, RestartJob, RolloutJob, ScaleUpJob, WakeJob } from "../core/types.ts";

/** What a per-node reap job does (see scheduler/policy/reap-plan.ts). */
export type ReapStage = "shutdown" | "delete" | "orphan-instance" | "orphan-record";

/**
 * Job ids. BullMQ refuses ':' in custom ids, hence `__`. An id that names a node also names the
 * state being acted on (`epoch`: the ms the node entered it) where the same action can recur in a
 * node's life — a node woken and idle again needs a new shutdown job, while two replicas deciding
 * the same shutdown still collide on one id.
 */
export const jobIds = {
  scaleUp: (requestId: string) => `scale-up__${requestId}`,
  drain: (nodeId: string) => `drain__${nodeId}`,
  reap: (nodeId: string, stage: ReapStage, epoch?: number) => `reap__${nodeId}__${stage}${epoch === undefined ? "" : `__${epoch}`}`,
  wake: (nodeId: string, requestId: string) => `wake__${nodeId}__${requestId}`,
  /** One job per rollout for its whole run: a second add (retried request, second replica) is a no-op. */
  rollout: (rolloutId: string) => `rollout__${rolloutId}`,
  restart: (nodeId: string) => `restart__${nodeId}`,
};

/** Job names on the queues (the BullMQ board shows them). */
export const jobNames = {
  scaleUp: "scale-up",
  drain: "drain",
  wake: "wake",
  reapNode: "reap-node",
  reapSweep: "reap-sweep",
  autoscale: "autoscale",
  health: "health",
  rollout: "rollout",
  restart: "restart",
} as const;

/** Job scheduler ids (BullMQ v6 job schedulers, not repeatable jobs). */
export const schedulerIds = {
  autoscale: "autoscale-tick",
  health: "health-tick",
  reapSweep: "reap-tick",
} as const;

/** A per-node reap job (the sweep job is a plain ReapJob with no nodeId). */
export interface ReapNodeJob extends ReapJob {
  nodeId: string;
  stage: ReapStage;
  /** The ms the node entered the state the decision was made on; the job acts only if unchanged. */
  epoch: number;
  reason: string;
}

export function isReapNodeJob(j: ReapJob): j is ReapNodeJob {
  const r = j as Partial<ReapNodeJob>;
  return typeof r.nodeId === "string" && typeof r.stage === "string" && typeof r.epoch === "number";
}

/** Data of the autoscale queue's jobs (ticks carry nothing). */
export type TickJob = Record<string, never>;

/** Default job options: retries with exponential backoff; finished jobs kept briefly for the board. */
export const defaultJobOptions: JobsOptions = {
  attempts: 5,
  backoff: { type: "exponential", delay: 200 },
  removeOnComplete: { age: 3600, count: 1000 },
  removeOnFail: { age: 24 * 3600, count: 1000 },
};

export interface SchedulerQueues {
  scaleUp: Queue<ScaleUpJob>;
  drain: Queue<DrainJob>;
  reap: Queue<ReapJob>;
  wake: Queue<WakeJob>;
  /** The autoscaler and health-check ticks (job schedulers). */
  autoscale: Queue<TickJob>;
  /** Rollouts (one long job each) and node restarts. */
  rollout: Queue<RolloutJob | RestartJob>;
  all(): Queue[];
  close(): Promise<void>;
}

export function createQueues(connection: ConnectionOptions, keys: Keys): SchedulerQueues {
  const opts = { connection, prefix: keys.bullPrefix, defaultJobOptions };
  const scaleUp = new Queue<ScaleUpJob>(keys.queues.scaleUp, opts);
  const drain = new Queue<DrainJob>(keys.queues.drain, opts);
  const reap = new Queue<ReapJob>(keys.queues.reap, opts);
  const wake = new Queue<WakeJob>(keys.queues.wake, opts);
  const autoscale = new Queue<TickJob>(keys.queues.autoscale, opts);
  const rollout = new Queue<RolloutJob | RestartJob>(keys.queues.rollout, opts);
  const all = () => [scaleUp, drain, reap, wake, autoscale, rollout] as Queue[];
  return {
    scaleUp,
    drain,
    reap,
    wake,
    autoscale,
    rollout,
    all,
    async close() {
      await Promise.all(all().map((q) => q.close()));
    },
  };
}

/** What the gateway (and admin API) may ask of the scheduler. */
export interface SchedulerClient {
  /** Asks for `count` new nodes; the same requestId twice starts them once. */
  requestScaleUp(job: ScaleUpJob): Promise<void>;
  requestDrain(job: DrainJob): Promise<void>;
  requestWake(job: WakeJob): Promise<void>;
  /** Runs a rollout (its record must exist: model/rollouts.ts begin). Once per rollout id. */
  requestRollout(job: RolloutJob): Promise<void>;
  /** Restarts a node: replacement first, then a drain. Deduplicated while one runs for the node. */
  requestRestart(job: RestartJob): Promise<void>;
  /** Jobs waiting or running, by queue. */
  queuedJobs(): Promise<Record<string, number>>;
}

export function createSchedulerClient(queues: SchedulerQueues): SchedulerClient {
  return {
    async requestScaleUp(job) {
      if (!Number.isInteger(job.count) || job.count < 1) throw new RangeError(`scale-up count must be a positive integer, got ${job.count}`);
      await queues.scaleUp.add(jobNames.scaleUp, job, { jobId: jobIds.scaleUp(job.requestId) });
    },
    async requestDrain(job) {
      // The id dedupes a drain while it runs; removing it once done lets a node that was woken
      // later be drained again (a kept completed job would swallow that add).
      await queues.drain.add(jobNames.drain, job, { jobId: jobIds.drain(job.nodeId), removeOnComplete: true, removeOnFail: { age: 60, count: 1000 } });
    },
    async requestWake(job) {
      await queues.wake.add(jobNames.wake, job, { jobId: jobIds.wake(job.nodeId, job.requestId) });
    },
    async requestRollout(job) {
      // Many attempts: a rollout outlives Redis blips and replica restarts; each attempt resumes it.
      await queues.rollout.add(jobNames.rollout, job, { jobId: jobIds.rollout(job.rolloutId), attempts: 50, backoff: { type: "exponential", delay: 500 }, removeOnComplete: { age: 7 * 24 * 3600, count: 100 } });
    },
    async requestRestart(job) {
      await queues.rollout.add(jobNames.restart, job, { jobId: jobIds.restart(job.nodeId), removeOnComplete: true, removeOnFail: { age: 60, count: 1000 } });
    },
    async queuedJobs() {
      const out: Record<string, number> = {};
      // Ticks are always scheduled; counting them would make an idle fleet look busy.
      for (const q of queues.all().filter((q) => q !== queues.autoscale)) {
        const c = await q.getJobCounts("waiting", "active", "delayed", "prioritized");
        out[q.name] = Object.values(c).reduce((a, b) => a + b, 0);
      }
      return out;
    },
  };
}
