/**
 * The gateway's HTTP API against real Redis: auth, player sessions, ops, errors, rate limits.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { jobIds } from "../../model/jobs.ts";
import { sweepExpiredSessions } from "../../model/sessions/session-store.ts";
import { startTestGateway, startTestNode, type TestGateway, type TestNode } from "../support/gateway-fixtures.ts";
import { makeNode } from "../support/nodes.ts";
import { need, testRedis, waitFor, type TestRedis } from "../support/services.ts";

type Json = Record<string, unknown> & { error?: { code: string; message: string } };

async function call(gw: TestGateway, method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; json: Json; text: string }> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers["content-type"] = "application/json";
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${gw.url}${path}`, { method, headers, body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body) });
  const text = await res.text();
  let json: Json = {};
  try {
    json = text ? (JSON.parse(text) as Json) : {};
  } catch {
    /* not json */
  }
  return { status: res.status, json, text };
}

describe.skipIf(!need("redis"))("gateway HTTP", () => {
  let tr: TestRedis;
  let gw: TestGateway;
  const nodes: TestNode[] = [];

  beforeAll(async () => {
    tr = testRedis("gwhttp");
    gw = await startTestGateway(tr.prefix, { joinWaitTimeoutMs: 600, maxServers: 50, sessionTtlMs: 5000, heartbeatIntervalMs: 1000 });
  });
  afterEach(async () => {
    for (const n of nodes.splice(0)) {
      await n.stop();
      await gw.deps.nodes.remove(n.record.id, Date.now());
    }
  });
  afterAll(async () => {
    await gw?.stop();
    await tr?.cleanup();
  });

  describe("auth", () => {
    test("guest → 201 with a token that works, and a refresh token that works once", async () => {
      const g = await call(gw, "POST", "/v1/auth/guest", { displayName: "Ann", region: "local" });
      expect(g.status).toBe(201);
      expect(Object.keys(g.json).sort()).toEqual(["expiresAt", "playerId", "refreshToken", "token"]);
      const claims = await gw.deps.auth.verify(g.json.token as string);
      expect(claims).toMatchObject({ sub: g.json.playerId, name: "Ann", roles: ["player"] });

      const r1 = await call(gw, "POST", "/v1/auth/refresh", { refreshToken: g.json.refreshToken });
      expect(r1.status).toBe(200);
      expect((await gw.deps.auth.verify(r1.json.token as string))?.sub).toBe(g.json.playerId as string);
      const again = await call(gw, "POST", "/v1/auth/refresh", { refreshToken: g.json.refreshToken });
      expect(again.status).toBe(401);
      expect(again.json.error?.code).toBe("REFRESH_TOKEN_INVALID");
    });

    test("two concurrent refreshes with one token: exactly one succeeds", async () => {
      const g = await call(gw, "POST", "/v1/auth/guest", {});
      const results = await Promise.all(Array.from({ length: 8 }, () => call(gw, "POST", "/v1/auth/refresh", { refreshToken: g.json.refreshToken })));
      expect(results.filter((r) => r.status === 200).length).toBe(1);
      expect(results.filter((r) => r.status === 401).length).toBe(7);
    });

    test("admin routes as mounted: 401 without or with a bad token, 403 for a player, through for an admin", async () => {
      const player = await gw.token("p_not_admin");
      const admin = await gw.token("op_admin", ["admin"]);
      const expired = await gw.token("op_admin", ["admin"], -60_000);
      expect((await call(gw, "POST", "/v1/admin/scale", { nodes: 0 })).status).toBe(401);
      expect((await call(gw, "POST", "/v1/admin/scale", { nodes: 0 }, expired)).status).toBe(401);
      const forbidden = await call(gw, "POST", "/v1/admin/scale", { nodes: 0 }, player);
      expect([forbidden.status, forbidden.json.error?.code]).toEqual([403, "NOT_ADMIN"]);
      expect((await call(gw, "POST", "/v1/admin/scale", { nodes: 0 }, admin)).status).toBe(202);
    });

    test("guest without a body, and bad bodies", async () => {
      expect((await call(gw, "POST", "/v1/auth/guest")).status).toBe(201);
      const bad = await call(gw, "POST", "/v1/auth/guest", { region: "../x" });
      expect(bad.status).toBe(400);
      expect(bad.json.error?.code).toBe("VALIDATION");
      expect(bad.text).not.toContain("at ");
      expect((await call(gw, "POST", "/v1/auth/refresh", "{nope")).status).toBe(400);
      expect((await call(gw, "POST", "/v1/auth/refresh", { refreshToken: "rt_unknown" })).status).toBe(401);
    });

    test("AUTH_GUEST=false → 404", async () => {
      const tr2 = testRedis("gwnoguest");
      const g2 = await startTestGateway(tr2.prefix, { authGuest: false });
      try {
        const r = await call(g2, "POST", "/v1/auth/guest", {});
        expect(r.status).toBe(404);
        expect(r.json.error?.code).toBe("GUEST_AUTH_DISABLED");
      } finally {
        await g2.stop();
        await tr2.cleanup();
      }
    });
  });

  describe("player sessions", () => {
    test("join/heartbeat/leave with MAX_PLAYERS_PER_SERVER=1: every join gets a node of its own", async () => {
      for (let i = 0; i < 3; i++) nodes.push(await startTestNode(gw.deps, { capacity: 1, maxRooms: 100 }));
      const tokens = await Promise.all([gw.token(), gw.token(), gw.token()]);
      const joins = await Promise.all(tokens.map((t) => call(gw, "POST", "/v1/players/join", {}, t)));
      for (const j of joins) {
        expect(j.status).toBe(201);
        expect(Object.keys(j.json).sort()).toEqual(["connectUrl", "heartbeatIntervalMs", "nodeId", "playerId", "roomCode", "sessionId"]);
        expect(j.json.connectUrl).toBe(`${gw.wsUrl}/v1/connect?room=${j.json.roomCode}`);
        expect(j.json.heartbeatIntervalMs).toBe(1000);
      }
      expect(new Set(joins.map((j) => j.json.nodeId)).size).toBe(3);
      // A fourth player finds no free seat: the join asks the scheduler and answers 503 past the bound.
      const t4 = await gw.token("p_fourth");
      const t0 = Date.now();
      const j4 = await call(gw, "POST", "/v1/players/join", {}, t4);
      expect(j4.status).toBe(503);
      expect(j4.json.error?.code).toBe("NO_CAPACITY");
      expect(Date.now() - t0).toBeGreaterThanOrEqual(550);
      const jobs = await gw.deps.queues.scaleUp.getJobs(["waiting", "delayed", "active", "prioritized"]);
      expect(jobs.some((j) => j.id?.startsWith(jobIds.scaleUp("join-s_")))).toBe(true);

      const [first] = joins;
      expect((await call(gw, "POST", "/v1/players/heartbeat", { sessionId: first!.json.sessionId }, tokens[0])).status).toBe(204);
      // Someone else's session is not found for you.
      expect((await call(gw, "POST", "/v1/players/heartbeat", { sessionId: first!.json.sessionId }, tokens[1])).status).toBe(404);
      expect((await call(gw, "POST", "/v1/players/leave", { sessionId: first!.json.sessionId }, tokens[0])).status).toBe(204);
      const hb = await call(gw, "POST", "/v1/players/heartbeat", { sessionId: first!.json.sessionId }, tokens[0]);
      expect(hb.status).toBe(404);
      expect(hb.json.error?.code).toBe("SESSION_NOT_FOUND");
      // The freed seat goes to the next player at once.
      const j5 = await call(gw, "POST", "/v1/players/join", {}, t4);
      expect(j5.status).toBe(201);
      expect(j5.json.nodeId).toBe(first!.json.nodeId);
    });

    test("a join waits for a node that becomes ready (woken by the node event)", async () => {
      const t = await gw.token();
      const pending = call(gw, "POST", "/v1/players/join", { region: "local" }, t);
      // The join is waiting once it has registered itself as a pending join (what the autoscaler sees).
      await waitFor(async () => (await gw.deps.redis.zcard(gw.deps.keys.pendingJoins)) > 0, 5_000, "the join to wait for a node");
      const n = await startTestNode(gw.deps, { capacity: 1 });
      nodes.push(n);
      const j = await pending;
      expect(j.status).toBe(201);
      expect(j.json.nodeId).toBe(n.record.id);
    });

    test("at MAX_SERVERS with nothing starting the join answers 503 at once", async () => {
      const tr2 = testRedis("gwmax");
      const g2 = await startTestGateway(tr2.prefix, { maxServers: 1, joinWaitTimeoutMs: 5000 });
      try {
        await g2.deps.nodes.create(makeNode({ id: "full-node", capacity: 1, maxRooms: 1, rooms: 1 }), Date.now());
        await tr2.redis.sadd(tr2.keys.nodeRooms("full-node"), "someroom");
        const t0 = Date.now();
        const j = await call(g2, "POST", "/v1/players/join", {}, await g2.token());
        expect(j.status).toBe(503);
        expect(Date.now() - t0).toBeLessThan(1000);
        expect(await g2.deps.queues.scaleUp.count()).toBe(0);
      } finally {
        await g2.stop();
        await tr2.cleanup();
      }
    });

    describe("with SESSION_TTL 400 ms", () => {
      let trs: TestRedis;
      let gs: TestGateway;
      const own: TestNode[] = [];
      beforeAll(async () => {
        trs = testRedis("gwttl");
        gs = await startTestGateway(trs.prefix, { sessionTtlMs: 400, heartbeatIntervalMs: 200 });
      });
      afterAll(async () => {
        for (const n of own) await n.stop();
        await gs.stop();
        await trs.cleanup();
      });

      test("an expired session is swept: its seat is released and heartbeats answer 404", async () => {
        const n = await startTestNode(gs.deps, { capacity: 1 });
        own.push(n);
        const t = await gs.token();
        const j = await call(gs, "POST", "/v1/players/join", {}, t);
        expect(j.status).toBe(201);
        expect(await trs.redis.scard(trs.keys.nodeSeats(n.record.id))).toBe(1);
        await Bun.sleep(450);
        // The gateway's own sweeper may have run already; sweeping again is harmless.
        await sweepExpiredSessions(trs.redis, trs.keys, Date.now());
        expect(await trs.redis.scard(trs.keys.nodeSeats(n.record.id))).toBe(0);
        expect(await trs.redis.get(trs.keys.roomNode(j.json.roomCode as string))).toBeNull();
        expect((await call(gs, "POST", "/v1/players/heartbeat", { sessionId: j.json.sessionId }, t)).status).toBe(404);
        await gs.deps.nodes.remove(n.record.id, Date.now());
      });

      test("heartbeats keep a session alive past SESSION_TTL and touch node activity", async () => {
        const n = await startTestNode(gs.deps, { capacity: 1 });
        own.push(n);
        const t = await gs.token();
        const j = await call(gs, "POST", "/v1/players/join", {}, t);
        expect(j.status).toBe(201);
        for (let i = 0; i < 4; i++) {
          await Bun.sleep(150);
          expect((await call(gs, "POST", "/v1/players/heartbeat", { sessionId: j.json.sessionId }, t)).status).toBe(204);
        }
        const rec = await gs.deps.nodes.get(n.record.id);
        expect(Date.now() - rec!.lastActivityAt).toBeLessThan(500);
        expect(await trs.redis.scard(trs.keys.nodeSeats(n.record.id))).toBe(1);
      });
    });

    test("sessions need a token; bad session ids are 404/400, never 500", async () => {
      expect((await call(gw, "POST", "/v1/players/join", {})).status).toBe(401);
      const t = await gw.token();
      expect((await call(gw, "POST", "/v1/players/heartbeat", { sessionId: "../../x" }, t)).status).toBe(404);
      expect((await call(gw, "POST", "/v1/players/heartbeat", { sessionId: 5 }, t)).status).toBe(400);
      expect((await call(gw, "POST", "/v1/players/leave", { sessionId: "s_doesnotexist" }, t)).status).toBe(204);
    });
  });

  describe("ops", () => {
    test("/health, /ready, /v1/servers (no tokens), /v1/capacity, /metrics, /openapi.json, /docs", async () => {
      const n = await startTestNode(gw.deps, { capacity: 4 });
      nodes.push(n);
      expect((await call(gw, "GET", "/health")).json).toEqual({ status: "ok" });
      expect((await call(gw, "GET", "/ready")).status).toBe(200);
      const servers = await call(gw, "GET", "/v1/servers");
      expect(servers.status).toBe(200);
      expect(servers.text).not.toContain(n.record.token);
      expect(servers.json).toContainEqual(expect.objectContaining({ id: n.record.id, state: "ready", port: n.record.port, capacity: 4 }));
      const cap = await call(gw, "GET", "/v1/capacity");
      expect(cap.json).toMatchObject({ capacity: 4, nodes: expect.objectContaining({ ready: 1 }) });
      const m = await call(gw, "GET", "/metrics");
      for (const name of ["fleetgate_gateway_connections", "fleetgate_joins_total", "fleetgate_join_seconds", "fleetgate_rooms", "fleetgate_players"]) expect(m.text).toContain(name);
      const spec = await call(gw, "GET", "/openapi.json");
      expect(spec.json.openapi).toMatch(/^3\./);
      // Generated from the routes' schemas: the rooms body shows its fields and their patterns.
      const create = (spec.json.paths as Record<string, any>)["/v1/rooms"].post; // eslint-disable-line @typescript-eslint/no-explicit-any -- a JSON document
      expect(JSON.stringify(create)).toContain("visibility");
      expect(Object.keys(spec.json.paths as object)).toContain("/v1/players/join");
      const docs = await fetch(`${gw.url}/docs`);
      expect(docs.headers.get("content-type")).toContain("text/html");
    });

    test("a body above 1 MiB is 413 in the contract shape", async () => {
      const r = await call(gw, "POST", "/v1/auth/guest", JSON.stringify({ displayName: "x".repeat(2 * 1024 * 1024) }));
      expect(r.status).toBe(413);
      expect(r.json.error?.code).toBe("PAYLOAD_TOO_LARGE");
    });

    test("in-process through app.handle: errors keep the contract shape", async () => {
      const handle = (path: string, init?: RequestInit) => gw.app.handle(new Request(`http://localhost${path}`, init));
      expect(await (await handle("/health")).json()).toEqual({ status: "ok" });
      const missing = await handle("/v1/nothing");
      expect([missing.status, ((await missing.json()) as Json).error?.code]).toEqual([404, "NOT_FOUND"]);
      const bad = await handle("/v1/players/heartbeat", { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${await gw.token()}` }, body: "[]" });
      expect(bad.status).toBe(400);
      const noToken = await handle("/v1/players/join", { method: "POST" });
      expect([noToken.status, ((await noToken.json()) as Json).error?.code]).toEqual([401, "TOKEN_MISSING"]);
    });

    test("unknown routes are 404 JSON", async () => {
      const r = await call(gw, "GET", "/no/such/thing");
      expect(r.status).toBe(404);
      expect(r.json.error?.code).toBe("NOT_FOUND");
    });

    test("/ready is 503 when Redis does not answer", async () => {
      const tr2 = testRedis("gwready");
      const g2 = await startTestGateway(tr2.prefix);
      try {
        g2.deps.redis.disconnect();
        const r = await call(g2, "GET", "/ready");
        expect(r.status).toBe(503);
        expect(r.json.error?.code).toBe("NOT_READY");
      } finally {
        await g2.stop();
        await tr2.cleanup();
      }
    });

    test("HTTP_RATE_LIMIT per IP → 429 RATE_LIMITED (probes exempt)", async () => {
      const tr2 = testRedis("gwrl");
      const g2 = await startTestGateway(tr2.prefix, { httpRateLimit: 5 });
      try {
        const statuses = [];
        for (let i = 0; i < 8; i++) statuses.push((await call(g2, "GET", "/v1/servers")).status);
        expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(2);
        const limited = await call(g2, "GET", "/v1/servers");
        if (limited.status === 429) expect(limited.json.error?.code).toBe("RATE_LIMITED");
        expect((await call(g2, "GET", "/health")).status).toBe(200);
      } finally {
        await g2.stop();
        await tr2.cleanup();
      }
    });
  });
});
