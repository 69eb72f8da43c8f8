/**
 * The one validation of the names clients send (CONTRACT "Room codes", modes, regions, player ids):
 * each pattern is written once, here, and used by the HTTP schemas (gateway/http/schemas.ts, so
 * the OpenAPI document shows it), the WebSocket upgrade, the stores and the Redis key builder.
 */

/** Room codes: 4–32 characters of [A-Za-z0-9_-]. */
export const ROOM_CODE_PATTERN = "^[A-Za-z0-9_-]{4,32}$";
export const ROOM_CODE_RE = new RegExp(ROOM_CODE_PATTERN);
export const ROOM_CODE_RULE = "4-32 characters of [A-Za-z0-9_-]";

/** Modes and regions: short key-safe names ("|" separates them in the lobby index, so it is excluded). */
export const NAME_PATTERN = "^[A-Za-z0-9_.-]{1,32}$";
export const NAME_RE = new RegExp(NAME_PATTERN);
export const NAME_RULE = "1-32 characters of [A-Za-z0-9_.-]";

/** Player ids (a token's `sub`) usable in Redis keys. */
export const PLAYER_ID_PATTERN = "^[A-Za-z0-9_.:-]{1,128}$";
export const PLAYER_ID_RE = new RegExp(PLAYER_ID_PATTERN);

/** The room code if it is 4–32 of [A-Za-z0-9_-], else undefined. Never throws. */
export function parseRoomCode(raw: unknown): string | undefined {
  if (typeof raw !== "string" || raw.length < 4 || raw.length > 32) return undefined;
  return ROOM_CODE_RE.test(raw) ? raw : undefined;
}
