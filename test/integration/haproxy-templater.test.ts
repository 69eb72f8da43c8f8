/**
 * The templater end to end on one machine: real Redis registries, a real HAProxy, reference nodes.
 * The stats page needs its credentials and lists every node with its state; a draining node shows
 * DRAIN within a second (runtime API, before any reload); bursts are one reload; a missed message
 * heals on resync; a template that renders a bad config is refused, reported, and the old config
 * keeps serving.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { realClock } from "../../core/clock.ts";
import { GatewayRegistry } from "../../model/gateway-registry.ts";
import { silentLogger } from "../../core/log.ts";
import { MetricsRegistry } from "../../core/metrics.ts";
import { RedisNodeRegistry, encodeNode } from "../../model/node-registry.ts";
import { HaproxyControl } from "../../haproxy/control.ts";
import { parseTemplaterEvent, type TemplaterEvent } from "../../model/templater-events.ts";
import { DEFAULT_TEMPLATES } from "../../haproxy/render.ts";
import { startTemplater, type Templater } from "../../haproxy/sync.ts";
import { startNodeServer, type NodeServer } from "../../node/server.ts";
import { nodeRecord } from "../support/haproxy-fixtures.ts";
import { STATS_PASSWORD, STATS_USER, fetchStats, statsServers, testEdgeConfig, type TestEdgeConfig } from "../support/haproxy-edge.ts";
import { freePort, need, testRedis, waitFor, type TestRedis } from "../support/services.ts";

const run = need("haproxy") && need("redis");

interface Harness {
  t: TestRedis;
  edge: TestEdgeConfig;
  nodes: RedisNodeRegistry;
  gateways: GatewayRegistry;
  metrics: MetricsRegistry;
  templater: Templater;
  events: TemplaterEvent[];
  servers: NodeServer[];
  close(): Promise<void>;
}

async function harness(label: string, opts: { templates?: typeof DEFAULT_TEMPLATES; resyncMs?: number; debounceMs?: number } = {}): Promise<Harness> {
  const t = testRedis(label);
  const edge = await testEdgeConfig({ templaterResyncMs: opts.resyncMs ?? 60_000, templaterDebounceMs: opts.debounceMs ?? 150, templaterMetricsPort: freePort() });
  const nodes = new RedisNodeRegistry(t.redis, t.keys, () => t.connect());
  const gateways = new GatewayRegistry(t.redis, t.keys, 5000);
  const metrics = new MetricsRegistry();
  const events: TemplaterEvent[] = [];
  const sub = t.connect();
  sub.on("message", (_ch: string, msg: string) => {
    const e = parseTemplaterEvent(msg);
    if (e) events.push(e);
  });
  await sub.subscribe(t.keys.templaterEventsChannel);
  const templater = await startTemplater({
    config: edge.config,
    keys: t.keys,
    redis: t.redis,
    newRedis: () => t.connect(),
    nodes,
    gateways,
    clock: realClock,
    log: silentLogger,
    metrics,
    haproxyMode: "child",
    ...(opts.templates ? { templates: opts.templates } : {}),
  });
  const servers: NodeServer[] = [];
  return {
    t,
    edge,
    nodes,
    gateways,
    metrics,
    templater,
    events,
    servers,
    async close() {
      await templater.stop();
      if (templater.control instanceof HaproxyControl) await templater.control.stop();
      for (const s of servers) await s.stop();
      await t.cleanup();
      await edge.cleanup();
    },
  };
}

/** Starts a reference node and registers it in the given state. */
async function addNode(h: Harness, id: string, state: "ready" | "starting" | "draining" | "stopped" = "ready"): Promise<NodeServer> {
  const s = startNodeServer({ nodeId: id, port: 0, hostname: "127.0.0.1", maxRooms: 10, maxPlayers: 10, token: "t", roomMode: "echo" });
  h.servers.push(s);
  await h.nodes.create(nodeRecord(id, state, s.port), Date.now());
  return s;
}

const statsAuth = { user: STATS_USER, password: STATS_PASSWORD };

describe.skipIf(!run)("templater with a real HAProxy and Redis", () => {
  let h: Harness;

  beforeAll(async () => {
    h = await harness("hxt", { resyncMs: 600 });
  });
  afterAll(async () => {
    await h?.close();
  });

  test("the stats page needs its credentials and lists every node with its state", async () => {
    await addNode(h, "n-ready");
    await addNode(h, "n-draining", "draining");
    await addNode(h, "n-stopped", "stopped");
    const port = h.edge.config.haproxyStatsPort;
    const rows = await waitFor(async () => {
      const r = await statsServers(port, "nodes", statsAuth);
      const by = Object.fromEntries(r.map((x) => [x.svname, x.status]));
      return by["n-ready"] === "UP" && by["n-draining"] === "DRAIN" && by["n-stopped"] === "MAINT" ? by : undefined;
    }, 5000, "every node on the stats page with its state");
    expect(Object.keys(rows).sort()).toEqual(["n-draining", "n-ready", "n-stopped"]);

    expect((await fetchStats(port)).status).toBe(401);
    expect((await fetchStats(port, { user: STATS_USER, password: "nope" })).status).toBe(401);
    expect((await fetchStats(port, { user: "admin", password: STATS_PASSWORD })).status).toBe(401);
    const html = await (await fetchStats(port, statsAuth, "html")).text();
    for (const id of ["n-ready", "n-draining", "n-stopped"]) expect(html).toContain(id);
  });

  test("a node that starts draining shows DRAIN on the stats page within a second", async () => {
    await addNode(h, "n-todrain");
    const port = h.edge.config.haproxyStatsPort;
    await waitFor(async () => (await statsServers(port, "nodes", statsAuth)).find((r) => r.svname === "n-todrain" && r.status === "UP"), 5000, "n-todrain UP");
    await h.templater.idle();
    const reloadsBefore = h.metrics.counter("fleetgate_haproxy_reloads_total", "").get({ outcome: "ok" });

    const started = Date.now();
    await h.nodes.transition("n-todrain", "draining", Date.now(), { reason: "test" });
    await waitFor(async () => (await statsServers(port, "nodes", statsAuth)).find((r) => r.svname === "n-todrain" && r.status === "DRAIN"), 1000, "DRAIN within 1 s", 10);
    const tookMs = Date.now() - started;
    expect(tookMs).toBeLessThan(1000);
    // It came from the runtime API, ahead of the debounced re-render.
    expect(h.metrics.counter("fleetgate_haproxy_runtime_commands_total", "").get({ state: "drain", outcome: "ok" })).toBeGreaterThanOrEqual(1);
    // ...and stays DRAIN after the reload that re-renders it at weight 0.
    await waitFor(() => h.metrics.counter("fleetgate_haproxy_reloads_total", "").get({ outcome: "ok" }) > reloadsBefore, 3000, "the re-render");
    await h.templater.idle();
    expect((await statsServers(port, "nodes", statsAuth)).find((r) => r.svname === "n-todrain")?.status).toBe("DRAIN");
  });

  test("back to ready clears the drain at once too", async () => {
    await h.nodes.transition("n-todrain", "ready", Date.now(), { reason: "test" });
    await waitFor(async () => (await statsServers(h.edge.config.haproxyStatsPort, "nodes", statsAuth)).find((r) => r.svname === "n-todrain" && r.status === "UP"), 2000, "UP again");
  });

  test("an operator's manual drain (stats page / runtime API) is not undone by resyncs or reloads", async () => {
    await addNode(h, "n-manual");
    const port = h.edge.config.haproxyStatsPort;
    await waitFor(async () => (await statsServers(port, "nodes", statsAuth)).find((r) => r.svname === "n-manual" && r.status === "UP"), 5000, "n-manual UP");
    await h.templater.idle();
    await h.templater.control.setServerState("nodes", "n-manual", "drain");
    await h.templater.syncNow("test resync");
    await addNode(h, "n-after-manual"); // forces a reload
    await waitFor(async () => (await statsServers(port, "nodes", statsAuth)).find((r) => r.svname === "n-after-manual"), 5000, "the reload");
    await h.templater.idle();
    expect((await statsServers(port, "nodes", statsAuth)).find((r) => r.svname === "n-manual")?.status).toBe("DRAIN");
    // A registry change of that node is enforced again.
    await h.nodes.transition("n-manual", "draining", Date.now());
    await h.nodes.transition("n-manual", "ready", Date.now());
    await waitFor(async () => (await statsServers(port, "nodes", statsAuth)).find((r) => r.svname === "n-manual" && r.status === "UP"), 2000, "UP after the registry says ready");
  });

  test("a burst of node changes is debounced into one reload", async () => {
    await h.templater.idle();
    const control = h.templater.control as HaproxyControl;
    const before = (await control.showProc())!.master.reloads;
    await Promise.all(Array.from({ length: 10 }, (_, i) => addNode(h, `burst-${i}`)));
    await waitFor(async () => (await statsServers(h.edge.config.haproxyStatsPort, "nodes", statsAuth)).filter((r) => r.svname.startsWith("burst-")).length === 10, 5000, "all 10 listed");
    await h.templater.idle();
    const after = (await control.showProc())!.master.reloads;
    expect(after - before).toBe(1);
  });

  test("gateway replicas come and go in backend gateways", async () => {
    const gw = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => Response.json({ status: "ok" }) });
    try {
      await h.gateways.heartbeat({ id: "gw-test", host: "127.0.0.1", port: gw.port ?? 0, startedAt: Date.now() }, Date.now());
      await waitFor(async () => (await statsServers(h.edge.config.haproxyStatsPort, "gateways", statsAuth)).find((r) => r.svname === "gw-test" && r.status === "UP"), 5000, "gateway listed and UP");
      await h.gateways.deregister("gw-test", Date.now());
      await waitFor(async () => (await statsServers(h.edge.config.haproxyStatsPort, "gateways", statsAuth)).length === 0, 5000, "gateway gone");
    } finally {
      gw.stop(true);
    }
  });

  test("a node written without an event (a missed message) appears on the next resync", async () => {
    const s = startNodeServer({ nodeId: "n-silent", port: 0, hostname: "127.0.0.1", maxRooms: 10, maxPlayers: 10, token: "t", roomMode: "echo" });
    h.servers.push(s);
    // Bypass the registry's Lua (which publishes): as if the pub/sub message had been lost.
    await h.t.redis.multi().hset(h.t.keys.node("n-silent"), encodeNode(nodeRecord("n-silent", "ready", s.port))).sadd(h.t.keys.nodes, "n-silent").exec();
    await waitFor(async () => (await statsServers(h.edge.config.haproxyStatsPort, "nodes", statsAuth)).find((r) => r.svname === "n-silent"), 3000, "n-silent after a resync");
  });

  test("every reload is reported: templater events on the channel, the last one kept, and /metrics", async () => {
    await waitFor(() => h.events.some((e) => e.outcome === "ok"), 2000, "an ok event");
    const last = parseTemplaterEvent(await h.t.redis.get(h.t.keys.templaterLast));
    expect(last?.outcome).toBe("ok");
    expect(last?.nodes).toBeGreaterThan(0);
    const text = await (await fetch(`http://127.0.0.1:${h.templater.metricsPort}/metrics`)).text();
    expect(text).toMatch(/fleetgate_haproxy_reloads_total\{outcome="ok"\} \d+/);
    expect(text).toContain("fleetgate_haproxy_servers{backend=\"nodes\"}");
  });
});

describe.skipIf(!run)("templater: a template that renders a bad config", () => {
  let h: Harness;
  // Valid until some node is stopped; then it writes a directive HAProxy does not know.
  const brokenWhenStopped = {
    main: DEFAULT_TEMPLATES.main,
    partials: {
      ...DEFAULT_TEMPLATES.partials,
      "backend-nodes": `${DEFAULT_TEMPLATES.partials["backend-nodes"]}{{#each nodes}}{{#if disabled}}    not-a-haproxy-keyword {{name}}\n{{/if}}{{/each}}`,
    },
  };

  beforeAll(async () => {
    h = await harness("hxb", { templates: brokenWhenStopped, debounceMs: 50 });
  });
  afterAll(async () => {
    await h?.close();
  });

  test("is refused by haproxy -c, reported (log, metric, event), and the old config keeps serving", async () => {
    await addNode(h, "b-1");
    await waitFor(async () => (await statsServers(h.edge.config.haproxyStatsPort, "nodes", statsAuth)).find((r) => r.svname === "b-1" && r.status === "UP"), 5000, "b-1 UP");
    await h.templater.idle();
    const live = await Bun.file(h.edge.config.haproxyConfig).text();

    await addNode(h, "b-2", "stopped");
    await waitFor(() => h.events.find((e) => e.outcome === "invalid"), 5000, "an invalid event");
    await h.templater.idle();
    const ev = h.events.find((e) => e.outcome === "invalid")!;
    expect(ev.error).toContain("not-a-haproxy-keyword");
    expect(h.metrics.counter("fleetgate_haproxy_reloads_total", "").get({ outcome: "invalid" })).toBeGreaterThanOrEqual(1);
    expect(parseTemplaterEvent(await h.t.redis.get(h.t.keys.templaterLast))?.outcome).toBe("invalid");
    // The live file is untouched and the old config still serves: b-1 UP, no b-2.
    expect(await Bun.file(h.edge.config.haproxyConfig).text()).toBe(live);
    const rows = await statsServers(h.edge.config.haproxyStatsPort, "nodes", statsAuth);
    expect(rows.map((r) => [r.svname, r.status])).toEqual([["b-1", "UP"]]);
  });
});
