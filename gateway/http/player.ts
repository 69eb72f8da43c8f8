/**
 * HTTP helpers shared by the rooms and matchmaking routes: body validation that answers in the
 * CONTRACT error shape (400, never Elysia's own 422 body), and the error renderer both plugins
 * install locally so they behave the same mounted in gateway/app.ts or alone in a test.
 */
import { AppError, badRequest, errorBody, forbidden, tooLarge } from "../../core/errors.ts";
import { requireClaims, type Authenticator, type Claims } from "../contracts.ts";

/** Player ids as key-safe ids (core/keys.ts). */
export const PLAYER_ID_RE = /^[A-Za-z0-9_.:-]{1,128}$/;
/** Modes and regions: short key-safe names ("|" separates them in the lobby index, so it is excluded). */
export const NAME_RE = /^[A-Za-z0-9_.-]{1,32}$/;
/** Largest JSON body any rooms/matchmaking route accepts. */
export const MAX_BODY_BYTES = 32 * 1024;

/**
 * The caller's verified claims (401 otherwise), with a player id that is safe in Redis keys — a
 * token whose `sub` is not (e.g. from an outside issuer) gets 403, never a 500 from key building.
 */
export async function requirePlayer(auth: Authenticator, request: Request): Promise<Claims> {
  const claims = await requireClaims(auth, request);
  if (!PLAYER_ID_RE.test(claims.sub)) throw forbidden("INVALID_PLAYER_ID", "the token's subject is not a usable player id");
  return claims;
}

/** A JSON error response for anything thrown in a route (AppError, Elysia's parse errors). */
export function errorResponse(code: unknown, error: unknown): Response {
  let err: unknown = error;
  if (!(error instanceof AppError)) {
    if (code === "PARSE") err = badRequest("BAD_JSON", "request body is not valid JSON");
    else if (code === "VALIDATION") err = badRequest("VALIDATION", "request is not valid");
    else if (code === "NOT_FOUND") err = new AppError(404, "NOT_FOUND", "no such route");
  }
  const { status, body } = errorBody(err);
  return Response.json(body, { status });
}

/** The body as a plain object; 400 when it is anything else, 413 when too large. */
export function bodyObject(request: Request, body: unknown, optional = false): Record<string, unknown> {
  const len = Number(request.headers.get("content-length") ?? 0);
  if (len > MAX_BODY_BYTES) throw tooLarge("BODY_TOO_LARGE", `request body over ${MAX_BODY_BYTES} bytes`);
  if ((body === undefined || body === null || body === "") && optional) return {};
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw badRequest("VALIDATION", "request body must be a JSON object");
  return body as Record<string, unknown>;
}

export function optString(o: Record<string, unknown>, key: string, re: RegExp, what: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string" || !re.test(v)) throw badRequest("VALIDATION", `${key} must be ${what}`, { field: key });
  return v;
}

export function reqString(o: Record<string, unknown>, key: string, re: RegExp, what: string): string {
  const v = optString(o, key, re, what);
  if (v === undefined) throw badRequest("VALIDATION", `${key} is required (${what})`, { field: key });
  return v;
}

export function optInt(o: Record<string, unknown>, key: string, min: number, max: number): number | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) throw badRequest("VALIDATION", `${key} must be a whole number in ${min}..${max}`, { field: key });
  return v;
}

export function optNumber(o: Record<string, unknown>, key: string, min: number, max: number): number | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max) throw badRequest("VALIDATION", `${key} must be a number in ${min}..${max}`, { field: key });
  return v;
}

export function optObject(o: Record<string, unknown>, key: string, maxJsonBytes: number): Record<string, unknown> | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "object" || Array.isArray(v)) throw badRequest("VALIDATION", `${key} must be a JSON object`, { field: key });
  if (JSON.stringify(v).length > maxJsonBytes) throw badRequest("VALIDATION", `${key} is over ${maxJsonBytes} bytes`, { field: key });
  return v as Record<string, unknown>;
}

/** `ws://127.0.0.1:PORT/v1/connect?room=CODE&seat=TOKEN` from PUBLIC_URL (or the gateway's own port). */
export function connectUrl(config: { publicUrl: string | undefined; port: number }, roomCode: string, seatToken: string): string {
  const base = (config.publicUrl ?? `ws://127.0.0.1:${config.port}`).replace(/\/+$/, "");
  return `${base}/v1/connect?room=${encodeURIComponent(roomCode)}&seat=${encodeURIComponent(seatToken)}`;
}
