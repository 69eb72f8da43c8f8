/**
 * The capacity snapshot: one function, so `/v1/capacity`, the dashboard and metrics show the same
 * numbers.
 */
import type { NodeRegistry } from "../../model/node-registry.ts";
import { NODE_STATES, type NodeRecord, type NodeState } from "../../core/types.ts";
import type { SchedulerClient } from "../../model/jobs.ts";
import { usedSeats } from "../../model/seat-budget.ts";

export interface CapacitySnapshot {
  /** Players on live nodes: reported or reserved, whichever is larger (the seat budget's used seats, uncapped). */
  players: number;
  /** Player capacity of nodes that take new players (ready). */
  capacity: number;
  /** players / capacity (0 when capacity is 0). */
  utilization: number;
  nodes: Record<NodeState, number>;
  /** Scheduler jobs waiting or running, all queues together. */
  queuedJobs: number;
  queues: Record<string, number>;
}

export function summarizeCapacity(nodes: readonly NodeRecord[], queues: Record<string, number>): CapacitySnapshot {
  const byState = Object.fromEntries(NODE_STATES.map((s) => [s, 0])) as Record<NodeState, number>;
  let players = 0;
  let capacity = 0;
  let used = 0;
  for (const n of nodes) {
    byState[n.state]++;
    if (n.state === "ready" || n.state === "draining" || n.state === "unhealthy") {
      players += Math.max(n.players, n.reservedSeats);
      // As the autoscaler counts them (the seat budget's usedSeats): a node holding a whole room
      // can have more players than its capacity — it is full, not over.
      used += usedSeats(n);
    }
    if (n.state === "ready") capacity += n.capacity;
  }
  const queuedJobs = Object.values(queues).reduce((a, b) => a + b, 0);
  return { players, capacity, utilization: capacity > 0 ? Math.round((used / capacity) * 1000) / 1000 : 0, nodes: byState, queuedJobs, queues };
}

export async function capacitySnapshot(deps: { nodes: NodeRegistry; scheduler: SchedulerClient }): Promise<CapacitySnapshot> {
  const [nodes, queues] = await Promise.all([deps.nodes.list(), deps.scheduler.queuedJobs()]);
  return summarizeCapacity(nodes, queues);
}
