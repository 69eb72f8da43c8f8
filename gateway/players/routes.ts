/** `POST /v1/players/join|heartbeat|leave` (CONTRACT "Player sessions"). */
import { Elysia, t } from "elysia";
import { notFound } from "../../core/errors.ts";
import { requireClaims } from "../contracts.ts";
import type { GatewayDeps } from "../deps.ts";
import type { JoinService } from "./join.ts";
import type { RegionRanker } from "../ops/regions.ts";
import type { SessionStore } from "../../model/sessions/session-store.ts";
import { connectUrl } from "../http/connect-url.ts";
import { strictJson } from "../http/body.ts";
import { Latencies, Name } from "../http/schemas.ts";


export function playersRoutes(deps: GatewayDeps, svc: { join: JoinService; sessions: SessionStore; regions: RegionRanker }) {
  const sessionNotFound = () => notFound("SESSION_NOT_FOUND", "session not found or expired");
  return new Elysia({ name: "playersRoutes" })
    .post(
      "/v1/players/join",
      async ({ body, request, set }) => {
        const claims = await requireClaims(deps.auth, request);
        const req = body;
        const ranking = await svc.regions.rank({ requested: req.region, claim: claims.region, latencies: req.latencies });
        const s = await svc.join.join({ playerId: claims.sub, region: ranking.best, mode: req.mode ?? "default", ranking });
        set.status = 201;
        return {
          sessionId: s.sessionId,
          playerId: s.playerId,
          roomCode: s.roomCode,
          nodeId: s.nodeId,
          connectUrl: connectUrl(deps.config.publicUrl, request, s.roomCode),
          heartbeatIntervalMs: deps.config.heartbeatIntervalMs,
        };
      },
      {
        // Strict: empty, or a JSON object of exactly these fields (Elysia alone lets null, arrays and
        // numbers through an optional body) — refused before the join could wait for capacity.
        parse: strictJson({ optional: true, fields: ["region", "mode", "latencies"] }),
        body: t.Object({ region: t.Optional(Name), mode: t.Optional(Name), latencies: t.Optional(Latencies) }),
        detail: { summary: "Join: a game server seat of the player's own", tags: ["players"] },
      },
    )
    .post(
      "/v1/players/heartbeat",
      async ({ body, request, set }) => {
        const claims = await requireClaims(deps.auth, request);
        const now = deps.clock.now();
        const s = await svc.sessions.get(body.sessionId, now);
        if (!s || s.playerId !== claims.sub) throw sessionNotFound();
        if (!(await svc.sessions.beat(s.sessionId, now))) throw sessionNotFound();
        // The room may have been placed again since the join (its first node died): keep the
        // node that serves it now alive.
        const current = (await deps.redis.get(deps.keys.roomNode(s.roomCode))) ?? s.nodeId;
        await deps.nodes.touchActivity(current, now);
        set.status = 204;
        return undefined;
      },
      { body: t.Object({ sessionId: t.String({ maxLength: 128 }) }, { additionalProperties: false }), detail: { summary: "Keep a session alive", tags: ["players"] } },
    )
    .post(
      "/v1/players/leave",
      async ({ body, request, set }) => {
        const claims = await requireClaims(deps.auth, request);
        const s = await svc.sessions.get(body.sessionId, Number.MIN_SAFE_INTEGER);
        if (s && s.playerId !== claims.sub) throw sessionNotFound();
        if (s) await svc.sessions.release(s.sessionId);
        set.status = 204;
        return undefined;
      },
      { body: t.Object({ sessionId: t.String({ maxLength: 128 }) }, { additionalProperties: false }), detail: { summary: "Leave: free the seat now", tags: ["players"] } },
    );
}
