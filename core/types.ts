/** Domain types shared by every process: nodes, gateways, rooms, sessions, tickets, job payloads. */

export const NODE_STATES = ["starting", "ready", "draining", "stopping", "stopped", "unhealthy"] as const;
export type NodeState = (typeof NODE_STATES)[number];

/**
 * The node state machine. `deleted` is not a state: a deleted node's record is removed.
 * `stopped → starting` is a wake (the container still exists until CLEANUP_DELETE).
 */
export const NODE_TRANSITIONS: Readonly<Record<NodeState, readonly NodeState[]>> = Object.freeze({
  starting: ["ready", "unhealthy", "stopping", "stopped"],
  ready: ["draining", "stopping", "unhealthy"],
  draining: ["stopping", "unhealthy", "ready"],
  unhealthy: ["ready", "draining", "stopping", "stopped"],
  stopping: ["stopped"],
  stopped: ["starting"],
});

export function canTransition(from: NodeState, to: NodeState): boolean {
  return NODE_TRANSITIONS[from].includes(to);
}

export function isNodeState(s: string): s is NodeState {
  return (NODE_STATES as readonly string[]).includes(s);
}

/** Health as operators see it (dashboard, /v1/servers). */
export type NodeHealth = "healthy" | "degraded" | "unhealthy" | "maintenance";

export function nodeHealth(n: Pick<NodeRecord, "state" | "healthFailures">): NodeHealth {
  if (n.state === "unhealthy") return "unhealthy";
  if (n.state === "draining" || n.state === "stopping" || n.state === "stopped") return "maintenance";
  if (n.healthFailures > 0) return "degraded";
  return "healthy";
}

/** A game-server node as the registry keeps it. */
export interface NodeRecord {
  id: string;
  state: NodeState;
  /** Address the gateway dials (127.0.0.1 for local nodes). */
  host: string;
  port: number;
  region: string;
  /** Max players on the node (MAX_PLAYERS_PER_SERVER). */
  capacity: number;
  maxRooms: number;
  /** Rooms on the node as the node last reported them (its /health). */
  rooms: number;
  /** Players on the node as the node last reported them (its /health). */
  players: number;
  /** Rooms placed on the node (the seat budget, model/seat-budget.ts; never written by anyone else). */
  reservedRooms: number;
  /** Seats reserved on the node: one per player session plus each room's seats (the seat budget). */
  reservedSeats: number;
  /** Secret the node requires on every gateway connection. Never exposed by the API. */
  token: string;
  /** Driver that runs it and the driver's reference (container id, pid). */
  driver: string;
  ref: string;
  /** Docker host (DOCKER_HOSTS entry) for the docker driver, "" otherwise. */
  dockerHost: string;
  startedAt: number;
  lastSeenAt: number;
  stateChangedAt: number;
  lastActivityAt: number;
  stoppedAt: number;
  healthFailures: number;
  /** The scale-up request (job id) that created it, for idempotency. */
  requestId: string;
  /** Fleet version the node runs ("" = a node from before versions: the active version). */
  version: string;
  /** Image (or, for process nodes, the label) the node was started from. */
  image: string;
  /** The version's extra environment (JSON object), so a wake starts the node as it was. Absent: none. */
  versionEnv?: string;
}

/** What the API shows of a node (no token). */
export interface PublicNode {
  id: string;
  state: NodeState;
  health: NodeHealth;
  host: string;
  port: number;
  region: string;
  rooms: number;
  players: number;
  capacity: number;
  /** Fleet version ("" for nodes started before versions existed). */
  version: string;
  startedAt: string;
  lastSeenAt: string;
}

export function publicNode(n: NodeRecord): PublicNode {
  return {
    id: n.id,
    state: n.state,
    health: nodeHealth(n),
    host: n.host,
    port: n.port,
    region: n.region,
    rooms: n.rooms,
    players: n.players,
    capacity: n.capacity,
    version: n.version,
    startedAt: new Date(n.startedAt).toISOString(),
    lastSeenAt: new Date(n.lastSeenAt).toISOString(),
  };
}

export interface NodeEvent {
  type: "node";
  nodeId: string;
  /** undefined when created. */
  from: NodeState | undefined;
  /** undefined when deleted. */
  to: NodeState | undefined;
  at: number;
  reason?: string;
}

export interface GatewayRecord {
  id: string;
  host: string;
  port: number;
  /** Region the replica serves (GATEWAY_REGION); "" for a record written before regions. */
  region?: string;
  /** HTTP base URL clients reach this replica at (its region's ping URL is built from it); "" = unknown. */
  publicUrl?: string;
  startedAt: number;
  lastSeenAt: number;
}

export interface GatewayEvent {
  type: "gateway";
  gatewayId: string;
  change: "up" | "down";
  at: number;
}

export type RoomState = "waiting" | "starting" | "active" | "ending" | "completed";
export type RoomVisibility = "public" | "private";

export interface Room {
  code: string;
  mode: string;
  region: string;
  visibility: RoomVisibility;
  state: RoomState;
  players: string[];
  maxPlayers: number;
  hostId: string;
  nodeId: string | null;
  createdAt: number;
}

export interface PlayerSession {
  sessionId: string;
  playerId: string;
  roomCode: string;
  nodeId: string;
  createdAt: number;
  lastBeatAt: number;
}

export type TicketStatus = "queued" | "matched" | "cancelled" | "expired";

/** Room-level events the gateways act on (kick → close 4003, room closed → close 4004...). */
export interface RoomEvent {
  type: "kick" | "close" | "host" | "state";
  roomCode: string;
  playerId?: string;
  /** With `state`: the room's new state, when the publisher says it (a match start: `starting`). */
  state?: RoomState;
  at: number;
}

// Job payloads (BullMQ). Job ids are deterministic; see model/jobs.ts.
export interface ScaleUpJob {
  /** Nodes to start. */
  count: number;
  region: string;
  reason: string;
  /** Who asked (join waiter id, admin, autoscaler tick) — for logs and idempotency. */
  requestId: string;
  /**
   * Version to start (a rollout's, a restart's). Unset: the version placement wants now (the
   * rollout's target while one runs, else the active version).
   */
  version?: FleetVersion;
}

/** A node version: an image plus optional environment (CONTRACT "Fleet versions and rollouts"). */
export interface FleetVersion {
  version: string;
  image: string;
  env?: Record<string, string>;
}

/** A rollout job's payload: the rollout id (its record lives in Redis). */
export interface RolloutJob {
  rolloutId: string;
}

/** A node restart: a replacement of the same version ready first, then the node drained. */
export interface RestartJob {
  nodeId: string;
  deadlineMs: number;
  reason: string;
}

export interface DrainJob {
  nodeId: string;
  deadlineMs: number;
  reason: string;
}

export interface ReapJob {
  /** A sweep over the whole fleet, or one node. */
  nodeId?: string;
}

export interface WakeJob {
  nodeId: string;
  requestId: string;
}
