/**
 * The demo page (issue 13) in headless Chromium against a real gateway, Redis, a relay-mode
 * reference node and the matchmaker: two browser pages sign in, one creates a lobby, the other
 * finds it in the lobby browser and joins, and they chat both ways through the relay; then both
 * click "Find match" and meet in the matched room. The page is not served with DEMO off or under
 * NODE_ENV=production. Leaves a screenshot at test-output/demo.png.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { realClock } from "../../core/clock.ts";
import { loadConfig } from "../../core/config.ts";
import { silentLogger } from "../../core/log.ts";
import { startMatchmaker } from "../../scheduler/matchmaker/index.ts";
import { startTestGateway, startTestNode, type TestGateway, type TestNode } from "../support/gateway-fixtures.ts";
import { freePort, IN_CI, need, testRedis, type TestRedis } from "../support/services.ts";
import { deletePrefix } from "../../core/redis.ts";

const CHROMIUM = "/usr/bin/chromium";
/** Alice's page in the lobby chat, left for a human to look at. */
const SCREENSHOT = join(import.meta.dir, "..", "..", "test-output", "demo.png");
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium && IN_CI) throw new Error(`${CHROMIUM} is required under CI`);

describe("demo page configuration", () => {
  test("on by default, off with DEMO=false or NODE_ENV=production (unless DEMO=true)", () => {
    expect(loadConfig({}).demo).toBe(true);
    expect(loadConfig({ DEMO: "false" }).demo).toBe(false);
    expect(loadConfig({ NODE_ENV: "production" }).demo).toBe(false);
    expect(loadConfig({ NODE_ENV: "production", DEMO: "true" }).demo).toBe(true);
  });
});

describe.skipIf(!need("redis") || !hasChromium)("demo page in Chromium", () => {
  let tr: TestRedis;
  let gw: TestGateway;
  let off: TestGateway;
  let node: TestNode;
  let matchmaker: { close(): Promise<void> } | undefined;
  let profile: string;
  let context: BrowserContext;
  let alice: Page;
  let bob: Page;

  const signIn = async (page: Page, name: string) => {
    await page.goto(`${gw.url}/demo`);
    await page.getByTestId("display-name").fill(name);
    await page.getByTestId("sign-in").click();
    await page.getByTestId("whoami").waitFor({ state: "visible" });
  };
  const say = async (page: Page, text: string) => {
    await page.getByTestId("chat-input").fill(text);
    await page.getByTestId("send").click();
  };
  const chatHas = (page: Page, text: string) => page.getByTestId("chat-log").getByText(text, { exact: true }).waitFor({ timeout: 10_000 });

  beforeAll(async () => {
    tr = testRedis("demo");
    gw = await startTestGateway(tr.prefix, { port: freePort(), matchmakerIntervalMs: 50, flushWaitMs: 300, minPartialSessionSize: 2 });
    off = await startTestGateway(`${tr.prefix}-off`, { demo: false });
    // Registered as gateway/main.ts does, so GET /v1/regions has a ping URL for the page to measure.
    await gw.deps.gateways.heartbeat({ id: "gw-demo", host: "127.0.0.1", port: gw.port, region: "local", publicUrl: gw.url, startedAt: Date.now() }, Date.now());
    node = await startTestNode(gw.deps, { roomMode: "relay" });
    matchmaker = await startMatchmaker({ ...gw.deps, newRedis: () => tr.connect(), clock: realClock, log: silentLogger });
    profile = await mkdtemp(join(tmpdir(), "fg-chromium-demo-"));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    alice = context.pages()[0] ?? (await context.newPage());
    bob = await context.newPage();
    for (const p of [alice, bob]) p.on("pageerror", (e) => console.error("pageerror", e.message)).on("console", (m) => m.type() === "error" && console.error("console", m.text()));
  }, 60_000);

  afterAll(async () => {
    await context?.close().catch(() => {});
    if (profile) await rm(profile, { recursive: true, force: true });
    await matchmaker?.close();
    await gw?.stop();
    await off?.stop();
    await node?.stop();
    // The demo-off gateway writes under a prefix of its own: clean it too.
    if (tr) await deletePrefix(tr.redis, `${tr.prefix}-off`);
    await tr?.cleanup();
  });

  test("two pages meet in a lobby and chat both ways", async () => {
    await signIn(alice, "alice");
    await signIn(bob, "bob");
    await alice.getByTestId("create-mode").fill("demo-lobby");
    await alice.getByTestId("create").click();
    await alice.getByTestId("conn-status").getByText("connected", { exact: true }).waitFor();
    const code = (await alice.getByTestId("room-code").textContent())!.trim();
    expect(code).toMatch(/^[A-Za-z0-9_-]{4,32}$/);

    // Bob finds Alice's lobby in the lobby browser and joins it.
    await bob.getByTestId("refresh").click();
    await bob.getByTestId(`join-${code}`).click();
    await bob.getByTestId("conn-status").getByText("connected", { exact: true }).waitFor();
    expect((await bob.getByTestId("room-code").textContent())!.trim()).toBe(code);
    await chatHas(alice, "bob is here");
    // The page chose its region by measuring the round trip to the region's ping URL.
    expect(await alice.getByTestId("region").textContent()).toMatch(/^region local \(\d+ ms\)$/);

    await say(alice, "hi bob");
    await chatHas(bob, "alice: hi bob");
    await say(bob, "hi alice");
    await chatHas(alice, "bob: hi alice");
    await alice.getByTestId("room-info").getByText(/2\/4 players/).waitFor();
    await alice.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(await alice.getByTestId("error").textContent()).toBe("");
    expect(await bob.getByTestId("error").textContent()).toBe("");

    await bob.getByTestId("leave").click();
    await alice.getByTestId("leave").click();
    await alice.getByTestId("refresh").waitFor({ state: "visible" });
  }, 60_000);

  test("both click Find match and meet in the matched room", async () => {
    await alice.getByTestId("match-mode").fill("demo-match");
    await bob.getByTestId("match-mode").fill("demo-match");
    await Promise.all([alice.getByTestId("find-match").click(), bob.getByTestId("find-match").click()]);
    await alice.getByTestId("conn-status").getByText("connected", { exact: true }).waitFor({ timeout: 15_000 });
    await bob.getByTestId("conn-status").getByText("connected", { exact: true }).waitFor({ timeout: 15_000 });
    const [a, b] = [await alice.getByTestId("room-code").textContent(), await bob.getByTestId("room-code").textContent()];
    expect(a).toBe(b);
    await say(bob, "glhf");
    await chatHas(alice, "bob: glhf");
  }, 60_000);

  test("with DEMO off there is no /demo", async () => {
    expect((await fetch(`${off.url}/demo`)).status).toBe(404);
    expect((await fetch(`${off.url}/demo/sdk.js`)).status).toBe(404);
  });
});
