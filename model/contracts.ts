/**
 * The seams between the fleet model and the processes that use it: placement (model/placement),
 * seat checks and presence (model/rooms). The gateway's relay calls them; tests swap them.
 */
import type { CloseCode } from "../core/errors.ts";
import type { NodeRecord } from "../core/types.ts";

/** Where and how big a new room is. */
export interface PlaceOptions {
  /** Preferred region: its nodes when any is ready, else any node (when `regions` is not given). */
  region?: string;
  /**
   * The regions the room may go to now, in order (region-choice.ts `openRegions`): the first with a
   * node that has room for it wins; never a node outside them. Overrides `region`.
   */
  regions?: readonly string[];
  now: number;
  seats?: number;
}

/** Room → node placement (consistent hashing with bounded load; never moves a live room). */
export interface Placement {
  /** The node that owns the room, placing the room if it is new. Throws AppError 503 NO_CAPACITY. */
  placeRoom(roomCode: string, opts: PlaceOptions): Promise<NodeRecord>;
  /**
   * Places a new room and reserves one player seat on its node in the same atomic step (player
   * sessions: MAX_PLAYERS_PER_SERVER bounds the seats). Undefined when no ready node has both.
   * `regions` as in PlaceOptions.
   */
  placeRoomWithSeat(roomCode: string, seatHolder: string, region?: string, regions?: readonly string[]): Promise<NodeRecord | undefined>;
  /** The node that owns the room, without placing it. */
  nodeForRoom(roomCode: string): Promise<NodeRecord | undefined>;
  /** Forgets the room's placement (room closed). */
  releaseRoom(roomCode: string): Promise<void>;
}

/** Whether a player may open a WebSocket to a room (seat tokens, kicks, capacity). */
export type SeatDecision =
  | {
      ok: true;
      /** True when the room has a record and the player is seated in it: the relay reports presence (RoomPresence). */
      seated?: boolean;
      /** The room's maxPlayers when it has a record: the player seats it takes on its node. */
      roomSeats?: number;
      /** Where the room may be placed, in order, when its creator's regions were ranked (region-choice.ts encodeRanking). */
      regions?: string;
    }
  | { ok: false; close: CloseCode; reason: string };

export interface SeatChecker {
  /**
   * Called on every upgrade after the token is verified. Rooms that have a room record (created
   * via /v1/rooms, matchmaking or /v1/players/join) decide by their seats; codes with no record are
   * ad-hoc rooms and return ok (placed on first connect).
   */
  checkSeat(roomCode: string, playerId: string, seatToken: string | undefined, now: number): Promise<SeatDecision>;
}

/**
 * Presence of seated players in rooms with a record (the seat reaper, issue 6). The relay calls it
 * when a player's socket to such a room opens and when it closes — never per frame. Ad-hoc rooms
 * (no record) and player-session rooms (`s-…`) are not tracked. Implementations never throw into
 * the relay's caller: the hub logs a failure and goes on.
 */
export interface RoomPresence {
  /** A socket of `playerId` to `code` opened: the player is present (their absence, if any, ends). */
  connected(code: string, playerId: string, now: number): Promise<void>;
  /** A socket closed: when it was the player's last one to `code`, they are absent since `now`. */
  disconnected(code: string, playerId: string, now: number): Promise<void>;
}
