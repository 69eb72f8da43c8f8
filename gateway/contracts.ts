/**
 * The seams between the gateway's features, so each can be built and tested alone:
 * auth (gateway/auth), placement (gateway/placement), seats (gateway/rooms), the relay (gateway/ws).
 */
import { unauthorized, forbidden, type AppError } from "../core/errors.ts";
import type { CloseCode } from "../core/errors.ts";
import type { NodeRecord } from "../core/types.ts";

export type Role = "player" | "admin";

/** Verified JWT claims (CONTRACT: sub, name, region, roles, exp). */
export interface Claims {
  sub: string;
  name: string;
  region: string;
  roles: Role[];
  /** Seconds since the epoch. */
  exp: number;
}

export interface Authenticator {
  /** Verified claims, or null for a missing/bad/expired/tampered/alg-none token. Never throws. */
  verify(token: string | undefined | null): Promise<Claims | null>;
}

/** Issues access tokens (guest sign-in, refresh, `npm run token`). */
export interface TokenSigner {
  /** Signs `claims` with an expiry `ttlMs` from `now` (default: JWT_TTL). */
  sign(claims: Omit<Claims, "exp">, now: number, ttlMs?: number): Promise<{ token: string; expiresAt: number }>;
}

/** The bearer token of an HTTP request, or undefined. */
export function bearerToken(request: Request): string | undefined {
  const h = request.headers.get("authorization");
  if (!h) return undefined;
  const m = /^Bearer\s+(\S+)$/i.exec(h.trim());
  return m?.[1];
}

/** Claims of the request's bearer token, or a 401 AppError. */
export async function requireClaims(auth: Authenticator, request: Request): Promise<Claims> {
  const token = bearerToken(request);
  if (!token) throw unauthorized("TOKEN_MISSING", "Authorization: Bearer <token> is required");
  const claims = await auth.verify(token);
  if (!claims) throw unauthorized("TOKEN_INVALID", "token is invalid or expired");
  return claims;
}

/** Claims of an admin, or 401 (no/bad token) / 403 (not admin). */
export async function requireAdmin(auth: Authenticator, request: Request): Promise<Claims> {
  const claims = await requireClaims(auth, request);
  if (!claims.roles.includes("admin")) throw forbidden("NOT_ADMIN", "admin role required");
  return claims;
}

/** Room → node placement (consistent hashing with bounded load; never moves a live room). */
export interface Placement {
  /** The node that owns the room, placing the room if it is new. Throws AppError 503 NO_CAPACITY. */
  placeRoom(roomCode: string, opts: { region?: string; now: number; seats?: number }): Promise<NodeRecord>;
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

export type { AppError };
