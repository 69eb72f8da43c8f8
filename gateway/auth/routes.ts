/**
 * `POST /v1/auth/guest` and `POST /v1/auth/refresh` (CONTRACT "Auth"). Admin tokens never come
 * from here: only `npm run token -- --admin` (scripts/token.ts) makes them.
 */
import { Elysia, t } from "elysia";
import { randomBytes } from "node:crypto";
import { notFound, unauthorized } from "../../core/errors.ts";
import type { GatewayDeps } from "../deps.ts";
import { RefreshTokenStore } from "./refresh-tokens.ts";

const REGION_PATTERN = "^[A-Za-z0-9_-]{1,32}$";

/** A display name as shown to other players: control characters removed, trimmed, at most 32. */
export function cleanDisplayName(name: string | undefined, fallback: string): string {
  // eslint-disable-next-line no-control-regex
  const cleaned = (name ?? "").replace(/[\u0000-\u001f\u007f]/g, "").trim().slice(0, 32);
  return cleaned || fallback;
}

export function newPlayerId(): string {
  return `p_${randomBytes(9).toString("base64url")}`;
}

export function authRoutes(deps: Pick<GatewayDeps, "config" | "redis" | "keys" | "signer" | "clock">) {
  const refresh = new RefreshTokenStore(deps.redis, deps.keys, deps.config.refreshTtlMs);
  return new Elysia({ name: "authRoutes" })
    .post(
      "/v1/auth/guest",
      async ({ body, set }) => {
        if (!deps.config.authGuest) throw notFound("GUEST_AUTH_DISABLED", "guest sign-in is disabled (AUTH_GUEST=false)");
        const playerId = newPlayerId();
        const identity = {
          sub: playerId,
          name: cleanDisplayName(body?.displayName, `guest-${playerId.slice(2, 8)}`),
          region: body?.region ?? deps.config.region,
          roles: ["player" as const],
        };
        const { token, expiresAt } = await deps.signer.sign(identity, deps.clock.now());
        const refreshToken = await refresh.create(identity);
        set.status = 201;
        return { token, refreshToken, playerId, expiresAt };
      },
      {
        body: t.Optional(
          t.Object(
            {
              displayName: t.Optional(t.String({ maxLength: 64 })),
              region: t.Optional(t.String({ pattern: REGION_PATTERN })),
            },
            { additionalProperties: false },
          ),
        ),
        detail: { summary: "Guest sign-in", tags: ["auth"] },
      },
    )
    .post(
      "/v1/auth/refresh",
      async ({ body }) => {
        const identity = await refresh.consume(body.refreshToken);
        if (!identity) throw unauthorized("REFRESH_TOKEN_INVALID", "refresh token is unknown, expired or already used");
        const { token, expiresAt } = await deps.signer.sign(identity, deps.clock.now());
        const refreshToken = await refresh.create(identity);
        return { token, refreshToken, expiresAt };
      },
      {
        body: t.Object({ refreshToken: t.String({ maxLength: 256 }) }, { additionalProperties: false }),
        detail: { summary: "Exchange a refresh token (single use)", tags: ["auth"] },
      },
    );
}
