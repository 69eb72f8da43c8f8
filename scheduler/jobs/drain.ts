/**
 * drain: mark a node `draining` (placement stops giving it rooms; the templater flips its HAProxy
 * server to drain on the event), tell the node (`POST /drain {deadlineSeconds}`: it warns its
 * players and closes whoever is left with 4009 at the deadline), wait until its rooms are empty or
 * the deadline passes, then stop it and delete it (see NodeLifecycle.drain).
 *
 * The deadline counts from when the drain was requested (the job's timestamp), not from the
 * current attempt, so a drain resumed by another replica does not start its wait over.
 */
import { UnrecoverableError } from "bullmq";
import type { DrainJob } from "../../core/types.ts";
import type { JobContext, SchedulerContext } from "./context.ts";

export interface DrainResult {
  nodeId: string;
  outcome: "drained" | "gone";
}

export async function processDrain(job: JobContext<DrainJob>, ctx: SchedulerContext): Promise<DrainResult> {
  const { nodeId, reason } = job.data;
  if (typeof nodeId !== "string" || nodeId.length === 0) throw new UnrecoverableError("drain without nodeId");
  const deadlineMs = Number.isFinite(job.data.deadlineMs) && job.data.deadlineMs >= 0 ? job.data.deadlineMs : ctx.config.drainDeadlineMs;
  const deadlineAt = job.timestamp + deadlineMs;
  ctx.log.info("draining node", { nodeId, reason, deadlineAt: new Date(deadlineAt).toISOString() });
  const outcome = await ctx.lifecycle.drain(nodeId, deadlineAt, reason || "drain", async (p) => {
    await job.updateProgress(p);
  });
  return { nodeId, outcome };
}
