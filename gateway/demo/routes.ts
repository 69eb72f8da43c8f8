/**
 * The playable demo page (issue 13), development only: `GET /demo` is one HTML page that uses the
 * client SDK's browser build (`GET /demo/sdk.js`, built in memory from sdk/client/ on first use —
 * the same bundle as the package's dist/index.js) to sign in as a guest, browse and create lobbies,
 * join one, chat in the room (the reference node relays each message to the room's other players)
 * and find a match. Off when `DEMO=false` or `NODE_ENV=production` (config `demo`): then the
 * routes are not mounted and /demo is a 404 like any unknown path.
 */
import { Elysia } from "elysia";
import { bundleBrowser } from "../../sdk/client/build.ts";
import type { GatewayDeps } from "../deps.ts";
import demoPage from "./demo.html" with { type: "text" };

/** Bun's types read an `.html` import as an HTML bundle; `with { type: "text" }` makes it the file's text. */
const DEMO_HTML = demoPage as unknown as string;

export function demoRoutes(deps: Pick<GatewayDeps, "config" | "log">) {
  const app = new Elysia({ name: "demoRoutes" });
  if (!deps.config.demo) return app;
  let sdk: Promise<string> | undefined;
  const log = deps.log.child("demo");
  return app
    .get("/demo", () => new Response(DEMO_HTML, { headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" } }))
    .get("/demo/sdk.js", async () => {
      sdk ??= bundleBrowser().catch((err: unknown) => {
        sdk = undefined; // let the next request try again
        log.error("demo: SDK bundle failed", { err });
        throw err;
      });
      return new Response(await sdk, { headers: { "content-type": "text/javascript; charset=utf-8", "cache-control": "no-store" } });
    });
}
