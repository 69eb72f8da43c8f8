/**
 * What the capacity dashboard shows, in one snapshot. The capacity numbers come from
 * `summarizeCapacity` — the same function behind `/v1/capacity` — so both always agree.
 */
import type { Keys } from "../../core/keys.ts";
import type { NodeRegistry } from "../../model/node-registry.ts";
import type { Redis } from "../../core/redis.ts";
import { publicNode, type PublicNode } from "../../core/types.ts";
import { parseTemplaterEvent, type TemplaterEvent } from "../../model/templater-events.ts";
import type { SchedulerClient } from "../../model/jobs.ts";
import { summarizeCapacity, type CapacitySnapshot } from "../ops/capacity.ts";
import { parseScaleEvents, type ScaleEvent } from "../../model/scale-state.ts";

export type { ScaleEvent };

/** Everything on the dashboard at one moment. */
export interface DashboardSnapshot {
  /** When it was taken (ms since the epoch). */
  at: number;
  /** Exactly what `/v1/capacity` answers. */
  capacity: CapacitySnapshot;
  /** Every node (as `/v1/servers` shows them: no tokens). */
  nodes: PublicNode[];
  /** Most recent first. */
  scaleEvents: ScaleEvent[];
  /** The templater's last reload attempt, if any. */
  lastReload: TemplaterEvent | null;
}

/** How many scale events the dashboard lists. */
export const SCALE_EVENTS_SHOWN = 20;

export { parseScaleEvents };

export interface DashboardSources {
  nodes: NodeRegistry;
  scheduler: SchedulerClient;
  redis: Redis;
  keys: Keys;
}

export async function dashboardSnapshot(deps: DashboardSources, now: number): Promise<DashboardSnapshot> {
  const [nodes, queues, rawEvents, rawReload] = await Promise.all([
    deps.nodes.list(),
    deps.scheduler.queuedJobs(),
    deps.redis.lrange(deps.keys.scaleEvents, 0, SCALE_EVENTS_SHOWN - 1),
    deps.redis.get(deps.keys.templaterLast),
  ]);
  return {
    at: now,
    capacity: summarizeCapacity(nodes, queues),
    nodes: nodes.map(publicNode),
    scaleEvents: parseScaleEvents(rawEvents).slice(0, SCALE_EVENTS_SHOWN),
    lastReload: parseTemplaterEvent(rawReload) ?? null,
  };
}
