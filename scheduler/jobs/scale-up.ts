/**
 * scale-up: start `count` nodes for one request. Node ids derive from the request id, so a retried
 * attempt, a duplicate request, or a replica resuming a stalled job finds the nodes already made
 * and only finishes what is missing. Never above MAX_SERVERS (the port allocator counts slots
 * atomically); nodes over the ceiling are reported, not retried.
 */
import { UnrecoverableError } from "bullmq";
import type { ScaleUpJob } from "../../core/types.ts";
import { DriverError } from "../drivers/driver.ts";
import { nodeIdFor } from "../fleet/node-lifecycle.ts";
import { versionForNewNode } from "../../model/rollouts.ts";
import type { JobContext, SchedulerContext } from "./context.ts";

/** Request ids of the autoscaler's own scale-ups start with this. */
export const AUTOSCALER_REQUEST_PREFIX = "auto-";

export interface ScaleUpResult {
  /** Nodes this attempt brought to ready. */
  started: string[];
  /** Nodes of this request that already existed (earlier attempt, duplicate job). */
  existing: string[];
  /** Nodes not started because the fleet is at MAX_SERVERS (or out of ports). */
  refused: number;
  refusedReason?: string;
}

/** The largest request one job takes (a typo in an admin call must not try a million nodes). */
export const MAX_SCALE_UP_COUNT = 1000;

export async function processScaleUp(job: JobContext<ScaleUpJob>, ctx: SchedulerContext): Promise<ScaleUpResult> {
  const { count, requestId, region } = job.data;
  if (!Number.isInteger(count) || count < 1 || count > MAX_SCALE_UP_COUNT) throw new UnrecoverableError(`bad scale-up count ${count}`);
  if (typeof requestId !== "string" || requestId.length === 0) throw new UnrecoverableError("scale-up without requestId");
  const ids = Array.from({ length: count }, (_, i) => nodeIdFor(requestId, i));
  const result: ScaleUpResult = { started: [], existing: [], refused: 0 };
  // The version placement wants (a rollout's target, a canary's share), unless the job names one.
  const version = job.data.version ?? (ctx.rollouts ? versionForNewNode(await ctx.rollouts.routing(), await ctx.registry.list()) : undefined);
  const errors: Error[] = [];
  await job.updateProgress({ ready: 0, of: count });
  await Promise.all(
    ids.map(async (nodeId) => {
      try {
        const o = await ctx.lifecycle.startNode({ nodeId, requestId, region: region || ctx.config.region, ...(version ? { version } : {}) });
        if (o.kind === "ready") result.started.push(nodeId);
        else if (o.kind === "exists") result.existing.push(nodeId);
        else {
          result.refused++;
          result.refusedReason = o.reason;
        }
        await job.updateProgress({ ready: result.started.length + result.existing.length, of: count });
      } catch (e) {
        errors.push(e instanceof Error ? e : new Error(String(e)));
      }
    }),
  );
  if (result.refused > 0) {
    ctx.log.warn("scale-up refused nodes", { requestId, refused: result.refused, reason: result.refusedReason });
    await ctx.scaleState.record({ at: ctx.clock.now(), action: "refused", count: result.refused, reason: `${job.data.reason}: ${result.refusedReason}` });
  }
  if (errors.length > 0) {
    const msg = `${errors.length} of ${count} node(s) failed to start: ${errors.map((e) => e.message).join("; ")}`;
    // A start that cannot work on retry (bad image, bad config) ends the job; anything else is
    // retried with backoff — the failed nodes were cleaned up and start afresh.
    if (errors.every((e) => e instanceof DriverError && !e.retryable)) throw new UnrecoverableError(msg);
    throw new Error(msg);
  }
  // The autoscaler records its own decisions; requests from elsewhere (joins, admin, health
  // replacements) are recorded here so the dashboard shows them and the scale-down cooldown counts them.
  if (result.started.length > 0 && !requestId.startsWith(AUTOSCALER_REQUEST_PREFIX)) {
    await ctx.scaleState.record({ at: ctx.clock.now(), action: "up", count: result.started.length, reason: job.data.reason || requestId });
  }
  ctx.log.info("scale-up done", { requestId, reason: job.data.reason, ...result });
  return result;
}
