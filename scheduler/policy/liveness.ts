/**
 * Node health decisions, pure: what one `/health` probe means for a node's record, and which nodes
 * have not been seen for too long (the checker itself may have missed them).
 */
import type { Config } from "../../core/config.ts";
import type { NodePatch } from "../../model/node-registry.ts";
import type { NodeRecord, NodeState } from "../../core/types.ts";

export type HealthConfig = Pick<Config, "healthCheckIntervalMs" | "healthCheckFailures" | "healthCheckTimeoutMs">;

/** The outcome of one `GET /health` against a node. */
export type ProbeResult =
  | { ok: true; state: "ready" | "draining"; rooms: number; players: number; nodeId?: string }
  | { ok: false; error: string };

/** States whose nodes are probed by the health checker (`starting` is the scale-up job's to watch). */
export const CHECKED_STATES: readonly NodeState[] = ["ready", "draining", "unhealthy"];

export interface HealthVerdict {
  patch: NodePatch;
  /** A transition to make, if any. */
  to?: "unhealthy" | "ready";
  /** Start a replacement node (the node served players and just became unhealthy). */
  replace: boolean;
  reason: string;
}

export function healthVerdict(n: NodeRecord, probe: ProbeResult, now: number, c: HealthConfig): HealthVerdict {
  if (probe.ok && probe.nodeId !== undefined && probe.nodeId !== n.id) {
    // Something else answers on the node's port (the node died and the port was reused).
    return failed(n, `port ${n.port} answered as node ${probe.nodeId}`, c);
  }
  if (probe.ok) {
    const patch: NodePatch = { rooms: probe.rooms, players: probe.players, lastSeenAt: now, healthFailures: 0 };
    if (n.state === "unhealthy") return { patch, to: "ready", replace: false, reason: "health checks pass again" };
    return { patch, replace: false, reason: "ok" };
  }
  return failed(n, probe.error, c);
}

function failed(n: NodeRecord, error: string, c: HealthConfig): HealthVerdict {
  const failures = n.healthFailures + 1;
  const patch: NodePatch = { healthFailures: failures };
  if (n.state === "unhealthy" && n.healthFailures === 0) {
    // Taken out by a gateway that saw its connections fail (model/node-loss.ts), and this probe
    // fails too: the loss is confirmed, and the node served players — replace it (once: the
    // failure count is no longer 0 after this).
    return { patch, replace: true, reason: `upstream loss reported by a gateway, confirmed by a failed health check (${error})` };
  }
  if (n.state !== "unhealthy" && failures >= c.healthCheckFailures) {
    // A draining node that dies needs no replacement: it was leaving anyway.
    return { patch, to: "unhealthy", replace: n.state === "ready", reason: `${failures} failed health checks (last: ${error})` };
  }
  return { patch, replace: false, reason: `health check failed (${failures}/${c.healthCheckFailures}): ${error}` };
}

/**
 * Ready or draining nodes not seen by any health check for longer than the failure budget
 * (HEALTH_CHECK_FAILURES intervals plus one timeout). They are treated as unhealthy even if no
 * single probe has failed — e.g. every probe hung past its timeout, or no checker ran.
 */
export function staleNodes(nodes: readonly NodeRecord[], now: number, c: HealthConfig): NodeRecord[] {
  const budget = c.healthCheckFailures * c.healthCheckIntervalMs + c.healthCheckTimeoutMs;
  return nodes.filter((n) => (n.state === "ready" || n.state === "draining") && n.lastSeenAt > 0 && now - n.lastSeenAt > budget);
}

/** Parses a `/health` body; anything off-contract is a failed probe. */
export function parseHealthBody(body: unknown): ProbeResult {
  if (typeof body !== "object" || body === null) return { ok: false, error: "health body is not an object" };
  const b = body as Record<string, unknown>;
  const state = b.state;
  if (state !== "ready" && state !== "draining") return { ok: false, error: `health state ${JSON.stringify(state)}` };
  const rooms = typeof b.rooms === "number" && Number.isFinite(b.rooms) ? b.rooms : 0;
  const players = typeof b.players === "number" && Number.isFinite(b.players) ? b.players : 0;
  return { ok: true, state, rooms, players, ...(typeof b.nodeId === "string" ? { nodeId: b.nodeId } : {}) };
}
