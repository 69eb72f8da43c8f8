/**
 * rollout: one BullMQ job per rollout (job id `rollout__<id>`), alive for the rollout's whole run.
 * Each turn reads the rollout and the registry, asks the pure policy (policy/rollout-steps.ts) and
 * acts: start new-version nodes (maxSurge at a time, ids derived from stored slots), drain the old
 * nodes they replace (drain jobs: POST /drain, HAProxy drain, deadline, stop, delete), delete old
 * nodes already stopped, roll back after ROLLOUT_FAILURE_LIMIT failed starts, finish `succeeded`.
 *
 * A second replica, or this one restarted, resumes a rollout whose worker died through BullMQ's
 * stalled-job recovery: everything it decides comes from Redis, nodes that were mid-start are
 * adopted (their start is resumed by id, never begun twice), drains are deduplicated by job id.
 *
 * restart: `POST /v1/admin/nodes/:id/restart` — a replacement of the node's version is started and
 * ready first, then the node is drained.
 */
import { UnrecoverableError } from "bullmq";
import type { FleetVersion, NodeRecord, RestartJob, RolloutJob } from "../../core/types.ts";
import { nodeVersion, type RolloutRecord, type RolloutStore } from "../../model/rollouts.ts";
import { nodeIdFor } from "../fleet/node-lifecycle.ts";
import { nextRolloutStep, rolloutRequestPrefix, type RolloutStep } from "../policy/rollout-steps.ts";
import type { JobContext, SchedulerContext } from "./context.ts";

export interface RolloutResult {
  rolloutId: string;
  state: RolloutRecord["state"];
  reason: string;
}

/** How often a rollout looks again when nothing happens (also bounded by HEALTH_CHECK_INTERVAL). */
const ROLLOUT_POLL_MS = 250;

function storeOf(ctx: SchedulerContext): RolloutStore {
  if (!ctx.rollouts) throw new UnrecoverableError("this scheduler has no rollout store");
  return ctx.rollouts;
}

export async function processRollout(job: JobContext<RolloutJob>, ctx: SchedulerContext): Promise<RolloutResult> {
  const store = storeOf(ctx);
  const id = job.data.rolloutId;
  if (typeof id !== "string" || id.length === 0) throw new UnrecoverableError("rollout job without rolloutId");
  const first = await store.get(id);
  if (!first) throw new UnrecoverableError(`rollout ${id} does not exist`);
  const at = () => ctx.clock.now();
  const note = (event: string, detail?: string) => {
    ctx.log.info(`rollout ${id}: ${event}`, detail ? { detail } : {});
    return store.event(id, { at: at(), event, ...(detail ? { detail } : {}) }).catch(() => {});
  };
  if (first.state === "running") {
    // A job that ran before (its worker died: stalled-job recovery, or a retry) is resumed.
    const before = (await store.events(id)).some((e) => e.event === "job started" || e.event === "resumed");
    await note(before ? "resumed" : "job started", `attempt ${job.attemptsMade + 1}${job.id ? `, job ${job.id}` : ""}`);
  }

  /** Starts under way in this process, by node id. */
  const inFlight = new Map<string, Promise<void>>();
  /** Starts launched whose node record may not exist yet. */
  let launching = 0;
  const pollMs = Math.max(20, Math.min(ROLLOUT_POLL_MS, ctx.config.healthCheckIntervalMs));
  let lastReason = "";
  /** A start was refused for want of a slot until then (see RolloutInputs.atCapacity). */
  let blockedUntil = 0;
  let lastBlockedNote = 0;

  const bringUp = (nodeId: string, requestId: string, version: FleetVersion): void => {
    const p = (async () => {
      try {
        const o = await ctx.lifecycle.startNode({ nodeId, requestId, region: ctx.config.region, version });
        if (o.kind === "at-capacity") {
          // Not the new version's fault: no slot. Wait, and retire an old node first (policy).
          blockedUntil = at() + Math.max(1_000, 4 * pollMs);
          if (at() - lastBlockedNote > 30_000) {
            lastBlockedNote = at();
            await note("no slot for a new node", `${o.reason}; an old node is retired first`);
          }
          return;
        }
        await store.addNewNode(id, nodeId);
        await note("new node ready", `${nodeId} (${version.version})`);
      } catch (e) {
        const n = await store.addFailure(id);
        await note("new node failed", `${nodeId}: ${(e instanceof Error ? e.message : String(e)).slice(0, 300)} (${n} of ROLLOUT_FAILURE_LIMIT ${ctx.config.rolloutFailureLimit})`);
      }
    })().finally(() => inFlight.delete(nodeId));
    inFlight.set(nodeId, p);
  };

  for (;;) {
    const r = await store.get(id);
    if (!r) throw new UnrecoverableError(`rollout ${id} vanished`);
    const routing = await store.routing();
    const nodes = await ctx.registry.list();
    // A start under way here counts until its promise settles — also after a failed start removed
    // its record and before its failure is counted (else one start too many slips through).
    const starting = new Set(nodes.filter((n) => n.state === "starting").map((n) => n.id));
    const pending = [...inFlight.keys()].filter((n) => !starting.has(n)).length + launching;
    const step: RolloutStep = nextRolloutStep({
      rollout: r,
      nodes,
      activeVersion: r.state === "running" ? r.fromVersion : routing.active.version,
      failureLimit: ctx.config.rolloutFailureLimit,
      pendingStarts: pending,
      inFlight: new Set(inFlight.keys()),
      atCapacity: at() < blockedUntil,
    });
    // Old nodes asked to drain that are gone now: retired (stopped and deleted by their drain job).
    for (const nodeId of r.drained) {
      if (r.oldNodes.includes(nodeId) && !nodes.some((n) => n.id === nodeId) && (await store.markRetired(id, nodeId))) await note("old node retired", `${nodeId} stopped and deleted`);
    }
    if (step.reason !== lastReason) {
      lastReason = step.reason;
      await job.updateProgress({ step: step.kind, reason: step.reason, newNodes: r.newNodes.length, oldNodes: r.oldNodes.length, failures: r.failures });
    }
    const target: FleetVersion = { version: r.version, image: r.image, ...(Object.keys(r.env).length ? { env: r.env } : {}) };

    switch (step.kind) {
      case "done":
        await Promise.allSettled([...inFlight.values()]);
        return { rolloutId: id, state: r.state, reason: r.reason };
      case "succeed":
        if (await store.finish(id, "succeeded", step.reason, at())) await note("succeeded", step.reason);
        continue;
      case "rollback":
        if (await store.finish(id, "rolled_back", step.reason, at())) await note("rolled back", `${step.reason}; ${r.fromVersion} takes new rooms again`);
        continue;
      case "cleanup":
        for (const nodeId of step.drain) {
          await ctx.requests.drain({ nodeId, deadlineMs: r.drainDeadlineMs, reason: `rollout ${id} ${r.state}: new version ${r.version} goes` });
          await store.addDrained(id, nodeId);
          await note("new node drained", nodeId);
        }
        if (step.drain.length === 0) await ctx.clock.sleep(pollMs);
        continue;
      case "wait":
        await ctx.clock.sleep(pollMs);
        continue;
      case "act": {
        for (const nodeId of step.adopt) {
          const n = nodes.find((x) => x.id === nodeId);
          await note("adopted a starting node", nodeId);
          bringUp(nodeId, n?.requestId ?? `${rolloutRequestPrefix(id)}adopted`, target);
        }
        for (let i = 0; i < step.start; i++) {
          launching++;
          try {
            const slot = await store.nextSlot(id);
            const requestId = `${rolloutRequestPrefix(id)}${slot}`;
            const nodeId = nodeIdFor(requestId, 0);
            await note("starting new node", `${nodeId} (${r.version}, slot ${slot})`);
            bringUp(nodeId, requestId, target);
          } finally {
            launching--;
          }
        }
        for (const nodeId of step.drain) {
          await ctx.requests.drain({ nodeId, deadlineMs: r.drainDeadlineMs, reason: `rollout ${id}: retiring ${nodeVersion(nodes.find((n) => n.id === nodeId) ?? { version: "" }, routing)}` });
          await store.addDrained(id, nodeId);
          await note("old node draining", `${nodeId} (deadline ${r.drainDeadlineMs / 1000} s)`);
        }
        for (const nodeId of step.remove) {
          const n = nodes.find((x) => x.id === nodeId);
          if (n && (await ctx.lifecycle.delete(nodeId, n.stateChangedAt, `rollout ${id}: old version retired`))) await note("old stopped node deleted", nodeId);
        }
        // Let what was just asked for show in the registry before deciding again.
        await ctx.clock.sleep(pollMs);
        continue;
      }
    }
  }
}

export interface RestartResult {
  nodeId: string;
  replacement: string;
}

/** A restart: start a replacement of the node's version, wait until it is ready, then drain the node. */
export async function processRestart(job: JobContext<RestartJob>, ctx: SchedulerContext): Promise<RestartResult> {
  const { nodeId } = job.data;
  if (typeof nodeId !== "string" || nodeId.length === 0) throw new UnrecoverableError("restart without nodeId");
  const node: NodeRecord | undefined = await ctx.registry.get(nodeId);
  const requestId = `restart-${nodeId}-${job.timestamp}`;
  const replacement = nodeIdFor(requestId, 0);
  if (!node) {
    // Gone meanwhile: if our replacement exists the restart got that far; nothing else to do.
    if (await ctx.registry.get(replacement)) return { nodeId, replacement };
    throw new UnrecoverableError(`node ${nodeId} no longer exists`);
  }
  const routing = ctx.rollouts ? await ctx.rollouts.routing() : undefined;
  const version: FleetVersion | undefined = node.version ? { version: node.version, image: node.image || (routing?.active.image ?? ctx.config.nodeImage) } : routing?.active;
  if (node.state === "ready" || node.state === "unhealthy" || node.state === "starting") {
    const o = await ctx.lifecycle.startNode({ nodeId: replacement, requestId, region: node.region || ctx.config.region, ...(version ? { version } : {}) });
    if (o.kind === "at-capacity") throw new Error(`no slot for the replacement of ${nodeId}: ${o.reason}`);
    ctx.log.info("restart: replacement ready; draining the node", { nodeId, replacement });
  }
  const deadlineMs = Number.isFinite(job.data.deadlineMs) && job.data.deadlineMs >= 0 ? job.data.deadlineMs : ctx.config.drainDeadlineMs;
  await ctx.requests.drain({ nodeId, deadlineMs, reason: job.data.reason || `restart (replaced by ${replacement})` });
  return { nodeId, replacement };
}
