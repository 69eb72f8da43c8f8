/**
 * Seat checks on the WebSocket upgrade (issue 6). The relay calls `checkSeat` on every upgrade,
 * after the player's token is verified.
 *
 * - No room record: an ad-hoc room, placed on first connect → ok.
 * - Closed (completed) record → 4004.
 * - Kicked from the room → 4003 (before anything else: a kicked player's old seat token is useless).
 * - Public rooms: a seated player may connect, with or without a token.
 * - Private rooms: a valid seat token bound to this room and player is required, and the player
 *   must still be seated; knowing the code is not enough.
 * - Not seated: 4008 when a public room is full, else 4003 (join over HTTP first).
 */
import { CloseCode } from "../../core/errors.ts";
import { ROOM_CODE_RE } from "../../core/names.ts";
import type { SeatChecker, SeatDecision } from "../contracts.ts";
import type { BaseDeps } from "../../core/deps.ts";
import { RoomStore } from "./room-store.ts";

export function createSeatChecker(deps: Pick<BaseDeps, "redis" | "keys" | "clock" | "config">): SeatChecker {
  const store = new RoomStore(deps);
  return {
    async checkSeat(roomCode, playerId, seatToken, now): Promise<SeatDecision> {
      if (!ROOM_CODE_RE.test(roomCode)) return { ok: false, close: CloseCode.UNKNOWN_ROOM, reason: "invalid room code" };
      const s = await store.seatState(roomCode, playerId);
      if (s.state === null) return { ok: true };
      if (s.state === "completed") return { ok: false, close: CloseCode.UNKNOWN_ROOM, reason: "room closed" };
      if (s.banned) return { ok: false, close: CloseCode.NOT_SEATED, reason: "kicked" };
      if (!s.seated) {
        // A private room says nothing about its seats to someone who has none.
        if (s.visibility === "public" && s.count >= s.maxPlayers) return { ok: false, close: CloseCode.ROOM_FULL, reason: "room full" };
        return { ok: false, close: CloseCode.NOT_SEATED, reason: "not seated: join the room first" };
      }
      const regions = s.regions ? { regions: s.regions } : {};
      if (s.visibility === "public") return { ok: true, seated: true, roomSeats: s.maxPlayers, ...regions };
      const grant = await store.readSeatToken(seatToken, now);
      if (!grant || grant.room !== roomCode || grant.player !== playerId) return { ok: false, close: CloseCode.NOT_SEATED, reason: "seat token missing, expired or not yours" };
      return { ok: true, seated: true, roomSeats: s.maxPlayers, ...regions };
    },
  };
}
