/** Fixtures for scheduler tests: node records and fleet snapshots. */
import type { NodeRecord } from "../../core/types.ts";
import { makeNode } from "./nodes.ts";
import type { FleetSnapshot } from "../../scheduler/policy/desired-nodes.ts";

export const T0 = 1_700_000_000_000;

export function nodeRec(id: string, over: Partial<NodeRecord> = {}): NodeRecord {
  return makeNode({ id, driver: "memory", startedAt: T0, lastSeenAt: T0, stateChangedAt: T0, lastActivityAt: T0, requestId: "r", ...over });
}

export function snapshot(over: Partial<FleetSnapshot> = {}): FleetSnapshot {
  return { nodes: [], pendingJoins: 0, pendingStarts: 0, floor: 0, lastScaleUpAt: 0, lastScaleDownAt: 0, ...over };
}
