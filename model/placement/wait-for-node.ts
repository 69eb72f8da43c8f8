/**
 * The one wait-for-a-node loop, shared by a player join (gateway/players/join.ts) and a WebSocket
 * connect that must place its room (gateway/ws/place-or-wait.ts), and the one decision of what to
 * ask the scheduler for when no node has room ("do we need a node?").
 *
 * The loop: try to place; when nothing has room, decide once what capacity to ask for (wake the
 * room's stopped node, start a node, wait for one already on its way, or give up because nothing
 * can change), then wait — woken by node events, re-checking at least every RECHECK_MS (a freed
 * seat publishes no node event), and when the player's fallback regions open — until the deadline.
 */
import type { Clock } from "../../core/clock.ts";
import type { NodeRecord, NodeState } from "../../core/types.ts";

/** Re-check at least this often while waiting (seats freed by leaves publish no node event). */
export const RECHECK_MS = 500;

/** What to ask the scheduler for when no ready node has room. */
export type CapacityAsk =
  | { kind: "wake"; nodeId: string }
  | { kind: "scale-up" }
  /** Nothing to ask: a node is already on its way (or a fallback region opens later). */
  | { kind: "wait" }
  /** At MAX_SERVERS with nothing on its way: waiting cannot help. */
  | { kind: "give-up" };

/**
 * States that occupy a server slot against MAX_SERVERS. A `stopped` node's container still exists
 * until CLEANUP_DELETE but runs nothing, so it does not count (waking it takes a slot again).
 * The scheduler's fleet counts and port allocator use the same list.
 */
export const LIVE_STATES: readonly NodeState[] = ["starting", "ready", "draining", "unhealthy", "stopping"];

/** Nodes that count against MAX_SERVERS. */
export function liveNodeCount(nodes: readonly Pick<NodeRecord, "state">[]): number {
  return nodes.filter((n) => LIVE_STATES.includes(n.state)).length;
}

/** Whether the fleet may grow by one node: it is below MAX_SERVERS. */
export function mayScaleUp(nodes: readonly Pick<NodeRecord, "state">[], maxServers: number): boolean {
  return liveNodeCount(nodes) < maxServers;
}

/**
 * "Do we need a node?", decided in one place. Pure.
 * - the room's own node was stopped for inactivity → wake it (its room lives there);
 * - it is starting (being woken) → wait for it;
 * - the fleet is below MAX_SERVERS → start one;
 * - a node is starting anyway, or a fallback region opens later → wait;
 * - else → give up (only a freed seat could help, and the caller may still choose to wait for one).
 */
export function decideCapacity(input: { fleet: readonly Pick<NodeRecord, "state">[]; roomNode?: Pick<NodeRecord, "id" | "state">; maxServers: number; fallbacksLater: boolean }): CapacityAsk {
  const { fleet, roomNode, maxServers, fallbacksLater } = input;
  if (roomNode?.state === "stopped") return { kind: "wake", nodeId: roomNode.id };
  if (roomNode?.state === "starting") return { kind: "wait" };
  if (mayScaleUp(fleet, maxServers)) return { kind: "scale-up" };
  if (fallbacksLater || fleet.some((n) => n.state === "starting")) return { kind: "wait" };
  return { kind: "give-up" };
}

export interface WaitForNodeOptions<T> {
  clock: Clock;
  /** How long to wait at most (JOIN_WAIT_TIMEOUT). */
  timeoutMs: number;
  /** One placement try; `elapsedMs` since the wait began (region fallbacks open with it). Undefined: no room now. */
  attempt(elapsedMs: number): Promise<T | undefined>;
  /** Called once, after the first failed try: ask for capacity. "give-up" ends the wait at once. */
  askForCapacity(): Promise<"wait" | "give-up">;
  /** Resolves on the next node change, or after `ms`. */
  nextChange(ms: number): Promise<unknown>;
  /** Also wake at this elapsed time (when fallback regions open). */
  wakeAtElapsedMs?: number;
  recheckMs?: number;
}

/** The placed result, or undefined when nothing had room by the deadline (or waiting could not help). */
export async function waitForNode<T>(o: WaitForNodeOptions<T>): Promise<T | undefined> {
  const started = o.clock.now();
  const deadline = started + o.timeoutMs;
  const recheck = o.recheckMs ?? RECHECK_MS;
  let asked = false;
  for (;;) {
    const placed = await o.attempt(o.clock.now() - started);
    if (placed !== undefined) return placed;
    const now = o.clock.now();
    if (now >= deadline) return undefined;
    if (!asked) {
      asked = true;
      if ((await o.askForCapacity()) === "give-up") return undefined;
    }
    const elapsed = now - started;
    const untilWake = o.wakeAtElapsedMs !== undefined && elapsed < o.wakeAtElapsedMs ? o.wakeAtElapsedMs - elapsed : Infinity;
    await o.nextChange(Math.max(1, Math.min(recheck, deadline - now, untilWake)));
  }
}
