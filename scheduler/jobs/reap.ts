/**
 * The reaper. A sweep (a BullMQ job scheduler every AUTOSCALE_INTERVAL) reads the registry and the
 * driver, asks the pure reapPlan what to do, and enqueues one job per node action with an id
 * naming the node, the action and the state it was decided on — so two replicas sweeping at once
 * enqueue each action once, and a node woken since gets fresh jobs later. The per-node job
 * re-checks the node before acting (activity may have arrived since the sweep).
 *
 * Also frees port reservations left by a scheduler that died between reserving and registering,
 * and runs the gateway's player-session sweeper and the rooms' absent-seat reaper when wired in.
 */
import { UnrecoverableError } from "bullmq";
import type { ReapJob } from "../../core/types.ts";
import { activityBase } from "../policy/desired-nodes.ts";
import { reapPlan, type ReapAction } from "../policy/reap-plan.ts";
import { isReapNodeJob } from "../../model/jobs.ts";
import { readFleetSnapshot } from "./autoscale.ts";
import type { JobContext, SchedulerContext } from "./context.ts";

export interface ReapSweepResult {
  actions: ReapAction[];
  portsFreed: number;
  sessionsSwept: boolean;
  seatsSwept: boolean;
}

export async function processReapSweep(ctx: SchedulerContext): Promise<ReapSweepResult> {
  const now = ctx.clock.now();
  const [snap, instances] = await Promise.all([
    readFleetSnapshot(ctx, now),
    ctx.driver.list().catch((e: unknown) => {
      ctx.log.warn("driver list failed; skipping orphan checks this tick", { error: e });
      return undefined;
    }),
  ]);
  ctx.metrics.observeNodes(snap.nodes);
  const actions = reapPlan(snap, instances, ctx.config, now);
  for (const a of actions) {
    ctx.log.debug("reap: enqueue", { ...a });
    await ctx.requests.reapNode({ nodeId: a.nodeId, stage: a.kind, epoch: a.epoch, reason: a.reason });
  }
  // A reservation without a record for longer than two start timeouts belongs to a start that died.
  const portsFreed = await ctx.ports.sweep(now, 2 * ctx.config.nodeStartTimeoutMs);
  let sessionsSwept = false;
  if (ctx.sweepSessions) {
    await ctx.sweepSessions(now).catch((e: unknown) => ctx.log.warn("session sweep failed", { error: e }));
    sessionsSwept = true;
  }
  // Idempotent and safe in every replica at once (each seat is freed by one conditional script).
  let seatsSwept = false;
  if (ctx.sweepAbsentSeats) {
    await ctx.sweepAbsentSeats(now).catch((e: unknown) => ctx.log.warn("absent-seat sweep failed", { error: e }));
    seatsSwept = true;
  }
  return { actions, portsFreed, sessionsSwept, seatsSwept };
}

export async function processReapNode(job: JobContext<ReapJob>, ctx: SchedulerContext): Promise<{ nodeId: string; acted: boolean; note?: string }> {
  const data = job.data;
  if (!isReapNodeJob(data)) throw new UnrecoverableError("reap job without nodeId/stage/epoch");
  const { nodeId, stage, epoch, reason } = data;
  switch (stage) {
    case "shutdown": {
      const rec = await ctx.registry.get(nodeId);
      if (!rec) return { nodeId, acted: false, note: "gone" };
      // Activity that arrived after the sweep decided wins: the player is back.
      if (rec.state === "ready" && (activityBase(rec) !== epoch || ctx.clock.now() - activityBase(rec) < ctx.config.inactivityShutdownMs)) {
        return { nodeId, acted: false, note: "active again" };
      }
      if ((rec.state === "unhealthy" || rec.state === "draining") && rec.stateChangedAt !== epoch) return { nodeId, acted: false, note: "changed since" };
      if (rec.state === "draining" && (rec.players > 0 || rec.rooms > 0)) return { nodeId, acted: false, note: "players on it again" };
      const from = rec.state === "unhealthy" || rec.state === "draining" ? rec.state : "ready";
      const acted = await ctx.lifecycle.stop(nodeId, { from: [from], epoch: rec.stateChangedAt, reason });
      return { nodeId, acted };
    }
    case "delete":
      return { nodeId, acted: await ctx.lifecycle.delete(nodeId, epoch, reason) };
    case "orphan-instance":
      return { nodeId, acted: await ctx.lifecycle.removeOrphanInstance(nodeId) };
    case "orphan-record":
      return { nodeId, acted: await ctx.lifecycle.finishOrphanRecord(nodeId, epoch, reason) };
  }
}
