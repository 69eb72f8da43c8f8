/**
 * The capacity dashboard and the BullMQ board in a real headless Chromium (playwright-core,
 * /usr/bin/chromium, a fresh user-data dir): the page shows the live numbers and they change
 * without a reload when a node is added; a freshly opened page charts the history already in
 * Redis (uPlot from node_modules) and follows new samples; a node's view shows its CPU, memory and
 * log tail; admin actions (scale, drain) run only after the confirmation; the rollout panel shows
 * "no rollout" with a start form; the board lists the scheduler's queues and refuses a browser
 * without an admin token. Leaves a screenshot at test-output/dashboard.png.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
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
export const SCREENSHOT = join(import.meta.dir, "..", "..", "test-output", "dashboard.png");

describe.skipIf(!need("redis") || !hasChromium)("dashboard in a headless browser", () => {
  let t: TestRedis;
  let gw: TestGateway;
  let admin: string;
  let profile: string;
  let context: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    t = testRedis("dashb");
    gw = await startTestGateway(t.prefix, { adminEventsIntervalMs: 250, dashboardHistoryIntervalMs: 500, dashboardHistoryPoints: 120 });
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
    await t.redis.lpush(t.keys.scaleEvents, JSON.stringify({ at: Date.now() - 60_000, action: "up", count: 1, reason: "join waiting: no ready node" }));
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
    expect(await text("scale-events")).toContain("up");
    expect(await text("scale-events")).toContain("join waiting");
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

  }, 30_000);

  test("history charts from Redis at once, a node's stats and log, confirmed admin actions, the rollout panel", async () => {
    // Three minutes of history already in the rings (as the samplers write them), then open the page.
    const now = Date.now();
    await t.redis.del(t.keys.historyFleet);
    for (let i = 36; i >= 1; i--) {
      const at = now - i * 5000;
      const players = Math.round(8 + 6 * Math.sin(i / 5));
      await t.redis.lpush(t.keys.historyFleet, JSON.stringify({ at, players, capacity: 16, nodes: { ready: 2, starting: i % 12 === 0 ? 1 : 0, draining: 0, unhealthy: 0 }, versions: { active: 2 }, rooms: 3, lobbies: 1, queue: i % 7, scaleUps: i % 12 === 0 ? 1 : 0, scaleDowns: i % 17 === 0 ? 1 : 0 }));
      await t.redis.lpush(t.keys.historyGateway("gw-seeded"), JSON.stringify({ at, gateway: "gw-seeded", seconds: 5, joins: 10 + (i % 5), joinsFailed: i % 9 === 0 ? 1 : 0, joinP99: 0.05 + (i % 4) * 0.02, frames: 4000 + i * 50, connections: players }));
    }
    await t.redis.sadd(t.keys.historyGateways, "gw-seeded");
    await t.redis.set(t.keys.nodeStats("node-beta"), JSON.stringify({ at: now, cpuPercent: 23.4, memoryBytes: 57 * 1024 * 1024, memoryLimitBytes: 256 * 1024 * 1024 }));
    await t.redis.set(t.keys.nodeLogs("node-beta"), "node node-beta listening on 127.0.0.1:9000\nroom ABCD opened\nplayer p_1 joined ABCD\n");

    await page.goto(`${gw.url}/admin`);
    await page.waitForFunction(() => Number(document.body.dataset.historyPoints) >= 36, undefined, { timeout: 10_000 });
    for (const id of ["chart-players", "chart-nodes", "chart-joins", "chart-frames", "chart-scaling", "chart-rooms"]) {
      expect(await page.locator(`[data-testid="${id}"] canvas`).count()).toBe(1);
      expect(Number(await page.locator(`[data-testid="${id}"]`).getAttribute("data-points"))).toBeGreaterThanOrEqual(36);
    }
    // The gateway's own sampler keeps adding points while the page is open.
    const before = Number(await page.locator('[data-testid="chart-players"]').getAttribute("data-points"));
    await page.waitForFunction((n) => Number(document.querySelector('[data-testid="chart-players"]')?.getAttribute("data-points")) > n, before, { timeout: 10_000 });
    expect(await text("rooms")).toBe("0"); // live count (no room records in this prefix)

    // The node view: CPU, memory and the log tail the scheduler stored.
    await page.locator('[data-node="node-beta"]').click();
    await page.waitForFunction(() => document.body.dataset.detailLoaded === "node-beta", undefined, { timeout: 5000 });
    expect(await text("detail-cpu")).toBe("23.4 %");
    expect(await text("detail-mem")).toBe("57.0 MiB of 256.0 MiB");
    expect(await text("detail-logs")).toContain("player p_1 joined ABCD");
    expect(await page.locator('[data-node="node-beta"]').innerText()).toContain("23.4 %");

    // Drain, cancelled at the confirmation: nothing is sent.
    await page.locator('[data-testid="drain-btn"]').click();
    await page.locator('[data-testid="confirm"]').waitFor({ state: "visible" });
    expect(await text("confirm")).toContain("Drain node node-beta?");
    await page.locator('[data-testid="confirm-no"]').click();
    await waitText("action-msg", "cancelled");
    expect(await gw.deps.queues.drain.count()).toBe(0);
    // Drain, confirmed: the drain job is queued through the fleet admin API.
    await page.locator('[data-testid="drain-btn"]').click();
    await page.locator('[data-testid="confirm-yes"]').click();
    await waitText("action-msg", "draining node-beta");
    expect(await gw.deps.queues.drain.count()).toBe(1);
    // Scale, confirmed: the floor is recorded as a scaling event.
    await page.locator('[data-testid="scale-floor"]').fill("3");
    await page.locator('[data-testid="scale-btn"]').click();
    await page.locator('[data-testid="confirm-yes"]').click();
    await waitText("action-msg", "scale floor set to 3");
    expect(await t.redis.lindex(t.keys.scaleEvents, 0)).toContain('"floor"');

    // The rollout panel: no rollout runs, so it says so and offers the start form.
    await page.waitForFunction(() => ["none", "unavailable"].includes((document.querySelector('[data-testid="rollout"]') as HTMLElement | null)?.dataset.state ?? ""), undefined, { timeout: 10_000 });
    expect(await text("rollout")).toContain("No rollout");

    // A running rollout, as GET /v1/admin/fleet answers it (CONTRACT shape, answered here by the
    // browser so the panel's running state does not need a scheduler rolling nodes): old vs new
    // nodes, rooms left on the old version, time to the drain deadline; promote asks first.
    const rollout = {
      id: "ro-test-1", version: "v2", image: "fleetgate-node:v2", fromVersion: "v1", fromImage: "fleetgate-node:v1", state: "running", canaryPercent: 25, maxSurge: 1,
      drainDeadlineSeconds: 600, startedAt: new Date(Date.now() - 90_000).toISOString(), oldNodes: 2, newNodes: 1, roomsOnOld: 7, playersOnOld: 30,
      drainDeadlineAt: new Date(Date.now() + 300_000).toISOString(), failures: 0,
      old: [{ id: "node-alpha", state: "draining", rooms: 4, players: 20 }, { id: "node-beta", state: "ready", rooms: 3, players: 10 }],
      new: [{ id: "node-gamma", state: "ready", rooms: 1, players: 2 }], timeline: [],
    };
    const promoted: string[] = [];
    await page.route("**/admin/api/v1/admin/fleet", (route) => route.fulfill({ json: { versions: [{ version: "v1", image: "fleetgate-node:v1", state: "retiring", nodes: 2, rooms: 7, players: 30 }, { version: "v2", image: "fleetgate-node:v2", state: "canary", nodes: 1, rooms: 1, players: 2 }], rollout } }));
    await page.route("**/admin/api/v1/admin/fleet/rollouts/*/promote", (route) => {
      promoted.push(new URL(route.request().url()).pathname + " " + route.request().headers()["x-fleetgate-dashboard"]);
      return route.fulfill({ status: 202, json: { rolloutId: rollout.id } });
    });
    await page.reload();
    await page.waitForFunction(() => (document.querySelector('[data-testid="rollout"]') as HTMLElement | null)?.dataset.state === "running", undefined, { timeout: 10_000 });
    const panel = (await page.locator('[data-testid="rollout"]').textContent()) ?? ""; // textContent: headings are uppercased by CSS
    expect(panel).toContain("Old · v1");
    expect(panel).toContain("7 rooms left");
    expect(panel).toContain("New · v2");
    expect(panel).toMatch(/old nodes closed in (4|5) min/);
    await page.locator('[data-testid="rollout-promote"]').click();
    expect(await text("confirm")).toContain("Promote v2");
    await page.locator('[data-testid="confirm-yes"]').click();
    await waitText("action-msg", "rollout promoted");
    expect(promoted).toEqual(["/admin/api/v1/admin/fleet/rollouts/ro-test-1/promote 1"]);
    await page.waitForFunction(() => Number(document.body.dataset.historyPoints) >= 36, undefined, { timeout: 10_000 });
    await page.locator('[data-node="node-beta"]').click(); // the node view in the picture too
    await page.waitForFunction(() => document.body.dataset.detailLoaded === "node-beta", undefined, { timeout: 5000 });

    await mkdir(join(SCREENSHOT, ".."), { recursive: true });
    await Bun.sleep(300); // the utilisation bar's transition, before the picture
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
  }, 60_000);

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
