/** Which nodes may take a new room, and how many rooms each may hold. Pure. */
import type { NodeRecord } from "../../core/types.ts";

/**
 * Rooms a node may hold: its room limit, and never more rooms than player seats (with
 * MAX_PLAYERS_PER_SERVER=1 a node serves one room).
 */
export function roomCapacity(n: Pick<NodeRecord, "maxRooms" | "capacity">): number {
  return Math.max(0, Math.min(n.maxRooms, n.capacity));
}

/**
 * Ready nodes that may take new rooms: draining, starting, unhealthy and stopped nodes never do.
 * With a region, nodes of that region when any is ready, else every ready node (a player is
 * better served far away than not at all).
 */
export function placementCandidates(nodes: readonly NodeRecord[], region?: string): NodeRecord[] {
  const ready = nodes.filter((n) => n.state === "ready" && roomCapacity(n) > 0);
  if (!region) return ready;
  const local = ready.filter((n) => n.region === region);
  return local.length > 0 ? local : ready;
}

/**
 * Ready nodes of exactly one region that may take new rooms — for placement that walks a player's
 * open regions in order (model/placement/region-choice.ts) and never falls back by itself.
 */
export function placementCandidatesIn(nodes: readonly NodeRecord[], region: string): NodeRecord[] {
  return nodes.filter((n) => n.state === "ready" && n.region === region && roomCapacity(n) > 0);
}

/**
 * The version filter (CONTRACT "Fleet versions and rollouts"): candidates of the version a new room
 * should go to first (`want`: the rollout's target, or a canary's share of rooms), then the rest —
 * so a room goes to another version only when the wanted one has no room for it, never refused. A
 * node without a version runs the active one. No `want`: one group, as before versions.
 */
export function byVersion(candidates: readonly NodeRecord[], want: string | undefined, activeVersion: string): NodeRecord[][] {
  if (!want) return [[...candidates]];
  const wanted: NodeRecord[] = [];
  const rest: NodeRecord[] = [];
  for (const n of candidates) ((n.version || activeVersion) === want ? wanted : rest).push(n);
  return [wanted, rest];
}

/**
 * Whether a room placed on a node in this state is still live there. A draining node keeps its
 * rooms until its deadline (players already in the room are there). A node that is gone,
 * stopping, stopped or unhealthy has lost them: `unhealthy` means HEALTH_CHECK_FAILURES checks in
 * a row went unanswered, so its players were cut off (4009) and reconnect — to a new placement,
 * or they would retry a dead node until it is reaped.
 */
export function placementIsLive(n: Pick<NodeRecord, "state"> | undefined): boolean {
  return n !== undefined && (n.state === "ready" || n.state === "draining" || n.state === "starting");
}
