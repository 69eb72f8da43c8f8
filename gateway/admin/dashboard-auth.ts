/**
 * Admin auth for the browser pages (/admin, /admin/queues). A browser cannot set an
 * `Authorization` header on a navigation, so besides `Authorization: Bearer <jwt>` these pages
 * accept the admin token as `?token=<jwt>` once: the answer is a redirect to the same URL without
 * it (so the token does not stay in the address bar or history) that sets an HttpOnly,
 * SameSite=Strict cookie scoped to /admin. Later page loads, the SSE stream and the board's own
 * API calls carry that cookie. Every way in is checked the same: 401 without a valid token, 403
 * for a token without the admin role (gateway/contracts.ts requireAdmin).
 */
import type { Claims, Authenticator } from "../contracts.ts";
import { requireAdmin } from "../contracts.ts";

export const ADMIN_COOKIE = "fleetgate_admin";
export const TOKEN_PARAM = "token";

/** Where the request's admin token came from. */
export type TokenSource = "header" | "query" | "cookie" | "none";

export function cookieValue(request: Request, name: string): string | undefined {
  const header = request.headers.get("cookie");
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const i = part.indexOf("=");
    if (i < 0) continue;
    if (part.slice(0, i).trim() === name) {
      const v = part.slice(i + 1).trim();
      try {
        return decodeURIComponent(v);
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/** The admin token of a request and its source: header first, then `?token=`, then the cookie. */
export function adminToken(request: Request): { token: string | undefined; source: TokenSource } {
  const auth = request.headers.get("authorization");
  if (auth) return { token: /^Bearer\s+(\S+)$/i.exec(auth.trim())?.[1] ?? "", source: "header" };
  const q = new URL(request.url).searchParams.get(TOKEN_PARAM);
  if (q) return { token: q, source: "query" };
  const c = cookieValue(request, ADMIN_COOKIE);
  if (c) return { token: c, source: "cookie" };
  return { token: undefined, source: "none" };
}

/**
 * The admin's claims, or throws the contract's 401/403 AppError. The token, wherever it came
 * from, goes through `requireAdmin` as a bearer header, so these pages and the JSON admin API can
 * never disagree on who is an admin.
 */
export async function requireAdminPage(auth: Authenticator, request: Request): Promise<{ claims: Claims; token: string; source: TokenSource }> {
  const { token, source } = adminToken(request);
  const headers = new Headers();
  // A `?token=` or cookie with a control character cannot be a JWT, and Headers would throw on it
  // (a 500, found by the chaos fuzzer): it goes on as an invalid token, so a 401.
  if (token) headers.set("authorization", `Bearer ${/^[\x21-\x7e]+$/.test(token) ? token : "invalid"}`);
  const claims = await requireAdmin(auth, new Request(request.url, { headers }));
  return { claims, token: token ?? "", source };
}

/** The Set-Cookie value for a token that expires at `exp` (seconds since the epoch). */
export function adminCookie(token: string, exp: number, nowMs: number, secure: boolean): string {
  const maxAge = Math.max(0, Math.floor(exp - nowMs / 1000));
  return `${ADMIN_COOKIE}=${encodeURIComponent(token)}; Path=/admin; Max-Age=${maxAge}; HttpOnly; SameSite=Strict${secure ? "; Secure" : ""}`;
}

/** The request's URL without the `?token=` parameter (path + remaining query). */
export function withoutToken(request: Request): string {
  const url = new URL(request.url);
  url.searchParams.delete(TOKEN_PARAM);
  return url.pathname + (url.search === "?" ? "" : url.search);
}

/** Whether the client reached us over HTTPS (directly or through the TLS edge). */
export function isHttps(request: Request): boolean {
  return new URL(request.url).protocol === "https:" || request.headers.get("x-forwarded-proto") === "https";
}
