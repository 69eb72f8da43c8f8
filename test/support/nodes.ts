import type { NodeRecord } from "../../core/types.ts";

/** A node record with sensible defaults, for tests. */
export function makeNode(p: Partial<NodeRecord> & { id: string }): NodeRecord {
  return {
    state: "ready",
    host: "127.0.0.1",
    port: 9000,
    region: "local",
    capacity: 1,
    maxRooms: 100,
    rooms: 0,
    players: 0,
    reservedRooms: 0,
    reservedSeats: 0,
    token: "tok",
    driver: "fake",
    ref: p.id,
    dockerHost: "",
    startedAt: 1000,
    lastSeenAt: 1000,
    stateChangedAt: 1000,
    lastActivityAt: 1000,
    stoppedAt: 0,
    healthFailures: 0,
    requestId: "",
    version: "",
    image: "",
    ...p,
  };
}
