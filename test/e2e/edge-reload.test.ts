/**
 * The edge under churn, through a REAL HAProxy: 200 WebSocket clients go HAProxy → gateway
 * (createApp, relay at /v1/connect) → reference nodes, exchanging frames while extra nodes come
 * and go and the templater reloads HAProxy at least 20 times. Not one client connection may
 * drop and not one frame may be lost or reordered: old workers keep their tunnels, the new
 * worker takes new connections — and newcomers connecting all through the reloads all get in
 * (the listeners pass from worker to worker without a refused connection). Then a broken template is refused while everyone keeps talking,
 * and a new client still gets in through the old config.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { realClock } from "../../core/clock.ts";
import { silentLogger } from "../../core/log.ts";
import { MetricsRegistry } from "../../core/metrics.ts";
import { startReplicaHeartbeat, type ReplicaPresence } from "../../gateway/ops/replica.ts";
import { HaproxyControl } from "../../haproxy/control.ts";
import { DEFAULT_TEMPLATES, render } from "../../haproxy/render.ts";
import { startTemplater, type Templater } from "../../haproxy/sync.ts";
import { startTestGateway, startTestNode, type TestGateway, type TestNode } from "../support/gateway-fixtures.ts";
import { statsServers, testEdgeConfig, type TestEdgeConfig } from "../support/haproxy-edge.ts";
import { need, testRedis, waitFor, type TestRedis } from "../support/services.ts";
import { reportChaos } from "../support/chaos.ts";

const CLIENTS = 200;
const ROOMS = 50;
const MIN_RELOADS = 20;
/** Each client sends one frame per tick while the fleet churns. */
const SEND_EVERY_MS = 200;
/** Bound on the churn phase, whatever happens. */
const CHURN_BUDGET_MS = 60_000;
/** ...and lasts at least this long, so every client sends a good number of frames across it. */
const MIN_CHURN_MS = 3_000;
/** A newcomer connects (and leaves after one echo) this often during the churn. */
const NEWCOMER_EVERY_MS = 100;

/** One player: sends numbered frames, expects each back (echo nodes) in order. */
interface Client {
  id: number;
  ws: WebSocket;
  sent: number;
  received: number;
  outOfOrder: number;
  /** Set when the socket closed before the test closed it. */
  droppedWith: { code: number; reason: string } | undefined;
  closing: boolean;
}

function openClient(id: number, url: string): Promise<Client> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const c: Client = { id, ws, sent: 0, received: 0, outOfOrder: 0, droppedWith: undefined, closing: false };
    const timer = setTimeout(() => reject(new Error(`client ${id}: no open within 10 s`)), 10_000);
    ws.onopen = () => {
      clearTimeout(timer);
      resolve(c);
    };
    ws.onmessage = (ev) => {
      const [who, seq] = String(ev.data).split(":");
      if (Number(who) !== id || Number(seq) !== c.received) c.outOfOrder++;
      c.received++;
    };
    ws.onclose = (ev) => {
      clearTimeout(timer);
      if (!c.closing) c.droppedWith = { code: ev.code, reason: ev.reason };
      reject(new Error(`client ${id}: closed before open (${ev.code} ${ev.reason})`));
    };
  });
}

function send(c: Client): void {
  if (c.ws.readyState !== WebSocket.OPEN) return;
  c.ws.send(`${c.id}:${c.sent}`);
  c.sent++;
}

describe.skipIf(!(need("haproxy") && need("redis")))("edge: 200 WebSocket clients through HAProxy across 20+ reloads", () => {
  let t: TestRedis;
  let gw: TestGateway;
  let presence: ReplicaPresence;
  let edge: TestEdgeConfig;
  let templater: Templater;
  const metrics = new MetricsRegistry();
  const roomNodes: TestNode[] = [];
  const extraNodes = new Map<string, TestNode>();
  const clients: Client[] = [];

  beforeAll(async () => {
    t = testRedis("edge");
    gw = await startTestGateway(t.prefix);
    presence = await startReplicaHeartbeat(gw.deps.gateways, { id: gw.deps.gatewayId, host: "127.0.0.1", port: gw.port, startedAt: Date.now() }, { clock: realClock, intervalMs: 200, log: silentLogger });
    for (let i = 0; i < 2; i++) roomNodes.push(await startTestNode(gw.deps, { id: `room-node-${i}`, roomMode: "echo" }));
    edge = await testEdgeConfig({ redisPrefix: t.prefix, templaterDebounceMs: 50, templaterResyncMs: 5_000 });
    templater = await startTemplater({
      config: edge.config,
      keys: t.keys,
      redis: t.redis,
      newRedis: () => t.connect(),
      nodes: gw.deps.nodes,
      gateways: gw.deps.gateways,
      clock: realClock,
      log: silentLogger,
      metrics,
      haproxyMode: "child",
    });
    await waitFor(async () => (await statsServers(edge.config.haproxyStatsPort, "gateways")).some((s) => s.status === "UP"), 10_000, "the gateway UP behind HAProxy");
  }, 30_000);

  afterAll(async () => {
    for (const c of clients) {
      c.closing = true;
      c.ws.close();
    }
    await templater?.stop();
    if (templater?.control instanceof HaproxyControl) await templater.control.stop();
    await presence?.stop().catch(() => {});
    for (const n of [...roomNodes, ...extraNodes.values()]) await n.stop();
    await gw?.stop();
    await t?.cleanup();
    await edge?.cleanup();
  });

  test(
    "0 connections dropped and 0 frames lost while nodes come and go",
    async () => {
      const control = templater.control as HaproxyControl;
      const url = async (i: number) => `ws://127.0.0.1:${edge.config.haproxyPort}/v1/connect?room=edge-room-${i % ROOMS}&token=${await gw.token(`p_edge_${i}`)}`;

      // Connect in batches so the handshakes do not all land in one instant.
      for (let i = 0; i < CLIENTS; i += 25) {
        clients.push(...(await Promise.all(Array.from({ length: Math.min(25, CLIENTS - i) }, async (_, k) => openClient(i + k, await url(i + k))))));
      }
      expect(clients).toHaveLength(CLIENTS);
      const firstWorker = (await control.showProc())!.workers[0]!.pid;
      const reloadsAtStart = (await control.showProc())!.master.reloads;

      // Traffic for the whole churn phase.
      const ticker = setInterval(() => {
        for (const c of clients) send(c);
      }, SEND_EVERY_MS);
      // Newcomers all through the reloads: connect, one echo, leave.
      const newcomers = { ok: 0, failed: [] as string[] };
      let newcomerSeq = 0;
      const newcomerTicker = setInterval(() => {
        const id = 10_000 + newcomerSeq++;
        void (async () => {
          try {
            const c = await openClient(id, await url(id));
            send(c);
            await waitFor(() => c.received === 1, 5000, "newcomer echo");
            c.closing = true;
            c.ws.close();
            newcomers.ok++;
          } catch (err) {
            newcomers.failed.push(String(err));
          }
        })();
      }, NEWCOMER_EVERY_MS);

      // Churn: extra nodes come (a reload), drain (runtime API + a reload) and go (a reload).
      const started = Date.now();
      let reloads = 0;
      let n = 0;
      const waitReload = async (before: number) => {
        await waitFor(async () => ((await control.showProc())?.master.reloads ?? 0) > before, 10_000, "a reload");
        await templater.idle();
      };
      try {
        while ((reloads < MIN_RELOADS + 2 || Date.now() - started < MIN_CHURN_MS) && Date.now() - started < CHURN_BUDGET_MS) {
          const before = (await control.showProc())!.master.reloads;
          const id = `extra-${n++}`;
          extraNodes.set(id, await startTestNode(gw.deps, { id, roomMode: "echo" }));
          await waitReload(before);
          if (n % 2 === 0) {
            const b2 = (await control.showProc())!.master.reloads;
            await gw.deps.nodes.transition(id, "draining", Date.now(), { reason: "churn" });
            await waitReload(b2);
          }
          const b3 = (await control.showProc())!.master.reloads;
          await gw.deps.nodes.remove(id, Date.now(), "churn");
          await extraNodes.get(id)!.stop();
          extraNodes.delete(id);
          await waitReload(b3);
          reloads = (await control.showProc())!.master.reloads - reloadsAtStart;
        }
      } finally {
        clearInterval(ticker);
        clearInterval(newcomerTicker);
      }

      const proc = (await control.showProc())!;
      expect(reloads).toBeGreaterThanOrEqual(MIN_RELOADS);
      expect(proc.master.failed).toBe(0);
      expect(metrics.counter("fleetgate_haproxy_reloads_total", "").get({ outcome: "ok" })).toBeGreaterThanOrEqual(MIN_RELOADS);
      // The clients' tunnels still live in the worker that accepted them: it is now an old worker.
      expect(proc.workers[0]!.pid).not.toBe(firstWorker);
      expect(proc.workers.map((w) => w.pid)).toContain(firstWorker);

      // Every frame comes back, in order, and nobody was dropped.
      await waitFor(() => clients.every((c) => c.received === c.sent), 10_000, "every echo back");
      const sent = clients.reduce((a, c) => a + c.sent, 0);
      const received = clients.reduce((a, c) => a + c.received, 0);
      const dropped = clients.filter((c) => c.droppedWith);
      console.log(`edge-reload: ${CLIENTS} clients, ${reloads} reloads in ${Date.now() - started} ms, ${sent} frames sent, ${received} received, ${dropped.length} dropped`);
      const outOfOrder = clients.reduce((a, c) => a + c.outOfOrder, 0);
      // A row of the `npm run chaos` table (scripts/chaos.ts runs this test with the chaos suite).
      reportChaos({
        scenario: `${CLIENTS} clients through ${reloads} HAProxy reloads`,
        done: `nodes added, drained and removed: ${reloads} reloads in ${((Date.now() - started) / 1000).toFixed(1)} s`,
        players: `${dropped.length} dropped, ${sent - received} of ${sent} frames lost, ${outOfOrder} out of order`,
        recoveryMs: undefined,
        ok: dropped.length === 0 && received === sent && outOfOrder === 0 && reloads >= MIN_RELOADS,
      });
      expect(dropped.map((c) => [c.id, c.droppedWith])).toEqual([]);
      expect(clients.every((c) => c.ws.readyState === WebSocket.OPEN)).toBe(true);
      expect(received).toBe(sent);
      expect(clients.reduce((a, c) => a + c.outOfOrder, 0)).toBe(0);
      expect(sent).toBeGreaterThanOrEqual(CLIENTS * Math.floor(MIN_CHURN_MS / SEND_EVERY_MS / 2));
      await waitFor(() => newcomers.ok + newcomers.failed.length === newcomerSeq, 10_000, "every newcomer done");
      console.log(`edge-reload: ${newcomers.ok} newcomers got in during the reloads, ${newcomers.failed.length} failed`);
      expect(newcomers.failed).toEqual([]);
      expect(newcomers.ok).toBeGreaterThanOrEqual(20);
    },
    CHURN_BUDGET_MS + 60_000,
  );

  test("a broken template is refused while the clients keep talking; a new client still gets in", async () => {
    const control = templater.control as HaproxyControl;
    const live = await Bun.file(edge.config.haproxyConfig).text();
    const broken = { main: DEFAULT_TEMPLATES.main, partials: { ...DEFAULT_TEMPLATES.partials, defaults: `${DEFAULT_TEMPLATES.partials.defaults}    timeout tunnel forever\n` } };
    const registry = { gateways: await gw.deps.gateways.list(Date.now()), nodes: await gw.deps.nodes.list() };
    const res = await control.apply(render(registry, templater.settings, broken).text);
    expect(res.outcome).toBe("invalid");
    expect(await Bun.file(edge.config.haproxyConfig).text()).toBe(live);

    for (const c of clients) send(c);
    await waitFor(() => clients.every((c) => c.received === c.sent), 10_000, "echoes after the refused config");
    expect(clients.filter((c) => c.droppedWith)).toEqual([]);

    const late = await openClient(CLIENTS, `ws://127.0.0.1:${edge.config.haproxyPort}/v1/connect?room=edge-late&token=${await gw.token("p_edge_late")}`);
    clients.push(late);
    send(late);
    await waitFor(() => late.received === 1, 5_000, "the late client's echo");
  }, 30_000);
});
