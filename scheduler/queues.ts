/**
 * Queue names, deterministic job ids, and the client other processes use to ask the scheduler for
 * work. Deterministic ids mean a retried or duplicated request cannot start two servers: BullMQ
 * ignores an add whose job id already exists.
 */
import { Queue, type ConnectionOptions, type JobsOptions } from "bullmq";
import type { Keys } from "../core/keys.ts";
import type { DrainJob, ReapJob, ScaleUpJob, WakeJob } from "../core/types.ts";

export const jobIds = {
  scaleUp: (requestId: string) => `scale-up__${requestId}`,
  drain: (nodeId: string) => `drain__${nodeId}`,
  reap: (nodeId: string, stage: "shutdown" | "delete") => `reap__${nodeId}__${stage}`,
  wake: (nodeId: string, requestId: string) => `wake__${nodeId}__${requestId}`,
};

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
  all(): Queue[];
  close(): Promise<void>;
}

export function createQueues(connection: ConnectionOptions, keys: Keys): SchedulerQueues {
  const opts = { connection, prefix: keys.bullPrefix, defaultJobOptions };
  const scaleUp = new Queue<ScaleUpJob>(keys.queues.scaleUp, opts);
  const drain = new Queue<DrainJob>(keys.queues.drain, opts);
  const reap = new Queue<ReapJob>(keys.queues.reap, opts);
  const wake = new Queue<WakeJob>(keys.queues.wake, opts);
  const all = () => [scaleUp, drain, reap, wake] as Queue[];
  return {
    scaleUp,
    drain,
    reap,
    wake,
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
  /** Jobs waiting or running, by queue. */
  queuedJobs(): Promise<Record<string, number>>;
}

export function createSchedulerClient(queues: SchedulerQueues): SchedulerClient {
  return {
    async requestScaleUp(job) {
      await queues.scaleUp.add("scale-up", job, { jobId: jobIds.scaleUp(job.requestId) });
    },
    async requestDrain(job) {
      await queues.drain.add("drain", job, { jobId: jobIds.drain(job.nodeId) });
    },
    async requestWake(job) {
      await queues.wake.add("wake", job, { jobId: jobIds.wake(job.nodeId, job.requestId) });
    },
    async queuedJobs() {
      const out: Record<string, number> = {};
      for (const q of queues.all()) {
        const c = await q.getJobCounts("waiting", "active", "delayed", "prioritized");
        out[q.name] = Object.values(c).reduce((a, b) => a + b, 0);
      }
      return out;
    },
  };
}
