/** `POST /v1/players/join|heartbeat|leave` (CONTRACT "Player sessions"). */
import { Elysia, t } from "elysia";
import { badRequest, notFound } from "../../core/errors.ts";
import { requireClaims } from "../contracts.ts";
import type { GatewayDeps } from "../deps.ts";
import type { JoinService } from "./join.ts";
import { optLatencies, type RegionRanker } from "../ops/regions.ts";
import type { SessionStore } from "../../model/sessions/session-store.ts";
import { connectUrl } from "../http/connect-url.ts";

const NAME_PATTERN = "^[A-Za-z0-9_-]{1,32}$";


const NAME_RE = new RegExp(NAME_PATTERN);

/** The optional join body `{region?, mode?, latencies?}`: empty, or a JSON object of those names. */
export function parseJoinBody(text: unknown): { region?: string; mode?: string; latencies?: Record<string, number> } {
  const raw = typeof text === "string" ? text.trim() : "";
  if (raw === "") return {};
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw badRequest("BAD_JSON", "request body is not valid JSON");
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw badRequest("VALIDATION", "the body, when sent, must be a JSON object {region?, mode?}");
  const o = v as Record<string, unknown>;
  const extra = Object.keys(o).filter((k) => k !== "region" && k !== "mode" && k !== "latencies");
  if (extra.length) throw badRequest("VALIDATION", `unknown field ${JSON.stringify(extra[0])}; the body is {region?, mode?, latencies?}`, { field: extra[0] });
  const out: { region?: string; mode?: string; latencies?: Record<string, number> } = {};
  const latencies = optLatencies(o);
  if (latencies) out.latencies = latencies;
  for (const k of ["region", "mode"] as const) {
    const x = o[k];
    if (x === undefined) continue;
    if (typeof x !== "string" || !NAME_RE.test(x)) throw badRequest("VALIDATION", `${k} must be 1-32 of [A-Za-z0-9_-]`, { field: k });
    out[k] = x;
  }
  return out;
}

export function playersRoutes(deps: GatewayDeps, svc: { join: JoinService; sessions: SessionStore; regions: RegionRanker }) {
  const sessionNotFound = () => notFound("SESSION_NOT_FOUND", "session not found or expired");
  return new Elysia({ name: "playersRoutes" })
    .post(
      "/v1/players/join",
      async ({ body, request, set }) => {
        const claims = await requireClaims(deps.auth, request);
        const req = parseJoinBody(body);
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
        // Parsed here, not by a schema: Elysia lets null, arrays, numbers and unparsable text
        // through an optional body schema.
        parse: "text",
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
