/** The API's shapes, as the gateway sends them (CONTRACT "Auth", "Player sessions", "Rooms and lobbies", "Regions"). */

export interface GuestResult {
  token: string;
  refreshToken: string;
  playerId: string;
  expiresAt: number;
}

export interface RefreshResult {
  token: string;
  refreshToken: string;
  expiresAt: number;
}

/** `POST /v1/players/join` → a dedicated (or packed) player session. */
export interface JoinResult {
  sessionId: string;
  playerId: string;
  roomCode: string;
  nodeId: string;
  connectUrl: string;
  heartbeatIntervalMs: number;
}

/** Measured round trips per region, ms, as joins, rooms and tickets take them. */
export type Latencies = Record<string, number>;

export interface JoinOptions {
  region?: string;
  mode?: string;
  /** Only for gateways that take it (CONTRACT "Regions"); see `Regions.choose()`. */
  latencies?: Latencies;
}

export type RoomVisibility = "public" | "private";
export type RoomState = "waiting" | "starting" | "active" | "ending" | "completed";

/** A room as `GET /v1/rooms/:code` shows it. */
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
  hasPassword?: boolean;
  settings?: Record<string, unknown>;
  [extra: string]: unknown;
}

export interface CreateRoomOptions {
  visibility: RoomVisibility;
  mode?: string;
  password?: string;
  /** Default: the gateway's ROOM_MAX_PLAYERS (8). */
  maxPlayers?: number;
  region?: string;
  settings?: Record<string, unknown>;
  latencies?: Latencies;
}

/** A seat in a room: what a create, a join or a matched ticket hands out. */
export interface RoomSeat {
  roomCode: string;
  seatToken: string;
  /** The WebSocket URL with the room code and seat token in it. */
  connectUrl: string;
}

/** `POST /v1/rooms` → the room, with the creator's (host's) seat. */
export type CreatedRoom = Room & { seatToken: string; connectUrl: string };

/** `POST /v1/rooms/:code/join`. Joining twice is idempotent (`alreadySeated`). */
export interface JoinedRoom extends RoomSeat {
  alreadySeated: boolean;
}

export interface LeaveRoomResult {
  left: boolean;
  closed: boolean;
  hostId: string | null;
  restarted?: boolean;
}

/** `POST /v1/rooms/:code/end` body: who played, the scores per team, and why it ended. */
export interface MatchResults {
  teams: string[][];
  scores: number[];
  reason: string;
}

export type TicketStatus = "queued" | "matched" | "cancelled" | "expired";

export interface TicketOptions {
  mode: string;
  region?: string;
  /** Team balancing (0..100000); a deployment with a rating service sets it server-side. */
  rating?: number;
  latencies?: Latencies;
}

export interface Ticket {
  ticketId: string;
  status: TicketStatus;
  mode?: string;
  region?: string;
  roomCode?: string;
  team?: number;
  seatToken?: string;
  connectUrl?: string;
}

/** A matched ticket: it always has a room and a seat. */
export type MatchedTicket = Ticket & { status: "matched"; roomCode: string; seatToken: string; connectUrl: string };

/** What `waitForMatch` reports on every poll. */
export interface MatchProgress {
  ticketId: string;
  status: TicketStatus;
  /** Milliseconds since the wait began. */
  waitedMs: number;
  /** Polls so far (1-based). */
  polls: number;
}

/** `GET /v1/regions` → one entry per region. */
export interface RegionInfo {
  name: string;
  /**
   * Answers `GET` with 204 at once; relative URLs resolve against the gateway's base URL. `null`
   * when no gateway serves the region (its round trip cannot be measured).
   */
  pingUrl: string | null;
  nodes?: number;
  capacity?: number;
  players?: number;
}

export interface RegionLatency {
  name: string;
  /** Best round trip of the samples, ms; `Infinity` when every sample failed. */
  rttMs: number;
  /** Every sample, ms (failed ones left out). */
  samples: number[];
}
