/**
 * wake: start a stopped (not yet deleted) node again for a returning player. Same id, port and
 * token; the driver restarts the stopped instance. A node deleted meanwhile cannot be woken
 * (UnrecoverableError: the caller places the player on another node).
 */
import { UnrecoverableError } from "bullmq";
import type { WakeJob } from "../../core/types.ts";
import type { JobContext, SchedulerContext } from "./context.ts";

export interface WakeResult {
  nodeId: string;
  state: string;
  ms: number;
}

export async function processWake(job: JobContext<WakeJob>, ctx: SchedulerContext): Promise<WakeResult> {
  const { nodeId } = job.data;
  if (typeof nodeId !== "string" || nodeId.length === 0) throw new UnrecoverableError("wake without nodeId");
  const t0 = ctx.clock.now();
  await job.updateProgress({ phase: "waking" });
  const node = await ctx.lifecycle.wake(nodeId);
  return { nodeId, state: node.state, ms: ctx.clock.now() - t0 };
}
