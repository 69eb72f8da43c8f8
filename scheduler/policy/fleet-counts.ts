/**
 * Counting the fleet the same way everywhere: which states hold a server slot (MAX_SERVERS), which
 * nodes are idle spares, how much player capacity is up or coming. Pure.
 */
import type { NodeRecord } from "../../core/types.ts";
import { usedRooms, usedSeats } from "../../model/seat-budget.ts";
import { LIVE_STATES } from "../../model/placement/wait-for-node.ts";

/** The states that hold a server slot: the one list, in model/placement/wait-for-node.ts. */
export { LIVE_STATES };

export function isLive(n: Pick<NodeRecord, "state">): boolean {
  return LIVE_STATES.includes(n.state);
}

/**
 * A ready node nobody uses: no players and no rooms, reported or reserved (a seat reserved by a
 * join whose player has not connected yet counts). Only such nodes are ever scaled down.
 */
export function isIdle(n: Pick<NodeRecord, "state" | "players" | "rooms" | "reservedRooms" | "reservedSeats" | "capacity">): boolean {
  return n.state === "ready" && usedSeats(n) === 0 && usedRooms(n) === 0;
}

export interface FleetCounts {
  /** Nodes holding a server slot, including starts requested but not yet registered. */
  live: number;
  ready: number;
  /** Registered `starting` nodes plus starts requested but not yet registered. */
  starting: number;
  idleReady: number;
  /** Players on ready, draining and unhealthy nodes. */
  players: number;
  /** Player capacity of ready nodes (what takes new players now). */
  readyCapacity: number;
}

export function countFleet(nodes: readonly NodeRecord[], pendingStarts: number): FleetCounts {
  let live = pendingStarts;
  let ready = 0;
  let starting = pendingStarts;
  let idleReady = 0;
  let players = 0;
  let readyCapacity = 0;
  for (const n of nodes) {
    if (isLive(n)) live++;
    if (n.state === "starting") starting++;
    if (n.state === "ready") {
      ready++;
      readyCapacity += n.capacity;
      if (isIdle(n)) idleReady++;
    }
    if (n.state === "ready" || n.state === "draining" || n.state === "unhealthy") players += seatedPlayers(n);
  }
  return { live, ready, starting, idleReady, players, readyCapacity };
}

/**
 * Players that count against a node's capacity: the seat budget's used seats — max(reported
 * players, reserved seats of sessions and rooms), at most its capacity. A room's players all meet
 * on the room's node, so with one server per match (MAX_PLAYERS_PER_SERVER=1) an 8-player room puts
 * 8 players on a capacity-1 node: that node is full, not 800 % used (which would start 9 more).
 */
export function seatedPlayers(n: Pick<NodeRecord, "players" | "reservedSeats" | "capacity">): number {
  return usedSeats(n);
}
