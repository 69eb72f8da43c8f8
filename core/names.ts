/** Room-code validation: CONTRACT "Room codes", checked before any lookup or key is built. */
import { ROOM_CODE_RE } from "./keys.ts";

/** The room code if it is 4–32 of [A-Za-z0-9_-], else undefined. Never throws. */
export function parseRoomCode(raw: unknown): string | undefined {
  if (typeof raw !== "string" || raw.length < 4 || raw.length > 32) return undefined;
  return ROOM_CODE_RE.test(raw) ? raw : undefined;
}
