/**
 * `GET /v1/connect?room=CODE` — the WebSocket entry (CONTRACT "WebSocket"). An ordinary Elysia
 * route does everything that may refuse the connection, in this order: per-IP upgrade rate, room
 * code (before any lookup), token, session-room owner, seat, placement (asking the scheduler for
 * a node, or for a wake, and waiting bounded when none is free: see place-or-wait.ts). Only then is the upstream dialled — in the
 * socket's `open`, from the relay's plain functions (never Elysia's `.ws()`; see DESIGN "Stack
 * notes"). A refusal of a WebSocket request still upgrades and then closes with the code, because
 * a browser cannot read an HTTP status from a failed handshake.
 */
import { Elysia } from "elysia";
import type { Server } from "bun";
import { AppError, CloseCode } from "../../core/errors.ts";
import type { GatewayDeps } from "../deps.ts";
import { clientAddress, FixedWindowLimiter } from "../ops/rate-limit.ts";
import { SESSION_ROOM_PREFIX } from "../players/join.ts";
import type { NodeChangeWaiter } from "../players/node-events.ts";
import type { SessionStore } from "../../model/sessions/session-store.ts";
import type { RelayHub } from "./hub.ts";
import { placeOrWait } from "./place-or-wait.ts";
import { decodeRanking } from "../../model/placement/region-choice.ts";
import { isHeaderSafeId, newRelayState, type RelayState } from "./relay.ts";
import { parseRoomCode, ROOM_CODE_RULE } from "../../core/names.ts";

/** The token of a WebSocket request: `Sec-WebSocket-Protocol: bearer, <jwt>` or `?token=`. */
export function wsToken(request: Request, query: URLSearchParams): { token: string | undefined; viaProtocol: boolean } {
  const proto = request.headers.get("sec-websocket-protocol");
  if (proto) {
    const parts = proto.split(",").map((s) => s.trim());
    const i = parts.findIndex((p) => p.toLowerCase() === "bearer");
    if (i >= 0) return { token: parts[i + 1] || undefined, viaProtocol: true };
  }
  return { token: query.get("token") ?? undefined, viaProtocol: false };
}

function isUpgrade(request: Request): boolean {
  return request.headers.get("upgrade")?.toLowerCase() === "websocket";
}

/** Elysia types `server` for any socket data; this route's upgrades always carry a RelayState. */
type BunServer = Server<RelayState>;

export function connectRoute(deps: GatewayDeps, hub: RelayHub, sessions: Pick<SessionStore, "playerHoldsRoom">, waiter: NodeChangeWaiter) {
  const ipLimiter = new FixedWindowLimiter(deps.config.wsIpRateLimit, deps.clock);

  return new Elysia({ name: "connectRoute" }).get(
    "/v1/connect",
    async ({ request, server, set }) => {
      const srv = server as BunServer | null;
      const url = new URL(request.url);
      const query = url.searchParams;
      const { token, viaProtocol } = wsToken(request, query);
      const headers: Record<string, string> = viaProtocol ? { "Sec-WebSocket-Protocol": "bearer" } : {};

      const refuse = (code: number, reason: string, status: number, errCode: string): unknown => {
        if (srv && isUpgrade(request)) {
          const data = newRelayState(hub, { roomCode: "", playerId: "", playerName: "", reject: { code, reason } });
          if (srv.upgrade(request, { data, headers })) return undefined;
        }
        set.status = status;
        return new AppError(status, errCode, reason).toBody();
      };

      const ip = clientAddress(request, srv?.requestIP(request)?.address, deps.config.trustProxy);
      if (!ipLimiter.hit(ip)) return refuse(CloseCode.RATE_LIMITED, "too many connection attempts", 429, "RATE_LIMITED");

      const roomCode = parseRoomCode(query.get("room"));
      if (!roomCode) return refuse(CloseCode.UNKNOWN_ROOM, `invalid room code: ${ROOM_CODE_RULE}`, 400, "INVALID_ROOM_CODE");

      const claims = await deps.auth.verify(token);
      if (!claims) return refuse(CloseCode.BAD_TOKEN, token ? "token invalid or expired" : "token missing", 401, token ? "TOKEN_INVALID" : "TOKEN_MISSING");
      // The player id travels to the node as a header (X-Player-Id): refuse ids that cannot.
      if (!isHeaderSafeId(claims.sub)) return refuse(CloseCode.BAD_TOKEN, "token subject is not a usable player id", 401, "TOKEN_INVALID");

      if (!isUpgrade(request) || !srv) {
        set.status = 426;
        return new AppError(426, "UPGRADE_REQUIRED", "this endpoint speaks WebSocket").toBody();
      }

      let node;
      let tracked = false;
      let roomSeats = 0;
      try {
        const now = deps.clock.now();
        if (roomCode.startsWith(SESSION_ROOM_PREFIX) && !(await sessions.playerHoldsRoom(claims.sub, roomCode, now))) {
          return refuse(CloseCode.NOT_SEATED, "this room belongs to another player's session (or the session expired)", 403, "NOT_SEATED");
        }
        const seat = await deps.seats.checkSeat(roomCode, claims.sub, query.get("seat") ?? undefined, now);
        if (!seat.ok) return refuse(seat.close, seat.reason, 403, "NOT_SEATED");
        // Presence (the seat reaper) only for seats in rooms with a record; session rooms have their own heartbeats.
        tracked = seat.seated === true && !roomCode.startsWith(SESSION_ROOM_PREFIX);
        roomSeats = seat.roomSeats ?? 0;
        node = await placeOrWait(deps, waiter, roomCode, claims.region || undefined, seat.roomSeats, decodeRanking(seat.regions));
      } catch (err) {
        // Redis or the scheduler failing: a retryable close the client can read, not an HTTP 500.
        deps.log.warn("connect lookup failed", { roomCode, err });
        return refuse(CloseCode.UPSTREAM_ERROR, "room lookup failed; retry", 503, "UPSTREAM_ERROR");
      }
      if (!node) return refuse(CloseCode.NO_CAPACITY, "no game server available in time; retry with backoff", 503, "NO_CAPACITY");

      const data = newRelayState(hub, {
        roomCode,
        playerId: claims.sub,
        playerName: claims.name,
        tracked,
        target: { nodeId: node.id, host: node.host, port: node.port, token: node.token },
        // Session resume: what placing the room again takes, and whether the client reads notices.
        seats: roomSeats,
        region: claims.region || undefined,
        notices: query.get("notices") === "1",
      });
      if (srv.upgrade(request, { data, headers })) return undefined;
      set.status = 400;
      return new AppError(400, "UPGRADE_FAILED", "WebSocket upgrade failed").toBody();
    },
    { detail: { summary: "WebSocket relay to the room's game server", tags: ["websocket"] } },
  );
}
