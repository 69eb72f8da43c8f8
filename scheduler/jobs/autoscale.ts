/**
 * The autoscaler tick (a BullMQ job scheduler every AUTOSCALE_INTERVAL): read the fleet, ask the
 * pure policy (desiredNodes), log the decision with its reason, record it for the dashboard, and
 * act — scale-up jobs for more nodes, drain jobs for surplus idle ones.
 */
import type { FleetSnapshot } from "../policy/desired-nodes.ts";
import { desiredNodes, type ScaleDecision } from "../policy/desired-nodes.ts";
import type { SchedulerContext } from "./context.ts";
import { AUTOSCALER_REQUEST_PREFIX } from "./scale-up.ts";
import { scaleUpRegion } from "../../model/placement/region-choice.ts";

/** Everything the policy reads, in one consistent-enough snapshot. */
export async function readFleetSnapshot(ctx: Pick<SchedulerContext, "registry" | "signals" | "scaleState">, now: number): Promise<FleetSnapshot> {
  // Node records carry both what nodes report and what the seat budget reserved on them; the
  // policy counts them with the same functions as placement and /v1/capacity (model/seat-budget.ts).
  const [nodes, pendingJoins, state] = await Promise.all([ctx.registry.list(), ctx.signals.pendingJoins(now), ctx.scaleState.read()]);
  const pendingStarts = await ctx.signals.pendingStarts(nodes);
  return { nodes, pendingJoins, pendingStarts, floor: state.floor, lastScaleUpAt: state.lastScaleUpAt, lastScaleDownAt: state.lastScaleDownAt };
}

export async function processAutoscaleTick(ctx: SchedulerContext): Promise<ScaleDecision | { action: "skipped" }> {
  // Ticks of one job scheduler do not overlap on one replica, but a slow tick on one replica and
  // the next tick on another could; the lock keeps one decision in flight fleet-wide.
  const release = await ctx.locks.tryTick("autoscale-tick", Math.max(5_000, 10 * ctx.config.autoscaleIntervalMs));
  if (!release) return { action: "skipped" };
  try {
    const now = ctx.clock.now();
    const snap = await readFleetSnapshot(ctx, now);
    ctx.metrics.observeNodes(snap.nodes);
    let d = desiredNodes(snap, ctx.config, now);
    // While a rollout runs it retires old nodes itself; draining the new ones it started as "idle
    // surplus" would only make it start them again.
    if (d.action === "down" && (await ctx.rollouts?.routing())?.rolloutId) d = { action: "none", count: 0, reason: "a rollout is running: no scale-down until it ends" };
    ctx.metrics.decisions.inc({ action: d.action });
    if (d.action === "none") {
      // Every tick decides; an unchanged "nothing to do" would flood the log once a second.
      if (d.reason !== ctx.autoscaleMemo.lastReason) {
        ctx.autoscaleMemo.lastReason = d.reason;
        ctx.log.info("autoscale: no change", { reason: d.reason });
        if (d.reason.startsWith("at MAX_SERVERS")) await ctx.scaleState.record({ at: now, action: "refused", count: 0, reason: d.reason });
      } else ctx.log.debug("autoscale: no change", { reason: d.reason });
      return d;
    }
    ctx.autoscaleMemo.lastReason = "";
    ctx.log.info(`autoscale: ${d.action} ${d.count}`, { reason: d.reason, pendingJoins: snap.pendingJoins, pendingStarts: snap.pendingStarts, floor: snap.floor });
    await ctx.scaleState.record({ at: now, action: d.action, count: d.count, reason: d.reason });
    if (d.action === "up") {
      // The region whose ready nodes are the most used (joins that wait ask for their own region themselves).
      await ctx.requests.scaleUp({ count: d.count, region: scaleUpRegion(snap.nodes, ctx.config), reason: `autoscale: ${d.reason}`, requestId: `${AUTOSCALER_REQUEST_PREFIX}${now}` });
    } else {
      for (const nodeId of d.nodeIds) await ctx.requests.drain({ nodeId, deadlineMs: ctx.config.drainDeadlineMs, reason: `autoscale: ${d.reason}` });
    }
    return d;
  } finally {
    await release();
  }
}
