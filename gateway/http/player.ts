/** The caller of a player-facing route, with a player id that is safe in Redis keys. */
import { forbidden } from "../../core/errors.ts";
import { PLAYER_ID_RE } from "../../core/names.ts";
import { requireClaims, type Authenticator, type Claims } from "../contracts.ts";

/**
 * The caller's verified claims (401 otherwise), with a player id that is safe in Redis keys — a
 * token whose `sub` is not (e.g. from an outside issuer) gets 403, never a 500 from key building.
 */
export async function requirePlayer(auth: Authenticator, request: Request): Promise<Claims> {
  const claims = await requireClaims(auth, request);
  if (!PLAYER_ID_RE.test(claims.sub)) throw forbidden("INVALID_PLAYER_ID", "the token's subject is not a usable player id");
  return claims;
}
