/**
 * The reaper's decision, pure: which nodes to shut down for inactivity, which stopped nodes to
 * delete, and which orphans to clean up, given the registry, what the driver reports and `now`.
 *
 * Timeline of a node nobody plays on (CONTRACT): last activity (or becoming ready) → after
 * INACTIVITY_SHUTDOWN it is shut down (stopping → stopped, `stoppedAt`) → CLEANUP_DELETE after
 * that its container and record are deleted. Warm spares the autoscaler wants (buffer, floor,
 * utilisation) are kept; see removableNodes.
 */
import type { Config } from "../../core/config.ts";
import type { DriverNodeInfo } from "../drivers/driver.ts";
import { activityBase, removableNodes, type FleetSnapshot, type PolicyConfig } from "./desired-nodes.ts";

export type ReapConfig = PolicyConfig & Pick<Config, "inactivityShutdownMs" | "cleanupDeleteMs" | "nodeStartTimeoutMs" | "nodeDrainMs">;

export type ReapAction =
  /**
   * Stop a node (ready/unhealthy → stopping → stopped). `epoch`: for a ready node its activity base
   * (last activity, or when it became ready), for an unhealthy one when it became unhealthy.
   */
  | { kind: "shutdown"; nodeId: string; epoch: number; reason: string }
  /** Delete a stopped node: its record, its instance, its port. */
  | { kind: "delete"; nodeId: string; epoch: number; reason: string }
  /** A driver instance the registry does not know: remove it. */
  | { kind: "orphan-instance"; nodeId: string; epoch: number; reason: string }
  /** A registry entry whose instance is gone (or stuck mid-transition): finish it and delete it. */
  | { kind: "orphan-record"; nodeId: string; epoch: number; reason: string };

/**
 * @param instances what the driver lists, or undefined when the driver could not be asked (then
 *   no orphan decisions are made: an unanswered list must never look like "everything is gone").
 */
export function reapPlan(s: FleetSnapshot, instances: readonly DriverNodeInfo[] | undefined, c: ReapConfig, now: number): ReapAction[] {
  const out: ReapAction[] = [];
  const known = new Map(s.nodes.map((n) => [n.id, n]));

  // Inactive ready nodes, least recently active first, minus the spares policy wants to keep.
  const inactive = s.nodes
    .filter((n) => n.state === "ready" && now - activityBase(n) >= c.inactivityShutdownMs)
    .sort((a, b) => activityBase(a) - activityBase(b) || a.id.localeCompare(b.id));
  for (const n of removableNodes(inactive, s, c)) {
    // The epoch is the activity it was decided on: activity since then makes it another decision.
    out.push({ kind: "shutdown", nodeId: n.id, epoch: activityBase(n), reason: `no player activity for ${Math.round((now - activityBase(n)) / 1000)} s` });
  }

  for (const n of s.nodes) {
    const inState = now - n.stateChangedAt;
    if (n.state === "unhealthy" && inState >= c.inactivityShutdownMs) {
      out.push({ kind: "shutdown", nodeId: n.id, epoch: n.stateChangedAt, reason: `unhealthy for ${Math.round(inState / 1000)} s` });
    } else if (n.state === "stopped" && now - (n.stoppedAt || n.stateChangedAt) >= c.cleanupDeleteMs) {
      // Timed from stoppedAt (a refused wake keeps the original), but the epoch is the state's
      // timestamp: the delete acts only if nothing moved the node since.
      out.push({ kind: "delete", nodeId: n.id, epoch: n.stateChangedAt, reason: `stopped for ${Math.round((now - (n.stoppedAt || n.stateChangedAt)) / 1000)} s` });
    } else if (n.state === "draining" && n.players === 0 && n.rooms === 0 && inState >= c.inactivityShutdownMs + c.nodeDrainMs) {
      // Its drain job normally stops it as soon as it is empty; one that failed for good (or whose
      // scheduler died) would leave it draining forever. Empty, it has nothing left to protect.
      out.push({ kind: "shutdown", nodeId: n.id, epoch: n.stateChangedAt, reason: `empty but still draining after ${Math.round(inState / 1000)} s` });
    } else if (n.state === "stopping" && inState > c.nodeDrainMs + c.nodeStartTimeoutMs) {
      // The scheduler that was stopping it died; its job may be retried, but the record must not
      // stay `stopping` forever.
      out.push({ kind: "orphan-record", nodeId: n.id, epoch: n.stateChangedAt, reason: `stuck stopping for ${Math.round(inState / 1000)} s` });
    } else if (n.state === "starting" && inState > 2 * c.nodeStartTimeoutMs) {
      // A scale-up/wake job bounds its wait by NODE_START_TIMEOUT and then fails the node; twice
      // that with the node still `starting` means the job is gone.
      out.push({ kind: "orphan-record", nodeId: n.id, epoch: n.stateChangedAt, reason: `stuck starting for ${Math.round(inState / 1000)} s` });
    }
  }

  if (instances) {
    const have = new Map(instances.map((i) => [i.nodeId, i]));
    for (const i of instances) {
      if (!known.has(i.nodeId)) out.push({ kind: "orphan-instance", nodeId: i.nodeId, epoch: i.startedAt ?? 0, reason: "driver instance not in the registry" });
    }
    for (const n of s.nodes) {
      // `starting` records get their instance a moment after the record is written; the stuck
      // rule above covers them.
      if (n.state === "starting" || have.has(n.id)) continue;
      if (out.some((a) => a.nodeId === n.id && a.kind !== "shutdown")) continue;
      out.push({ kind: "orphan-record", nodeId: n.id, epoch: n.stateChangedAt, reason: `instance gone while ${n.state}` });
    }
  }
  // One action per node: a record whose instance is gone needs no shutdown first.
  const seen = new Set<string>();
  const orphaned = new Set(out.filter((a) => a.kind === "orphan-record").map((a) => a.nodeId));
  return out.filter((a) => {
    if (a.kind === "shutdown" && orphaned.has(a.nodeId)) return false;
    const key = a.nodeId;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
