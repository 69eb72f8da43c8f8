/**
 * Matchmaking tickets (issue 6; CONTRACT "Rooms and lobbies"). Mounted by gateway/app.ts; the
 * matching itself runs in the scheduler (scheduler/matchmaker).
 *
 * - `POST /v1/matchmaking/tickets {mode, region?, rating?}` → 201 {ticketId}. One live ticket per
 *   player (409 ALREADY_QUEUED with `details.ticketId`). `region` defaults to the token's region.
 *   `rating` (optional, 0..100000) balances teams; a deployment with a rating service should set
 *   it from there rather than trust the client.
 * - `GET /v1/matchmaking/tickets/:id` → {ticketId, status, mode, region, roomCode?, team?,
 *   seatToken?, connectUrl?}; only the owner (404 for anyone else, so ticket ids are not probed).
 *   A matched ticket whose seat token has expired gets a fresh one while the player is still seated.
 * - `DELETE /v1/matchmaking/tickets/:id` → 200 {ticketId, status: "cancelled"}; 403 for another
 *   player's ticket, 409 TICKET_NOT_QUEUED once matched/expired/cancelled.
 */
import { Elysia, t } from "elysia";
import { badRequest } from "../../core/errors.ts";
import { RoomStore } from "../../model/rooms/room-store.ts";
import { TicketStore } from "../../model/tickets/ticket-store.ts";
import type { GatewayDeps } from "../deps.ts";
import { requirePlayer } from "../http/player.ts";
import { connectUrl } from "../http/connect-url.ts";
import { renderError } from "../http/errors.ts";
import { strictJson } from "../http/body.ts";
import { Latencies, Name } from "../http/schemas.ts";
import { RegionRanker } from "../ops/regions.ts";
import { NAME_RE } from "../../core/names.ts";

export type MatchmakingDeps = Pick<GatewayDeps, "redis" | "keys" | "clock" | "config" | "auth">;

const TICKET_ID_RE = /^[A-Za-z0-9_-]{16,64}$/;

export function matchmakingRoutes(deps: MatchmakingDeps, regions: RegionRanker = new RegionRanker(deps)) {
  const tickets = new TicketStore(deps);
  const rooms = new RoomStore(deps);
  const ticketId = (params: Record<string, string>) => {
    const id = params.id ?? "";
    if (!TICKET_ID_RE.test(id)) throw badRequest("INVALID_TICKET_ID", "ticket id is malformed");
    return id;
  };

  return new Elysia({ name: "matchmakingRoutes" })
    .onError(({ code, error }) => renderError(code, error))
    .post(
      "/v1/matchmaking/tickets",
      async ({ request, body, set }) => {
        const claims = await requirePlayer(deps.auth, request);
        // With measured latencies: queued in the best region, accepting the fallbacks within MAX_REGION_RTT
        // after REGION_FALLBACK_WAIT. Without: the named (or the token's) region, any region after the wait.
        const ranking = body.latencies ? await regions.rank({ requested: body.region, claim: claims.region, latencies: body.latencies }) : undefined;
        const region = ranking?.best ?? body.region ?? (NAME_RE.test(claims.region) ? claims.region : deps.config.region);
        const id = await tickets.create({ playerId: claims.sub, mode: body.mode, region, rating: body.rating, fallbacks: ranking?.fallbacks }, deps.clock.now());
        set.status = 201;
        return { ticketId: id, status: "queued" };
      },
      {
        parse: strictJson(),
        body: t.Object({ mode: Name, region: t.Optional(Name), latencies: t.Optional(Latencies), rating: t.Optional(t.Number({ minimum: 0, maximum: 100_000, description: "balances teams" })) }),
        detail: { summary: "Queue for a match", tags: ["matchmaking"] },
      },
    )
    .get("/v1/matchmaking/tickets/:id", async ({ request, params }) => {
      const claims = await requirePlayer(deps.auth, request);
      const now = deps.clock.now();
      const t = await tickets.getOwned(ticketId(params), claims.sub);
      const status = tickets.effectiveStatus(t, now);
      const base = { ticketId: t.id, status, mode: t.mode, region: t.region };
      if (status !== "matched" || !t.roomCode) return base;
      let seatToken = t.seatToken;
      if (!(await rooms.readSeatToken(seatToken, now))) {
        // The match's token expired before the client read it: re-issue while the seat is held.
        const s = await rooms.seatState(t.roomCode, t.playerId);
        seatToken = s.seated && !s.banned && s.state !== "completed" ? await rooms.issueSeatToken(t.roomCode, t.playerId, now) : undefined;
      }
      return {
        ...base,
        roomCode: t.roomCode,
        team: t.team,
        ...(seatToken ? { seatToken, connectUrl: connectUrl(deps.config.publicUrl, request, t.roomCode, seatToken) } : {}),
      };
    })
    .delete("/v1/matchmaking/tickets/:id", async ({ request, params }) => {
      const claims = await requirePlayer(deps.auth, request);
      const id = ticketId(params);
      await tickets.cancel(id, claims.sub, deps.clock.now());
      return { ticketId: id, status: "cancelled" };
    });
}
