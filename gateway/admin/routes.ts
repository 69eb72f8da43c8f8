/**
 * The operator pages on the gateway, admin only (issue 5):
 *
 * - `/admin` — the capacity dashboard: one self-contained HTML page (dashboard.html) that follows
 *   `/admin/events` (server-sent events); `/admin/data` is the same snapshot as JSON.
 * - `/admin/queues` — the BullMQ board (@bull-board) listing every scheduler queue.
 * - `/admin/history` — the charts' history (model/dashboard-history.ts), written by every gateway's
 *   HistorySampler; `/admin/nodes/:id` — one node with its CPU / memory and log tail;
 *   `/admin/assets/uplot.{js,css}` — the charting library, embedded from node_modules (no CDN).
 * - `/admin/api/…` — the page's admin actions (drain, scale, rollouts): the fleet admin API
 *   (`/v1/admin/…`, fleet-routes.ts) called with the admin cookie's token. Only same-origin
 *   scripts can call it: the cookie is SameSite=Strict and a custom header is required.
 *
 * Auth (see dashboard-auth.ts): `Authorization: Bearer <admin jwt>`, or, for a browser,
 * `?token=<admin jwt>` once — answered with a redirect that drops it from the URL and sets an
 * HttpOnly cookie scoped to /admin. 401 without a valid token, 403 for a non-admin one.
 */
import { createBullBoard } from "@bull-board/api";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { ElysiaAdapter } from "@bull-board/elysia";
import { Elysia } from "elysia";
import type { GatewayDeps } from "../deps.ts";
import { adminCookie, isHttps, requireAdminPage, withoutToken } from "./dashboard-auth.ts";
import { dashboardSnapshot, nodeDetail } from "./dashboard-data.ts";
import { DashboardStream } from "./dashboard-stream.ts";
import dashboardPage from "./dashboard.html" with { type: "text" };
import uplotJs from "uplot/dist/uPlot.iife.min.js" with { type: "text" };
import uplotCss from "uplot/dist/uPlot.min.css" with { type: "text" };
import { fleetAdminRoutes } from "./fleet-routes.ts";
import { HistorySampler } from "./history-sampler.ts";

export const BOARD_PATH = "/admin/queues";

/** Bun's types read an `.html` import as an HTML bundle; `with { type: "text" }` makes it the file's text. */
const DASHBOARD_HTML = dashboardPage as unknown as string;

type BoardPlugin = Awaited<ReturnType<ElysiaAdapter["registerPlugin"]>>;

/**
 * The board's Elysia plugin, built on first use: registering it reads bull-board's static files
 * from disk, which `createApp` must not do at construction time.
 */
function lazyBoard(deps: GatewayDeps): () => Promise<BoardPlugin> {
  let plugin: Promise<BoardPlugin> | undefined;
  return () => {
    plugin ??= (async () => {
      const adapter = new ElysiaAdapter(BOARD_PATH);
      createBullBoard({
        queues: deps.queues.all().map((q) => new BullMQAdapter(q)),
        serverAdapter: adapter,
        options: { uiConfig: { boardTitle: "fleetgate jobs" } },
      });
      return adapter.registerPlugin();
    })();
    // A failed build (unlikely: missing files) is retried on the next request.
    plugin.catch(() => (plugin = undefined));
    return plugin;
  };
}

/** The header the page's admin actions carry (a cross-site form cannot set one). */
export const ACTION_HEADER = "x-fleetgate-dashboard";
/** The fleet admin API paths the page may call through /admin/api (method, path pattern). */
const API_ALLOWED: ReadonlyArray<[string, RegExp]> = [
  ["GET", /^\/v1\/admin\/fleet$/],
  ["GET", /^\/v1\/admin\/fleet\/rollouts(\/[A-Za-z0-9_.-]+)?$/],
  ["POST", /^\/v1\/admin\/fleet\/rollouts$/],
  ["POST", /^\/v1\/admin\/fleet\/rollouts\/[A-Za-z0-9_.-]+\/(cancel|promote)$/],
  ["POST", /^\/v1\/admin\/scale$/],
  ["POST", /^\/v1\/admin\/nodes\/[A-Za-z0-9_.-]+\/(drain|restart)$/],
];
const NODE_ID_RE = /^[A-Za-z0-9_.-]{1,64}$/;
const asset = (body: string, type: string) => () => new Response(body, { headers: { "content-type": type, "cache-control": "public, max-age=3600", "x-content-type-options": "nosniff" } });

export function adminRoutes(deps: GatewayDeps) {
  const board = lazyBoard(deps);
  const stream = new DashboardStream({ ...deps, intervalMs: deps.config.adminEventsIntervalMs, gatewayId: deps.gatewayId });
  const sampler = new HistorySampler(deps);
  // The fleet admin API as a private instance: the page's actions go through it in-process.
  let api: ReturnType<typeof fleetAdminRoutes> | undefined;

  /**
   * Checks the admin token; for a `?token=` page load answers with the cookie-setting redirect.
   * Returns a Response to send instead of the page, or undefined to go on.
   */
  async function gate(request: Request, page: boolean): Promise<Response | undefined> {
    const { claims, token, source } = await requireAdminPage(deps.auth, request);
    if (source !== "query") return undefined;
    const cookie = adminCookie(token, claims.exp, deps.clock.now(), isHttps(request));
    if (page && request.method === "GET") return new Response(null, { status: 303, headers: { location: withoutToken(request), "set-cookie": cookie, "cache-control": "no-store" } });
    return undefined;
  }

  const boardHandler = async ({ request }: { request: Request }): Promise<Response> => {
    const early = await gate(request, true);
    if (early) return early;
    const res = await (await board()).handle(request);
    // bull-board answers a path or method it does not serve with 500 {"message":"NOT_FOUND"} (found
    // by the chaos fuzzer): a 404 in the contract's shape instead, never a 500 for bad input.
    if (res.status >= 500 && (await res.clone().text()).includes("NOT_FOUND")) {
      return Response.json({ error: { code: "NOT_FOUND", message: "no such page of the job board" } }, { status: 404 });
    }
    return res;
  };

  return new Elysia({ name: "adminRoutes" })
    .onStart(() => sampler.start())
    .onStop(async () => {
      await Promise.all([stream.close(), sampler.stop()]);
    })
    .get("/admin", async ({ request }) => {
      const early = await gate(request, true);
      if (early) return early;
      return new Response(DASHBOARD_HTML, {
        headers: {
          "content-type": "text/html; charset=utf-8",
          "cache-control": "no-store",
          // The page loads nothing from anywhere else; its one inline script and style are its own.
          "content-security-policy": "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
          "x-content-type-options": "nosniff",
          "referrer-policy": "no-referrer",
        },
      });
    })
    .get("/admin/data", async ({ request }) => {
      await gate(request, false);
      return Response.json(await dashboardSnapshot(deps, deps.clock.now()), { headers: { "cache-control": "no-store" } });
    })
    .get("/admin/events", async ({ request }) => {
      await gate(request, false);
      return stream.open(request.signal);
    })
    .get("/admin/history", async ({ request }) => {
      await gate(request, false);
      return Response.json(await sampler.store.read(), { headers: { "cache-control": "no-store" } });
    })
    .get("/admin/nodes/:id", async ({ request, params }) => {
      await gate(request, false);
      const detail = NODE_ID_RE.test(params.id) ? await nodeDetail(deps, params.id) : undefined;
      if (!detail) return Response.json({ error: { code: "NODE_NOT_FOUND", message: `no node ${params.id.slice(0, 64)}` } }, { status: 404 });
      return Response.json(detail, { headers: { "cache-control": "no-store" } });
    })
    .get("/admin/assets/uplot.js", asset(uplotJs, "text/javascript; charset=utf-8"))
    .get("/admin/assets/uplot.css", asset(uplotCss, "text/css; charset=utf-8"))
    .all("/admin/api/*", async ({ request }) => {
      const { token } = await requireAdminPage(deps.auth, request);
      if (request.headers.get(ACTION_HEADER) !== "1") return Response.json({ error: { code: "FORBIDDEN", message: `admin actions need the ${ACTION_HEADER} header` } }, { status: 403 });
      const url = new URL(request.url);
      const path = url.pathname.slice("/admin/api".length);
      if (!API_ALLOWED.some(([m, re]) => m === request.method && re.test(path))) return Response.json({ error: { code: "NOT_FOUND", message: "not an admin action" } }, { status: 404 });
      api ??= fleetAdminRoutes(deps);
      const headers = new Headers({ authorization: `Bearer ${token}` });
      const type = request.headers.get("content-type");
      if (type) headers.set("content-type", type);
      const body = request.method === "GET" ? undefined : await request.text();
      return api.handle(new Request(`http://admin.internal${path}${url.search}`, { method: request.method, headers, ...(body !== undefined ? { body } : {}) }));
    })
    .all(BOARD_PATH, boardHandler)
    .all(`${BOARD_PATH}/*`, boardHandler);
}
