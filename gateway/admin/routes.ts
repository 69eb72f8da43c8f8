/**
 * The operator pages on the gateway, admin only (issue 5):
 *
 * - `/admin` — the capacity dashboard: one self-contained HTML page (dashboard.html) that follows
 *   `/admin/events` (server-sent events); `/admin/data` is the same snapshot as JSON.
 * - `/admin/queues` — the BullMQ board (@bull-board) listing every scheduler queue.
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
import { dashboardSnapshot } from "./dashboard-data.ts";
import { DashboardStream } from "./dashboard-stream.ts";
import dashboardPage from "./dashboard.html" with { type: "text" };

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

export function adminRoutes(deps: GatewayDeps) {
  const board = lazyBoard(deps);
  const stream = new DashboardStream({ ...deps, intervalMs: deps.config.adminEventsIntervalMs });

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
    return (await board()).handle(request);
  };

  return new Elysia({ name: "adminRoutes" })
    .onStop(() => stream.close())
    .get("/admin", async ({ request }) => {
      const early = await gate(request, true);
      if (early) return early;
      return new Response(DASHBOARD_HTML, {
        headers: {
          "content-type": "text/html; charset=utf-8",
          "cache-control": "no-store",
          // The page loads nothing from anywhere else; its one inline script and style are its own.
          "content-security-policy": "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
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
    .all(BOARD_PATH, boardHandler)
    .all(`${BOARD_PATH}/*`, boardHandler);
}
