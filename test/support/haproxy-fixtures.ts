/** Registry fixtures for the HAProxy templater's tests: nodes and gateways with sensible defaults. */
import type { GatewayRecord, NodeRecord, NodeState } from "../../core/types.ts";

export function nodeRecord(id: string, state: NodeState, port: number, extra: Partial<NodeRecord> = {}): NodeRecord {
  return {
    id,
    state,
    host: "127.0.0.1",
    port,
    region: "local",
    capacity: 8,
    maxRooms: 100,
    rooms: 0,
    players: 0,
    reservedRooms: 0,
    reservedSeats: 0,
    token: "tok",
    driver: "process",
    ref: "",
    dockerHost: "",
    startedAt: 1_700_000_000_000,
    lastSeenAt: 1_700_000_000_000,
    stateChangedAt: 1_700_000_000_000,
    lastActivityAt: 0,
    stoppedAt: 0,
    healthFailures: 0,
    requestId: "",
    version: "",
    image: "",
    ...extra,
  };
}

export function gatewayRecord(id: string, port: number, host = "127.0.0.1"): GatewayRecord {
  return { id, host, port, startedAt: 1_700_000_000_000, lastSeenAt: 1_700_000_000_000 };
}
