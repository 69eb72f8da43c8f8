/**
 * The operator pages over HTTP on a real gateway (createApp, real Redis, real BullMQ queues):
 * admin-only with the contract's 401/403, the `?token=` → cookie hand-off browsers need, the
 * BullMQ board listing every scheduler queue, the dashboard's numbers equal to /v1/capacity, and
 * the SSE stream pushing a new snapshot when a node is added.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ADMIN_COOKIE, adminToken, cookieValue, withoutToken } from "../../gateway/admin/dashboard-auth.ts";
import { parseScaleEvents, type DashboardSnapshot } from "../../gateway/admin/dashboard-data.ts";
import { makeNode } from "../support/nodes.ts";
import { startTestGateway, type TestGateway } from "../support/gateway-fixtures.ts";
import { need, testRedis, waitFor, type TestRedis } from "../support/services.ts";

describe("dashboard auth helpers", () => {
  const req = (url: string, headers: Record<string, string> = {}) => new Request(`http://x${url}`, { headers });
  test.each([
    ["header first", req("/admin?token=q", { authorization: "Bearer h", cookie: `${ADMIN_COOKIE}=c` }), "h", "header"],
    ["then query", req("/admin?token=q", { cookie: `${ADMIN_COOKIE}=c` }), "q", "query"],
    ["then cookie", req("/admin", { cookie: `a=1; ${ADMIN_COOKIE}=c%2Ed; b=2` }), "c.d", "cookie"],
    ["none", req("/admin"), undefined, "none"],
    ["a malformed header counts as a (bad) header token", req("/admin?token=q", { authorization: "Basic abc" }), "", "header"],
  ])("%s", (_what, r, token, source) => {
    expect(adminToken(r)).toEqual({ token, source: source as ReturnType<typeof adminToken>["source"] });
  });

  test("withoutToken keeps the path and the other parameters", () => {
    expect(withoutToken(req("/admin/queues/queue/drain?token=abc&status=failed"))).toBe("/admin/queues/queue/drain?status=failed");
    expect(withoutToken(req("/admin?token=abc"))).toBe("/admin");
  });

  test("cookieValue ignores a value that is not valid percent-encoding", () => {
    expect(cookieValue(req("/", { cookie: `${ADMIN_COOKIE}=%E0%A4%A` }), ADMIN_COOKIE)).toBeUndefined();
  });

  test("parseScaleEvents keeps well-formed events, newest first", () => {
    const raw = [JSON.stringify({ at: 1, action: "up", count: 2, reason: "r" }), "not json", JSON.stringify({ at: 3, action: "down", count: 1, reason: "idle" }), JSON.stringify({ nope: 1 }), JSON.stringify({ at: 4, action: "explode", count: 1, reason: "no such action" })];
    expect(parseScaleEvents(raw)).toEqual([
      { at: 3, action: "down", count: 1, reason: "idle" },
      { at: 1, action: "up", count: 2, reason: "r" },
    ]);
  });
});

describe.skipIf(!need("redis"))("operator pages on a real gateway", () => {
  let t: TestRedis;
  let gw: TestGateway;
  let admin: string;
  let player: string;

  beforeAll(async () => {
    t = testRedis("dash");
    gw = await startTestGateway(t.prefix, { adminEventsIntervalMs: 200 });
    admin = await gw.token("op_admin", ["admin"]);
    player = await gw.token("p_player", ["player"]);
  });
  afterAll(async () => {
    await gw?.stop();
    await t?.cleanup();
  });

  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${gw.url}${path}`, { headers, redirect: "manual" });

  test.each(["/admin", "/admin/data", "/admin/events", "/admin/queues", "/admin/queues/api/queues"])("%s: 401 without a token, 403 for a player, in the contract's error shape", async (path) => {
    const none = await get(path);
    expect(none.status).toBe(401);
    expect(((await none.json()) as { error: { code: string } }).error.code).toMatch(/^TOKEN_/);
    const bad = await get(path, { authorization: "Bearer not-a-jwt" });
    expect(bad.status).toBe(401);
    const forbidden = await get(path, { authorization: `Bearer ${player}` });
    expect(forbidden.status).toBe(403);
    expect(((await forbidden.json()) as { error: { code: string } }).error.code).toBe("NOT_ADMIN");
    expect((await get(`${path}?token=${player}`)).status).toBe(403);
    expect((await get(path, { cookie: `${ADMIN_COOKIE}=${player}` })).status).toBe(403);
  });

  test("?token= answers with a redirect that drops it and sets an HttpOnly cookie scoped to /admin; the cookie then works", async () => {
    const res = await get(`/admin?token=${admin}`);
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/admin");
    const cookie = res.headers.get("set-cookie") ?? "";
    expect(cookie).toContain(`${ADMIN_COOKIE}=`);
    expect(cookie).toContain("HttpOnly");
    expect(cookie).toContain("SameSite=Strict");
    expect(cookie).toContain("Path=/admin");
    const page = await get("/admin", { cookie: cookie.split(";")[0]! });
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");
    const html = await page.text();
    expect(html).toContain("/admin/events");
    // Self-contained: nothing loaded from another origin.
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
  });

  test("the board lists every scheduler queue", async () => {
    const page = await get("/admin/queues", { authorization: `Bearer ${admin}` });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("<html");
    const api = await get("/admin/queues/api/queues", { authorization: `Bearer ${admin}` });
    expect(api.status).toBe(200);
    const body = (await api.json()) as { queues: { name: string }[] };
    const names = body.queues.map((q) => q.name).sort();
    expect(names).toEqual(gw.deps.queues.all().map((q) => q.name).sort());
    expect(names.length).toBeGreaterThanOrEqual(4);
  });

  test("/admin/data shows the same capacity numbers as /v1/capacity", async () => {
    await gw.deps.nodes.create(makeNode({ id: "dash-n1", capacity: 8, players: 3 }), Date.now());
    await gw.deps.nodes.create(makeNode({ id: "dash-n2", capacity: 8, players: 5, state: "draining" }), Date.now());
    const data = (await (await get("/admin/data", { authorization: `Bearer ${admin}` })).json()) as DashboardSnapshot;
    const cap = await (await get("/v1/capacity", { authorization: `Bearer ${admin}` })).json();
    expect(data.capacity).toEqual(cap as DashboardSnapshot["capacity"]);
    expect(data.capacity.players).toBe(8);
    expect(data.nodes.map((n) => n.id)).toEqual(["dash-n1", "dash-n2"]);
    expect(JSON.stringify(data)).not.toContain("tok"); // node tokens never leave the registry
  });

  test("/admin/events pushes a fresh snapshot when a node is added", async () => {
    const subscribers = async () => Number(((await t.redis.pubsub("NUMSUB", t.keys.templaterEventsChannel)) as (string | number)[])[1]);
    const ac = new AbortController();
    const res = await fetch(`${gw.url}/admin/events`, { headers: { authorization: `Bearer ${admin}` }, signal: ac.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    const nextSnapshot = async (): Promise<DashboardSnapshot> => {
      const end = Date.now() + 5000;
      for (;;) {
        const m = /event: snapshot\ndata: (.*)\n\n/.exec(buf);
        if (m) {
          buf = buf.slice(m.index + m[0].length);
          return JSON.parse(m[1]!) as DashboardSnapshot;
        }
        if (Date.now() > end) throw new Error("no snapshot within 5 s");
        const { value, done } = await reader.read();
        if (done) throw new Error("stream ended");
        buf += decoder.decode(value, { stream: true });
      }
    };
    try {
      const first = await nextSnapshot();
      expect(await subscribers()).toBe(1);
      const before = first.nodes.length;
      await gw.deps.nodes.create(makeNode({ id: "dash-n3", capacity: 8 }), Date.now());
      let snap = await nextSnapshot();
      while (snap.nodes.length === before) snap = await nextSnapshot();
      expect(snap.nodes.map((n) => n.id)).toContain("dash-n3");
      expect(snap.capacity.capacity).toBe(first.capacity.capacity + 8);
    } finally {
      ac.abort();
    }
    // The last listener gone, the hub drops its subscription (no leaked Redis subscriber).
    await waitFor(async () => (await subscribers()) === 0, 3000, "the dashboard's subscription dropped");
  });
});
