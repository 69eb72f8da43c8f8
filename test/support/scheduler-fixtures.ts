/** Fixtures for scheduler tests: node records and fleet snapshots. */
import type { NodeRecord } from "../../core/types.ts";
import type { FleetSnapshot } from "../../scheduler/policy/desired-nodes.ts";

export const T0 = 1_700_000_000_000;

export function nodeRec(id: string, over: Partial<NodeRecord> = {}): NodeRecord {
  return {
    id,
    state: "ready",
    host: "127.0.0.1",
    port: 9000,
    region: "local",
    capacity: 1,
    maxRooms: 100,
    rooms: 0,
    players: 0,
    token: "tok",
    driver: "memory",
    ref: id,
    dockerHost: "",
    startedAt: T0,
    lastSeenAt: T0,
    stateChangedAt: T0,
    lastActivityAt: T0,
    stoppedAt: 0,
    healthFailures: 0,
    requestId: "r",
    ...over,
  };
}

export function snapshot(over: Partial<FleetSnapshot> = {}): FleetSnapshot {
  return { nodes: [], pendingJoins: 0, pendingStarts: 0, floor: 0, lastScaleUpAt: 0, lastScaleDownAt: 0, ...over };
}
