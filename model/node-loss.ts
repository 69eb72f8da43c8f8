/**
 * A node the gateway saw fail: its upstream connections were refused, timed out, or dropped without
 * a close frame. The gateway reports it at once — the node leaves placement (`unhealthy`, which
 * placement skips and under which a room placed there counts as lost, so reconnects after the
 * 4009 delay are placed on another node) and the event is published (the templater takes it off
 * the edge, every gateway closes or resumes its players). The scheduler's health check then
 * confirms or restores it: a node that answers its next probe is `ready` again; one that does not
 * is replaced (scheduler/policy/liveness.ts — a report leaves `healthFailures` at 0, which is how
 * the health check tells a reported loss from one it found itself).
 */
import { InvalidTransitionError, NodeNotFoundError, type NodeRegistry } from "./node-registry.ts";

/** Prefix of the transition reason, so operators see who took the node out. */
export const GATEWAY_REPORT_REASON = "gateway saw upstream failure";

/**
 * Takes a `ready` node out of placement because a gateway's connections to it failed. Returns true
 * when this call moved it (false: already out, draining, or gone).
 */
export async function reportUpstreamLoss(registry: Pick<NodeRegistry, "transition">, nodeId: string, now: number, why: string): Promise<boolean> {
  try {
    await registry.transition(nodeId, "unhealthy", now, { expectFrom: ["ready"], patch: { healthFailures: 0 }, reason: `${GATEWAY_REPORT_REASON}: ${why}` });
    return true;
  } catch (err) {
    if (err instanceof InvalidTransitionError || err instanceof NodeNotFoundError) return false;
    throw err;
  }
}
