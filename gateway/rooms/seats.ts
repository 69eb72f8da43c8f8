/** Seat checks on the WebSocket upgrade (issue 6). STUB: every room is ad hoc until rooms land. */
import type { GatewayDeps } from "../deps.ts";
import type { SeatChecker } from "../contracts.ts";

export function createSeatChecker(_deps: Pick<GatewayDeps, "redis" | "keys" | "clock" | "config">): SeatChecker {
  return {
    async checkSeat() {
      return { ok: true };
    },
  };
}
