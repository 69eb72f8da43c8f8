/**
 * The seams between the gateway's features, so each can be built and tested alone:
 * auth (gateway/auth), placement (gateway/placement), seats (gateway/rooms), the relay (gateway/ws).
 */
import { unauthorized, forbidden, type AppError } from "../core/errors.ts";

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

export type { Placement, SeatDecision, SeatChecker, RoomPresence } from "../model/contracts.ts";

export type { AppError };
