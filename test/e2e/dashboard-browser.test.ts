/**
 * The capacity dashboard and the BullMQ board in a real headless Chromium (playwright-core,
 * /usr/bin/chromium, a fresh user-data dir): the page shows the live numbers and they change
 * without a reload when a node is added; the board lists the scheduler's queues and refuses a
 * browser without an admin token. Leaves a screenshot at /tmp/fleetgate-dashboard.png.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import type { TemplaterEvent } from "../../model/templater-events.ts";
import { makeNode } from "../support/nodes.ts";
import { startTestGateway, type TestGateway } from "../support/gateway-fixtures.ts";
import { IN_CI, need, testRedis, type TestRedis } from "../support/services.ts";

const CHROMIUM = "/usr/bin/chromium";
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium && IN_CI) throw new Error(`${CHROMIUM} is required under CI`);
export const SCREENSHOT = "/tmp/fleetgate-dashboard.png";

describe.skipIf(!need("redis") || !hasChromium)("dashboard in a headless browser", () => {
  let t: TestRedis;
  let gw: TestGateway;
  let admin: string;
  let profile: string;
  let context: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    t = testRedis("dashb");
    gw = await startTestGateway(t.prefix, { adminEventsIntervalMs: 250 });
    admin = await gw.token("op_admin", ["admin"]);
    profile = await mkdtemp(join(tmpdir(), "fg-chromium-"));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
      viewport: { width: 1280, height: 860 },
    });
    page = context.pages()[0] ?? (await context.newPage());
  }, 30_000);

  afterAll(async () => {
    await context?.close().catch(() => {});
    if (profile) await rm(profile, { recursive: true, force: true });
    await gw?.stop();
    await t?.cleanup();
  });

  const text = (id: string) => page.locator(`[data-testid="${id}"]`).innerText();
  const waitText = (id: string, want: string) => page.waitForFunction(([sel, w]) => document.querySelector(sel!)?.textContent?.trim() === w, [`[data-testid="${id}"]`, want] as const, { timeout: 5000 });

  test("shows the live numbers, and they change without a reload when a node is added", async () => {
    await gw.deps.nodes.create(makeNode({ id: "node-alpha", capacity: 8, players: 2, rooms: 1, startedAt: Date.now(), lastSeenAt: Date.now() }), Date.now());
    await t.redis.lpush(t.keys.scaleEvents, JSON.stringify({ at: Date.now() - 60_000, action: "scale-up", count: 1, reason: "join waiting: no ready node" }));
    const reload: TemplaterEvent = { type: "templater", outcome: "ok", at: Date.now(), durationMs: 42, reasons: ["node node-alpha new→ready"], gateways: 1, nodes: 1, skipped: 0, reloads: 3, workerPid: 1234 };
    await t.redis.set(t.keys.templaterLast, JSON.stringify(reload));

    const res = await page.goto(`${gw.url}/admin?token=${admin}`);
    expect(res?.status()).toBe(200);
    expect(new URL(page.url()).search).toBe(""); // the token left the address bar
    await waitText("players", "2");
    expect(await text("capacity")).toBe("8");
    expect(await text("utilization")).toBe("25 %");
    expect(await page.locator('[data-testid="node-row"]').count()).toBe(1);
    await page.waitForFunction(() => document.querySelector('[data-testid="live"]')?.textContent === "live");
    expect(await text("scale-events")).toContain("scale-up");
    expect(await text("last-reload")).toContain("ok");
    const loadedAt = await page.evaluate(() => performance.timeOrigin);

    // A second node arrives: the page updates by itself (same document, no navigation).
    await gw.deps.nodes.create(makeNode({ id: "node-beta", capacity: 8, players: 4, rooms: 2, startedAt: Date.now(), lastSeenAt: Date.now() }), Date.now());
    await waitText("players", "6");
    expect(await text("capacity")).toBe("16");
    expect(await text("utilization")).toBe("37.5 %");
    expect(await page.locator('[data-testid="node-row"]').count()).toBe(2);
    expect(await page.locator('[data-node="node-beta"]').innerText()).toContain("ready");

    // A drain shows too, and the templater's failed reload is shown with HAProxy's words.
    await gw.deps.nodes.transition("node-alpha", "draining", Date.now());
    const failed: TemplaterEvent = { ...reload, outcome: "invalid", at: Date.now(), error: "[ALERT] config : parsing [haproxy.cfg:40] : unknown keyword 'bogus'" };
    await t.redis.set(t.keys.templaterLast, JSON.stringify(failed));
    await t.redis.publish(t.keys.templaterEventsChannel, JSON.stringify(failed));
    await page.waitForFunction(() => document.querySelector('[data-node="node-alpha"]')?.textContent?.includes("draining"), undefined, { timeout: 5000 });
    await page.waitForFunction(() => (document.querySelector('[data-testid="last-reload"]') as HTMLElement | null)?.dataset.outcome === "invalid", undefined, { timeout: 5000 });
    expect(await text("last-reload")).toContain("unknown keyword");
    // Draining capacity is not capacity (same rule as /v1/capacity).
    await waitText("capacity", "8");
    expect(await page.evaluate(() => performance.timeOrigin)).toBe(loadedAt);

    await Bun.sleep(500); // let the utilisation bar finish its transition before the picture
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
  }, 30_000);

  test("the board lists the scheduler's queues; without an admin token it is refused", async () => {
    const res = await page.goto(`${gw.url}/admin/queues`); // the cookie from the dashboard's ?token= carries over
    expect(res?.status()).toBe(200);
    for (const q of gw.deps.queues.all()) {
      await page.getByText(q.name, { exact: true }).first().waitFor({ timeout: 10_000 });
    }

    await context.clearCookies();
    const refused = await page.goto(`${gw.url}/admin/queues`);
    expect(refused?.status()).toBe(401);
    expect(await page.content()).toContain("TOKEN_MISSING");
    const player = await gw.token("p_browser", ["player"]);
    const forbidden = await page.goto(`${gw.url}/admin/queues?token=${player}`);
    expect(forbidden?.status()).toBe(403);
  }, 30_000);
});
