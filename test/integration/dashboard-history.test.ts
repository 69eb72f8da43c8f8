/**
 * The dashboard's history and node view against a real Redis: the ring stays bounded and expires,
 * two gateways' samplers write one fleet sample per interval and one traffic sample each (merged
 * into fleet rates), counters are read as deltas from the gateway's Prometheus metrics, and the
 * /admin routes serve the history, a node's stats and log tail, uPlot from node_modules, and the
 * admin actions (only with the page's header). The scheduler side stores node stats and logs
 * from its driver only while a dashboard is open (a real process node, ProcessDriver).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { realClock } from "../../core/clock.ts";
import { silentLogger } from "../../core/log.ts";
import { HistoryStore, type FleetSample } from "../../model/dashboard-history.ts";
import { HistorySampler } from "../../gateway/admin/history-sampler.ts";
import { ACTION_HEADER } from "../../gateway/admin/routes.ts";
import { ProcessDriver } from "../../scheduler/drivers/process-driver.ts";
import { NodeStatsCollector } from "../../scheduler/fleet/node-stats.ts";
import { makeNode } from "../support/nodes.ts";
import { startTestGateway, type TestGateway } from "../support/gateway-fixtures.ts";
import { freePort, need, testRedis, waitFor, type TestRedis } from "../support/services.ts";
import { FakeDriver } from "../support/fake-driver.ts";

describe.skipIf(!need("redis"))("dashboard history", () => {
  let t: TestRedis;
  let gw: TestGateway;
  let admin: string;

  beforeAll(async () => {
    t = testRedis("dhist");
    // A long interval: the test drives the samplers itself.
    gw = await startTestGateway(t.prefix, { dashboardHistoryIntervalMs: 60_000, dashboardHistoryPoints: 10 });
    admin = await gw.token("op_hist", ["admin"]);
  });
  afterAll(async () => {
    await gw?.stop();
    await t?.cleanup();
  });

  const fleetSample = (at: number, players: number): FleetSample => ({ at, players, capacity: 8, nodes: { ready: 1 }, versions: { active: 1 }, rooms: 1, lobbies: 0, queue: 0, scaleUps: 0, scaleDowns: 0 });

  test("the ring keeps the newest POINTS samples, expires, and reads oldest first", async () => {
    const store = new HistoryStore(t.redis, t.keys, 5, 1000);
    for (let i = 0; i < 12; i++) await store.appendFleet(fleetSample(1000 * i, i));
    expect(await t.redis.llen(t.keys.historyFleet)).toBe(5);
    const ttl = await t.redis.pttl(t.keys.historyFleet);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000);
    const h = await store.read();
    expect(h.fleet.map((s) => s.players)).toEqual([7, 8, 9, 10, 11]);
    await t.redis.lpush(t.keys.historyFleet, "not json", JSON.stringify({ no: "at" }));
    // Malformed entries take ring slots but are skipped on read.
    expect((await store.read()).fleet.map((s) => s.players)).toEqual([9, 10, 11]);
    await t.redis.del(t.keys.historyFleet);
  });

  test("two gateways: one fleet sample per interval, both traffic samples, deltas of the metrics", async () => {
    await t.redis.del(t.keys.historyFleet);
    const deps = gw.deps;
    const a = new HistorySampler({ ...deps, gatewayId: "gw-a", config: { dashboardHistoryIntervalMs: 1000, dashboardHistoryPoints: 10 } });
    const b = new HistorySampler({ ...deps, gatewayId: "gw-b", config: { dashboardHistoryIntervalMs: 1000, dashboardHistoryPoints: 10 } });
    await deps.nodes.create(makeNode({ id: "hist-node", capacity: 8, players: 3, rooms: 1 }), Date.now());
    await t.redis.lpush(t.keys.scaleEvents, JSON.stringify({ at: Date.now() - 100, action: "up", count: 2, reason: "test" }));

    // Counters move between two readings: the sample holds the difference.
    const joins = deps.metrics.counter("fleetgate_joins_total", "");
    const hist = deps.metrics.histogram("fleetgate_join_seconds", "");
    const frames = deps.metrics.counter("fleetgate_relayed_frames_total", "");
    a.start(); // takes the first reading
    await a.stop();
    for (let i = 0; i < 9; i++) {
      joins.inc({ result: "ok" });
      hist.observe(0.02);
    }
    joins.inc({ result: "no_capacity" });
    hist.observe(4);
    frames.inc({ direction: "up" }, 500);
    frames.inc({ direction: "down" }, 700);

    const first = await a.sample();
    const second = await b.sample();
    expect(first.gateway).toMatchObject({ gateway: "gw-a", joins: 10, joinsFailed: 1, frames: 1200 });
    expect(first.gateway.joinP99).toBeGreaterThan(2.5); // the slow join is the 99th percentile
    expect(first.fleet).toMatchObject({ players: 3, capacity: 8, rooms: 0, scaleUps: 2 });
    expect(first.fleet!.nodes.ready).toBe(1);
    expect(second.fleet).toBeUndefined(); // gw-b lost this interval's turn
    expect(second.gateway.gateway).toBe("gw-b");

    const res = await fetch(`${gw.url}/admin/history`, { headers: { authorization: `Bearer ${admin}` } });
    expect(res.status).toBe(200);
    const h = (await res.json()) as { fleet: FleetSample[]; traffic: Array<{ joinsPerSec: number; framesPerSec: number; joinP99: number | null }> };
    expect(h.fleet).toHaveLength(1);
    expect(h.traffic.length).toBeGreaterThanOrEqual(1);
    expect(h.traffic.reduce((s, x) => s + x.framesPerSec, 0)).toBeGreaterThan(0);
    expect((await fetch(`${gw.url}/admin/history`)).status).toBe(401);
  });

  test("node view: stats and log tail from Redis; unknown node 404; uPlot served from node_modules", async () => {
    await gw.deps.nodes.create(makeNode({ id: "view-node", capacity: 4 }), Date.now());
    await t.redis.set(t.keys.nodeStats("view-node"), JSON.stringify({ at: Date.now(), cpuPercent: 12.5, memoryBytes: 42 * 1024 * 1024, memoryLimitBytes: null }));
    await t.redis.set(t.keys.nodeLogs("view-node"), "line one\nline two\n");
    const auth = { authorization: `Bearer ${admin}` };
    const detail = (await (await fetch(`${gw.url}/admin/nodes/view-node`, { headers: auth })).json()) as { node: { id: string }; stats: { cpuPercent: number }; logs: string };
    expect(detail.node.id).toBe("view-node");
    expect(detail.stats.cpuPercent).toBe(12.5);
    expect(detail.logs).toContain("line two");
    expect((await fetch(`${gw.url}/admin/nodes/nope`, { headers: auth })).status).toBe(404);
    const snap = (await (await fetch(`${gw.url}/admin/data`, { headers: auth })).json()) as { nodeStats: Record<string, { memoryBytes: number }>; rooms: { rooms: number } };
    expect(snap.nodeStats["view-node"]?.memoryBytes).toBe(42 * 1024 * 1024);
    expect(snap.rooms.rooms).toBe(0);

    const js = await fetch(`${gw.url}/admin/assets/uplot.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get("content-type")).toContain("javascript");
    expect(await js.text()).toContain("uPlot");
    expect((await fetch(`${gw.url}/admin/assets/uplot.css`)).headers.get("content-type")).toContain("text/css");
  });

  test("admin actions go through /admin/api only with the page's header, and only to admin paths", async () => {
    const auth = { authorization: `Bearer ${admin}` };
    expect((await fetch(`${gw.url}/admin/api/v1/admin/scale`, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ nodes: 1 }) })).status).toBe(403);
    const ok = await fetch(`${gw.url}/admin/api/v1/admin/scale`, { method: "POST", headers: { ...auth, [ACTION_HEADER]: "1", "content-type": "application/json" }, body: JSON.stringify({ nodes: 1 }) });
    expect(ok.status).toBe(202);
    expect(await t.redis.lindex(t.keys.scaleEvents, 0)).toContain("floor");
    expect((await fetch(`${gw.url}/admin/api/v1/rooms`, { headers: { ...auth, [ACTION_HEADER]: "1" } })).status).toBe(404);
    expect((await fetch(`${gw.url}/admin/api/v1/admin/scale`, { method: "POST", headers: { [ACTION_HEADER]: "1" } })).status).toBe(401);
    const player = await gw.token("p_notadmin", ["player"]);
    expect((await fetch(`${gw.url}/admin/api/v1/admin/fleet`, { headers: { authorization: `Bearer ${player}`, [ACTION_HEADER]: "1" } })).status).toBe(403);
  });
});

describe.skipIf(!need("redis"))("node stats collector (scheduler side)", () => {
  let t: TestRedis;
  let dir: string;
  let driver: ProcessDriver | undefined;

  beforeAll(() => {
    t = testRedis("nstat");
    dir = mkdtempSync(join(tmpdir(), "fg-nstat-"));
  });
  afterAll(async () => {
    if (driver) {
      await driver.stop("stat-node", 2000).catch(() => {});
      await driver.remove("stat-node").catch(() => {});
      await driver.close();
    }
    rmSync(dir, { recursive: true, force: true });
    await t?.cleanup();
  });

  test("samples only while a dashboard is open, one replica per interval; a real process node's CPU, memory and log", async () => {
    const { RedisNodeRegistry } = await import("../../model/node-registry.ts");
    const registry = new RedisNodeRegistry(t.redis, t.keys, () => t.connect());
    driver = new ProcessDriver({ fleet: `fleet-${t.prefix}`, stateDir: dir, clock: realClock, logger: silentLogger, baseEnv: { PATH: process.env.PATH ?? "" } });
    const port = freePort();
    await driver.start({ nodeId: "stat-node", port, token: "tok-stat-node-0123456789", maxRooms: 4, maxPlayers: 4, drainSeconds: 1, roomMode: "echo" });
    await registry.create(makeNode({ id: "stat-node", port, capacity: 4 }), Date.now());
    await waitFor(async () => (await driver!.logs("stat-node", 50)).length > 0, 10_000, "the node's first log line");

    const mk = () => new NodeStatsCollector({ redis: t.redis, keys: t.keys, nodes: registry, driver: driver!, clock: realClock, log: silentLogger, intervalMs: 1000 });
    const a = mk();
    const b = mk();
    expect(await a.tick()).toBe(0); // no dashboard open
    expect(await t.redis.exists(t.keys.nodeStats("stat-node"))).toBe(0);

    await t.redis.set(t.keys.dashboardWatch, "gw", "PX", 5000);
    expect(await a.tick()).toBe(1);
    expect(await b.tick()).toBe(0); // the other replica's turn is taken
    const stats = JSON.parse((await t.redis.get(t.keys.nodeStats("stat-node")))!) as { cpuPercent: number; memoryBytes: number };
    expect(stats.memoryBytes).toBeGreaterThan(1024 * 1024);
    expect(stats.cpuPercent).toBeGreaterThanOrEqual(0);
    expect((await t.redis.get(t.keys.nodeLogs("stat-node")))!.length).toBeGreaterThan(0);
    expect(await t.redis.pttl(t.keys.nodeStats("stat-node"))).toBeGreaterThan(0);

    // A driver without stats (the fake) still stores the log tail and no stats.
    const fake = new FakeDriver();
    expect(typeof (fake as { stats?: unknown }).stats).toBe("undefined");
  }, 30_000);
});
