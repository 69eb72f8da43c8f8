/**
 * The autoscaler's decision, as a pure function of the fleet's state, the config and `now`
 * (Agones' habit: the controller does I/O, the decision beside it does none).
 *
 * Rules, in order:
 * - a buffer of MIN_READY_SERVERS idle ready nodes, plus one node's worth of seats for every
 *   waiting join (a join waits only when no seat is free), counting nodes already starting;
 * - utilisation: players may fill at most SCALE_UP_UTILIZATION of the capacity that is up or coming;
 * - the admin floor (`POST /v1/admin/scale {nodes}`): at least that many ready + starting nodes;
 * - never more than MAX_SERVERS nodes holding a slot;
 * - scale down only idle nodes (0 players, 0 rooms) that have been idle for SCALE_DOWN_COOLDOWN,
 *   only SCALE_DOWN_COOLDOWN after the last scale event, and never below any of the rules above.
 */
import type { Config } from "../../core/config.ts";
import type { NodeRecord } from "../../core/types.ts";
import { countFleet, isIdle, seatedPlayers, type FleetCounts } from "./fleet-counts.ts";

/** What the autoscaler reads from Redis each tick. */
export interface FleetSnapshot {
  nodes: readonly NodeRecord[];
  /** Joins waiting for a node right now (live entries of keys.pendingJoins). */
  pendingJoins: number;
  /** Nodes asked for by scale-up jobs that are not in the registry yet (queued or mid-start). */
  pendingStarts: number;
  /** Admin floor (keys.scaleState `floor`); 0 when unset. */
  floor: number;
  /** ms; 0 when never. */
  lastScaleUpAt: number;
  lastScaleDownAt: number;
}

export type PolicyConfig = Pick<Config, "maxServers" | "minReadyServers" | "maxPlayersPerServer" | "scaleUpUtilization" | "scaleDownCooldownMs">;

export type ScaleDecision =
  | { action: "none"; count: 0; reason: string }
  | { action: "up"; count: number; reason: string }
  | { action: "down"; count: number; nodeIds: string[]; reason: string };

/** Seats needed for `players` to stay at or under the utilisation threshold. */
function seatsNeeded(players: number, threshold: number): number {
  if (players <= 0) return 0;
  // The epsilon keeps 4 / 0.8 = 5.000000000000001 from asking for a sixth seat.
  return Math.ceil(players / threshold - 1e-9);
}

/** How many nodes each rule wants added, with its reason. */
function deficits(s: FleetSnapshot, c: PolicyConfig, k: FleetCounts): { count: number; reason: string }[] {
  const cap = c.maxPlayersPerServer;
  const joinNodes = Math.ceil(s.pendingJoins / cap);
  const out: { count: number; reason: string }[] = [];

  const wantSpare = c.minReadyServers + joinNodes;
  const haveSpare = k.idleReady + k.starting;
  if (wantSpare > haveSpare) {
    const why = [
      c.minReadyServers > 0 ? `buffer MIN_READY_SERVERS=${c.minReadyServers}` : "",
      s.pendingJoins > 0 ? `${s.pendingJoins} queued join(s) need ${joinNodes} node(s)` : "",
    ]
      .filter(Boolean)
      .join(" + ");
    out.push({ count: wantSpare - haveSpare, reason: `${why}; have ${k.idleReady} idle ready + ${k.starting} starting` });
  }

  const upcomingCapacity = k.readyCapacity + k.starting * cap;
  const seats = seatsNeeded(k.players, c.scaleUpUtilization);
  if (seats > upcomingCapacity) {
    const util = upcomingCapacity > 0 ? (k.players / upcomingCapacity).toFixed(2) : "∞";
    out.push({
      count: Math.ceil((seats - upcomingCapacity) / cap),
      reason: `utilisation ${util} > SCALE_UP_UTILIZATION=${c.scaleUpUtilization} (${k.players} players, ${upcomingCapacity} seats up or starting)`,
    });
  }

  if (s.floor > k.ready + k.starting) {
    out.push({ count: s.floor - (k.ready + k.starting), reason: `admin floor ${s.floor} > ${k.ready} ready + ${k.starting} starting` });
  }
  return out;
}

/** Base time for a node's inactivity: its last activity, or when it (re)entered its state. */
export function activityBase(n: Pick<NodeRecord, "lastActivityAt" | "stateChangedAt">): number {
  return Math.max(n.lastActivityAt, n.stateChangedAt);
}

/**
 * Of `candidates` (ready nodes, in order of preference), those that can be taken out of service
 * without breaking the buffer, the admin floor or the utilisation threshold. Shared by the
 * autoscaler's scale-down and the reaper, so the reaper never shuts down the warm spares the
 * autoscaler would start again on its next tick.
 */
export function removableNodes(candidates: readonly NodeRecord[], s: FleetSnapshot, c: PolicyConfig): NodeRecord[] {
  const k = countFleet(s.nodes, s.pendingStarts);
  const wantSpare = c.minReadyServers + Math.ceil(s.pendingJoins / c.maxPlayersPerServer);
  let idleSpare = k.idleReady + k.starting;
  let serving = k.ready + k.starting;
  let players = k.players;
  let capacity = k.readyCapacity + k.starting * c.maxPlayersPerServer;
  const out: NodeRecord[] = [];
  for (const n of candidates) {
    if (n.state !== "ready") continue;
    const idle = isIdle(n);
    if (idle && idleSpare - 1 < wantSpare) continue;
    if (serving - 1 < s.floor) continue;
    const playersAfter = players - seatedPlayers(n);
    if (seatsNeeded(playersAfter, c.scaleUpUtilization) > capacity - n.capacity) continue;
    out.push(n);
    if (idle) idleSpare--;
    serving--;
    players = playersAfter;
    capacity -= n.capacity;
  }
  return out;
}

export function desiredNodes(s: FleetSnapshot, c: PolicyConfig, now: number): ScaleDecision {
  const k = countFleet(s.nodes, s.pendingStarts);
  const wants = deficits(s, c, k);
  const headroom = Math.max(0, c.maxServers - k.live);
  if (wants.length > 0) {
    const top = wants.reduce((a, b) => (b.count > a.count ? b : a));
    if (headroom === 0) return { action: "none", count: 0, reason: `at MAX_SERVERS=${c.maxServers} (${k.live} live); wanted +${top.count}: ${top.reason}` };
    const count = Math.min(top.count, headroom);
    const capped = count < top.count ? ` (capped by MAX_SERVERS=${c.maxServers})` : "";
    return { action: "up", count, reason: `${top.reason}${capped}` };
  }

  const lastEvent = Math.max(s.lastScaleUpAt, s.lastScaleDownAt);
  if (s.pendingJoins > 0 || k.idleReady === 0) return { action: "none", count: 0, reason: "steady" };
  const sinceEvent = now - lastEvent;
  const idle = s.nodes.filter(isIdle).sort((a, b) => activityBase(a) - activityBase(b) || a.id.localeCompare(b.id));
  const surplus = removableNodes(idle, s, c);
  if (surplus.length === 0) return { action: "none", count: 0, reason: "steady" };
  if (sinceEvent < c.scaleDownCooldownMs) {
    return { action: "none", count: 0, reason: `${surplus.length} idle node(s) surplus; cooling down (${Math.ceil((c.scaleDownCooldownMs - sinceEvent) / 1000)} s left of SCALE_DOWN_COOLDOWN)` };
  }
  // A node goes only once it has itself been idle for the cooldown: one that just became ready (for
  // a join about to take it) is never drained under it, however old the last recorded event.
  const eligible = surplus.filter((n) => now - activityBase(n) >= c.scaleDownCooldownMs);
  if (eligible.length === 0) return { action: "none", count: 0, reason: `${surplus.length} idle node(s) surplus, idle for less than SCALE_DOWN_COOLDOWN` };
  return {
    action: "down",
    count: eligible.length,
    nodeIds: eligible.map((n) => n.id),
    reason: `${eligible.length} idle node(s) beyond buffer ${c.minReadyServers}, floor ${s.floor} and utilisation ${c.scaleUpUtilization}`,
  };
}
