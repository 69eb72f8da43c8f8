/**
 * The rollout's decisions, pure: given a rollout record and the node registry, what to do next.
 * The rollout job (scheduler/jobs/rollout.ts) reads, asks, acts, and asks again — every step is
 * decided from what is stored, so a replica that takes over a rollout (the first one died) decides
 * the same and does nothing twice.
 *
 * The plan (Agones' maxSurge, GameLift's session protection):
 * - start new-version nodes, at most `maxSurge` starting at once, until there are as many ready as
 *   the old version had serving nodes (a canary: its share of them, at least one);
 * - each ready new node retires one old node: it is drained (no new rooms; it stops once its rooms
 *   are empty, or at the drain deadline) — never before its replacement is ready, so capacity never
 *   dips; a canary retires nothing until it is promoted;
 * - at MAX_SERVERS (a start refused for want of a slot) the emptiest old node is retired first;
 * - an old node that is already stopped (idle shutdown) is deleted: nothing may wake it;
 * - `ROLLOUT_FAILURE_LIMIT` new nodes that failed to get ready roll the rollout back;
 * - once no old-version node is left, the rollout has succeeded.
 * After a rollback or cancel, the new nodes are drained (their live rooms finish up to the deadline).
 */
import type { NodeRecord } from "../../core/types.ts";
import type { RolloutRecord } from "../../model/rollouts.ts";

export type RolloutStep =
  /** Do these now, then look again. */
  | { kind: "act"; start: number; drain: string[]; remove: string[]; adopt: string[]; reason: string }
  /** Nothing to do until something changes. */
  | { kind: "wait"; reason: string }
  | { kind: "rollback"; reason: string }
  | { kind: "succeed"; reason: string }
  /** A finished rollout: drain what is left of its new version (rollback/cancel), then stop. */
  | { kind: "cleanup"; drain: string[]; waitFor: number; reason: string }
  | { kind: "done"; reason: string };

export interface RolloutInputs {
  rollout: RolloutRecord;
  nodes: readonly NodeRecord[];
  /** The version a node with no version runs (the active one). */
  activeVersion: string;
  failureLimit: number;
  /** Starts this replica has under way whose node is not in `nodes` yet. */
  pendingStarts: number;
  /** Nodes this replica is bringing up now (not to adopt). */
  inFlight: ReadonlySet<string>;
  /**
   * A start was just refused for want of a slot (MAX_SERVERS, or no free port). Then nothing more
   * is started for now, and when no old node is already on its way out, the emptiest old node is
   * retired first to free one (at the ceiling a surge cannot happen: one node is out at a time).
   */
  atCapacity?: boolean;
}

const SERVING = new Set(["ready", "unhealthy"]);

/** Whether a node runs the rollout's version. */
export function isNewVersion(n: Pick<NodeRecord, "version">, r: Pick<RolloutRecord, "version">, activeVersion: string): boolean {
  return (n.version || activeVersion) === r.version;
}

/** New-version nodes a rollout aims for: as many as old nodes serving at its start (a canary: its share), at least one. */
export function desiredNewNodes(r: Pick<RolloutRecord, "oldNodes" | "canaryPercent">): number {
  const base = Math.max(1, r.oldNodes.length);
  return r.canaryPercent >= 100 ? base : Math.max(1, Math.ceil((base * r.canaryPercent) / 100));
}

export function nextRolloutStep(inp: RolloutInputs): RolloutStep {
  const { rollout: r, nodes, activeVersion } = inp;
  const fresh = nodes.filter((n) => isNewVersion(n, r, activeVersion));
  const old = nodes.filter((n) => !isNewVersion(n, r, activeVersion));

  if (r.state !== "running") {
    if (r.state === "succeeded") return { kind: "done", reason: "succeeded" };
    // Rolled back or cancelled: the new version's nodes go. A node still starting is drained once
    // its start ends (ready or failed) — wait for it.
    const drain = fresh.filter((n) => SERVING.has(n.state) && !r.drained.includes(n.id)).map((n) => n.id);
    const waitFor = fresh.filter((n) => n.state === "starting").length + inp.pendingStarts;
    if (drain.length === 0 && waitFor === 0) return { kind: "done", reason: r.state };
    return { kind: "cleanup", drain, waitFor, reason: `${r.state}: ${drain.length} new node(s) to drain, ${waitFor} still starting` };
  }

  if (r.failures >= inp.failureLimit) {
    return { kind: "rollback", reason: `${r.failures} new node(s) of ${r.version} failed to get ready (ROLLOUT_FAILURE_LIMIT=${inp.failureLimit})` };
  }

  const newReady = fresh.filter((n) => n.state === "ready");
  const newStarting = fresh.filter((n) => n.state === "starting");
  const starting = newStarting.length + inp.pendingStarts;
  const want = desiredNewNodes(r);
  const start = inp.atCapacity ? 0 : Math.max(0, Math.min(r.maxSurge - starting, want - newReady.length - starting));
  // Starting nodes of this rollout that no one is bringing up here (the replica that began them died).
  const adopt = newStarting.filter((n) => n.requestId.startsWith(rolloutRequestPrefix(r.id)) && !inp.inFlight.has(n.id)).map((n) => n.id);

  // Old nodes already stopped (idle shutdown) are deleted, never woken on the old version.
  const remove = old.filter((n) => n.state === "stopped").map((n) => n.id);

  let drain: string[] = [];
  const oldServing = old.filter((n) => SERVING.has(n.state));
  if (r.canaryPercent >= 100 && oldServing.length > 0) {
    // Each ready new node replaces one old node; once the new version has all it wants, every old
    // node goes. Old nodes that are draining, stopping or gone count as replaced already.
    const retired = r.oldNodes.filter((id) => !oldServing.some((n) => n.id === id)).length;
    const allowed = newReady.length >= want ? oldServing.length : Math.max(0, newReady.length - retired);
    drain = [...oldServing]
      .sort((a, b) => a.players - b.players || a.rooms - b.rooms || a.id.localeCompare(b.id))
      .slice(0, allowed)
      .map((n) => n.id);
    const leaving = old.some((n) => n.state === "draining" || n.state === "stopping");
    if (inp.atCapacity && drain.length === 0 && !leaving && want - newReady.length - starting > 0) {
      drain = [...oldServing].sort((a, b) => a.players - b.players || a.rooms - b.rooms || a.id.localeCompare(b.id)).slice(0, 1).map((n) => n.id);
    }
  }

  if (start > 0 || drain.length > 0 || remove.length > 0 || adopt.length > 0) {
    return { kind: "act", start, drain, remove, adopt, reason: `new ${newReady.length} ready/${starting} starting of ${want}; old ${oldServing.length} serving, ${old.length} in all` };
  }
  if (r.canaryPercent >= 100 && old.length === 0 && newReady.length > 0 && starting === 0) {
    return { kind: "succeed", reason: `every node runs ${r.version} (${newReady.length} ready)` };
  }
  if (r.canaryPercent < 100 && newReady.length >= want) return { kind: "wait", reason: `canary at ${r.canaryPercent}%: ${newReady.length} node(s) of ${r.version} ready; promote to go on` };
  return { kind: "wait", reason: `new ${newReady.length} ready/${starting} starting of ${want}; old ${old.length} left (${old.filter((n) => n.state === "draining").length} draining)` };
}

/** Scale-up request ids of a rollout's nodes start with this (node ids derive from them). */
export function rolloutRequestPrefix(rolloutId: string): string {
  return `rollout-${rolloutId}-`;
}
