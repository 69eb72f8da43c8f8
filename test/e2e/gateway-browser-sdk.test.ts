/**
 * The client SDK in a real headless Chromium (playwright-core, /usr/bin/chromium): bundled for the
 * browser with no Bun or Node APIs, it signs in, opens the relay with the `bearer` subprotocol
 * (a browser fails the handshake unless the gateway answers it) and echoes text and binary; a bad
 * token is seen by the browser as close code 4001 (the gateway upgrades, then closes).
 * The page's origin proxies /v1/* to the gateway, so no CORS is involved; WebSockets go straight
 * to the gateway.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Server } from "bun";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { bundleBrowser } from "../../sdk/client/build.ts";
import { startTestGateway, startTestNode, type TestGateway, type TestNode } from "../support/gateway-fixtures.ts";
import { IN_CI, need, testRedis, type TestRedis } from "../support/services.ts";

const CHROMIUM = "/usr/bin/chromium";
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium && IN_CI) throw new Error(`${CHROMIUM} is required under CI`);

describe.skipIf(!need("redis") || !hasChromium)("client SDK in a headless browser", () => {
  let tr: TestRedis;
  let gw: TestGateway;
  let node: TestNode;
  let site: Server<undefined>;
  let profile: string;
  let context: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    tr = testRedis("gwbrowser");
    gw = await startTestGateway(tr.prefix);
    node = await startTestNode(gw.deps, { roomMode: "echo" });
    // The package's browser build (sdk/client/build.ts), as dist/index.js ships it.
    const sdk = await bundleBrowser();
    site = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      async fetch(req) {
        const url = new URL(req.url);
        if (url.pathname === "/") return new Response("<!doctype html><title>sdk</title>", { headers: { "content-type": "text/html" } });
        if (url.pathname === "/sdk.js") return new Response(sdk, { headers: { "content-type": "text/javascript" } });
        if (url.pathname.startsWith("/v1/")) {
          const headers: Record<string, string> = {};
          for (const h of ["authorization", "content-type"]) if (req.headers.get(h)) headers[h] = req.headers.get(h)!;
          return fetch(`${gw.url}${url.pathname}${url.search}`, { method: req.method, headers, body: req.method === "GET" ? undefined : await req.text() });
        }
        return new Response("not found", { status: 404 });
      },
    });
    profile = await mkdtemp(join(tmpdir(), "fg-chromium-sdk-"));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    page = context.pages()[0] ?? (await context.newPage());
    await page.goto(`http://127.0.0.1:${site.port}/`);
  }, 30_000);

  afterAll(async () => {
    await context?.close().catch(() => {});
    if (profile) await rm(profile, { recursive: true, force: true });
    site?.stop(true);
    await gw?.stop();
    await node?.stop();
    await tr?.cleanup();
  });

  test("the bundle has no Bun or Node API in it", async () => {
    const code = await bundleBrowser();
    expect(code).not.toMatch(/\bBun\.|require\(|node:/);
  });

  test("sign in, relay text and binary through the gateway, leave the socket cleanly", async () => {
    const result = await page.evaluate(async (wsBase: string) => {
      // Loaded from the page's origin; the type is the SDK's (type-only, erased in the browser).
      const sdkPath: string = "/sdk.js";
      const { FleetgateClient } = (await import(sdkPath)) as typeof import("../../sdk/client/src/index.ts");
      const c = new FleetgateClient({ baseUrl: location.origin });
      const guest = await c.signInAsGuest({ displayName: "browser" });
      const room = c.connect(`${wsBase}/v1/connect?room=browser-room`);
      const got: string[] = [];
      const done = new Promise<void>((resolve) =>
        room.on("message", (m: string | ArrayBuffer) => {
          got.push(typeof m === "string" ? m : `bin:${Array.from(new Uint8Array(m)).join(",")}`);
          if (got.length === 2) resolve();
        }),
      );
      room.send('{"a":  1}');
      room.send(new Uint8Array([1, 2, 255]));
      await done;
      const closed = room.once("close");
      room.close();
      const close = await closed;
      c.close();
      return { playerId: guest.playerId, got, close };
    }, gw.wsUrl);
    expect(result.playerId).toMatch(/^p_/);
    expect(result.got).toEqual(['{"a":  1}', "bin:1,2,255"]);
    expect(result.close).toMatchObject({ code: 1000, willReconnect: false });
  });

  test("the browser sees 4001 for a bad token, and the bearer subprotocol for a good one", async () => {
    const token = await gw.token();
    const r = await page.evaluate(
      async ({ wsBase, token }: { wsBase: string; token: string }) => {
        const outcome = (protocols: string[]) =>
          new Promise<{ code: number; protocol: string }>((resolve) => {
            const ws = new WebSocket(`${wsBase}/v1/connect?room=browser-auth`, protocols);
            let protocol = "";
            ws.onopen = () => {
              protocol = ws.protocol;
              ws.close(1000);
            };
            ws.onclose = (ev) => resolve({ code: ev.code, protocol });
          });
        return { bad: await outcome(["bearer", "not.a.token"]), good: await outcome(["bearer", token]) };
      },
      { wsBase: gw.wsUrl, token },
    );
    expect(r.bad.code).toBe(4001);
    expect(r.good).toEqual({ code: 1000, protocol: "bearer" });
  });
});
