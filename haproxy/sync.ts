/**
 * The templater: keeps one HAProxy in step with the registry.
 *
 * - Follows node events (NodeRegistry.subscribe) and gateway events (keys.gatewayEventsChannel);
 *   each change asks for a render, and bursts are debounced into one reload (TEMPLATER_DEBOUNCE).
 * - A node that starts draining (or stops) is flipped through the runtime API at once, before the
 *   next render, so no new player lands on it while the debounce window is open.
 * - A periodic full resync (TEMPLATER_RESYNC) re-renders from scratch and re-applies any node
 *   admin state the registry changed, so a missed pub/sub message (or a gateway that died without
 *   saying so) heals. A server an operator drained by hand on the stats page stays drained until
 *   its node's registry state changes.
 * - A gateway replica leaves the config when its heartbeat expires: a render is scheduled for the
 *   moment the oldest listed heartbeat passes the registry's TTL (not only at the next resync).
 * - A Redis outage never empties `backend gateways`: while Redis is unreachable nothing is
 *   rendered, and for one TTL after it is back the replicas of the last render stay listed even
 *   if their records expired meanwhile — they re-register the moment Redis is back, and a replica
 *   that really died leaves at the end of that TTL (HAProxy's health checks skip it meanwhile).
 * - Every swap that is not a no-op is reported: log, fleetgate_haproxy_reloads_total{outcome}, and
 *   a TemplaterEvent on keys.templaterEventsChannel (the dashboard shows the last one).
 */
import type { Clock, TimerHandle } from "../core/clock.ts";
import type { Config } from "../core/config.ts";
import type { GatewayRegistry } from "../model/gateway-registry.ts";
import type { Keys } from "../core/keys.ts";
import type { Logger } from "../core/log.ts";
import type { MetricsRegistry } from "../core/metrics.ts";
import type { NodeRegistry } from "../model/node-registry.ts";
import type { Redis } from "../core/redis.ts";
import { within } from "../core/process-lifecycle.ts";
import type { GatewayRecord, NodeEvent } from "../core/types.ts";
import { HaproxyControl, type ApplyResult, type EdgeControl } from "./control.ts";
import { adminStateOf } from "./master-cli.ts";
import type { TemplaterEvent } from "../model/templater-events.ts";
import { templaterMetrics } from "./metrics.ts";
import { ReloadDebouncer } from "./reload-debouncer.ts";
import { DEFAULT_TEMPLATES, edgeSettings, nodeAdminState, render, type EdgeSettings, type EdgeTemplates, type RenderResult, type ServerAdminState } from "./render.ts";
import { resolveStatsPassword } from "./stats-password.ts";

/** How long each step of stop() may wait for Redis. */
const STOP_STEP_MS = 1000;

/** The backend that lists every game node. */
export const NODES_BACKEND = "nodes";

/** Everything the templater needs; built by haproxy/main.ts, `npm start`, or a test. */
export interface TemplaterDeps {
  config: Config;
  keys: Keys;
  /** Command connection (publishes templater events, keeps the last one). */
  redis: Redis;
  /** Makes a new connection for the gateway-events subscription; the templater closes it. */
  newRedis: () => Redis;
  nodes: NodeRegistry;
  gateways: GatewayRegistry;
  clock: Clock;
  log: Logger;
  metrics: MetricsRegistry;
  /** The HAProxy to drive. Default: a HaproxyControl on HAPROXY_CONFIG in `haproxyMode`. */
  control?: EdgeControl;
  /** How a started HAProxy runs when `control` is not given. Default: config.haproxyMode. */
  haproxyMode?: "daemon" | "child";
  /** Overrides the settings derived from config (tests). */
  settings?: EdgeSettings;
  /** Overrides the shipped templates (tests). */
  templates?: EdgeTemplates;
}

/** What one sync did. */
export interface SyncResult {
  outcome: ApplyResult["outcome"] | "render_error";
  render?: RenderResult;
  apply?: ApplyResult;
  error?: string;
}

export interface Templater {
  readonly settings: EdgeSettings;
  readonly control: EdgeControl;
  /** The last swap that was not a no-op. */
  readonly lastEvent: TemplaterEvent | undefined;
  /** The port /metrics listens on, when on. */
  readonly metricsPort: number | undefined;
  /** Renders and applies now (serialised with debounced runs). */
  syncNow(reason?: string): Promise<SyncResult>;
  /** Resolves once no debounced reload is waiting or running. */
  idle(): Promise<void>;
  /** Stops following the registry (HAProxy keeps running; see HaproxyControl.stop). */
  stop(): Promise<void>;
}

/** Starts the templater: first render and (re)load, then follows the registry. */
export async function startTemplater(deps: TemplaterDeps): Promise<Templater> {
  const { config, keys, clock } = deps;
  const log = deps.log.child("templater");
  const metrics = templaterMetrics(deps.metrics);
  const settings = deps.settings ?? edgeSettings(config, { statsPassword: await resolveStatsPassword(config, log) });
  const control =
    deps.control ??
    new HaproxyControl({
      bin: config.haproxyBin,
      paths: settings.paths,
      clock,
      log: log.child("haproxy"),
      reloadTimeoutMs: config.haproxyReloadTimeoutMs,
      mode: deps.haproxyMode ?? config.haproxyMode,
    });
  const templates = deps.templates ?? DEFAULT_TEMPLATES;

  /** Node servers in the live config. */
  let liveNames = new Set<string>();
  /**
   * The admin state the templater last put (or found) each node server in. Only a change of the
   * desired state is enforced: an operator who drains a server by hand on the stats page keeps
   * it drained until that node's registry state changes (a resync does not undo it).
   */
  const enforced = new Map<string, ServerAdminState>();
  /**
   * Admin states from node events, with a sequence number. A sync lists the registry at some
   * sequence; an event numbered after that is newer than the render and wins over it (otherwise a
   * drain that lands mid-reload would be undone by the reconcile that follows the reload).
   */
  let eventSeq = 0;
  const eventAdmin = new Map<string, { admin: ServerAdminState; seq: number }>();
  let lastEvent: TemplaterEvent | undefined;
  let chain: Promise<unknown> = Promise.resolve();
  /** The gateways of the last applied render (kept across a Redis outage, see the header). */
  let renderedGateways: GatewayRecord[] = [];
  /** When Redis came back after an outage (undefined: no recent outage). */
  let redisBackAt: number | undefined;
  let redisDown = false;
  /** The render scheduled for when the oldest listed gateway heartbeat (or the outage grace) expires. */
  let expiryTimer: TimerHandle | undefined;
  let stopped = false;
  const gatewayTtlMs = deps.gateways.ttlMs;

  /** Lists live gateways; right after a Redis outage, keeps the last render's ones for one TTL. */
  async function listGateways(now: number): Promise<GatewayRecord[]> {
    const live = await deps.gateways.list(now);
    if (redisBackAt === undefined) return live;
    if (now - redisBackAt >= gatewayTtlMs) {
      redisBackAt = undefined;
      return live;
    }
    const ids = new Set(live.map((g) => g.id));
    const kept = renderedGateways.filter((g) => !ids.has(g.id));
    if (kept.length > 0) log.info("keeping gateways through the Redis outage grace", { gateways: kept.map((g) => g.id), untilMs: redisBackAt + gatewayTtlMs - now });
    return [...live, ...kept].sort((a, b) => a.id.localeCompare(b.id));
  }

  /** Schedules a render at the next moment the gateway list can change by time alone. */
  function scheduleExpiry(gateways: readonly GatewayRecord[]): void {
    expiryTimer?.cancel();
    expiryTimer = undefined;
    if (stopped) return;
    const now = clock.now();
    const times = gateways.map((g) => g.lastSeenAt + gatewayTtlMs).filter((t) => Number.isFinite(t) && t > now);
    if (redisBackAt !== undefined) times.push(redisBackAt + gatewayTtlMs);
    if (times.length === 0) return;
    // A little after the expiry, so the list taken then no longer has the replica.
    const at = Math.min(...times) + 20;
    expiryTimer = clock.setTimeout(() => {
      expiryTimer = undefined;
      debouncer.request("gateway heartbeat expiry");
    }, Math.max(0, at - now));
  }

  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = chain.then(fn, fn);
    chain = run.catch(() => undefined);
    return run;
  };

  async function report(ev: TemplaterEvent): Promise<void> {
    lastEvent = ev;
    metrics.reloads.inc({ outcome: ev.outcome });
    metrics.lastReload.set(ev.at / 1000, { outcome: ev.outcome });
    if (ev.outcome === "ok") log.info("HAProxy reloaded", { gateways: ev.gateways, nodes: ev.nodes, ms: ev.durationMs, reasons: ev.reasons.slice(0, 5) });
    else log.error(`HAProxy config ${ev.outcome}; the old config keeps serving`, { error: ev.error, reasons: ev.reasons.slice(0, 5) });
    const raw = JSON.stringify(ev);
    try {
      await deps.redis.multi().set(keys.templaterLast, raw).publish(keys.templaterEventsChannel, raw).exec();
    } catch (err) {
      log.warn("could not publish templater event", { err });
    }
  }

  /**
   * Puts every node server whose desired admin state is not the one last enforced into it (only
   * where HAProxy's actual state differs). After a fresh start nothing counts as enforced.
   */
  async function reconcileAdminStates(desired: ReadonlyMap<string, ServerAdminState>): Promise<void> {
    for (const name of [...enforced.keys()]) if (!desired.has(name)) enforced.delete(name);
    const changed = [...desired].filter(([name, want]) => enforced.get(name) !== want);
    if (changed.length === 0) return;
    let actual: Map<string, ServerAdminState>;
    try {
      actual = new Map((await control.serversState(NODES_BACKEND)).map((s) => [s.server, adminStateOf(s.adminState)]));
    } catch (err) {
      log.warn("could not read server states", { err });
      return;
    }
    for (const [name, want] of changed) {
      const now = actual.get(name);
      if (now === undefined) continue;
      if (now !== want) await setAdmin(name, want, "reconcile");
      else enforced.set(name, want);
    }
  }

  async function setAdmin(server: string, state: ServerAdminState, why: string): Promise<void> {
    try {
      await control.setServerState(NODES_BACKEND, server, state);
      enforced.set(server, state);
      metrics.runtimeCommands.inc({ state, outcome: "ok" });
      log.info(`server ${NODES_BACKEND}/${server} → ${state}`, { why });
    } catch (err) {
      enforced.delete(server); // unknown now: the next sync looks again
      metrics.runtimeCommands.inc({ state, outcome: "error" });
      log.warn(`could not set ${NODES_BACKEND}/${server} to ${state}`, { err, why });
    }
  }

  async function syncOnce(reasons: readonly string[]): Promise<SyncResult> {
    const started = clock.now();
    const listedAt = eventSeq;
    const [gateways, nodes] = await Promise.all([listGateways(clock.now()), deps.nodes.list()]);
    let r: RenderResult;
    try {
      r = render({ gateways, nodes }, settings, templates);
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      await report({ type: "templater", outcome: "render_error", at: clock.now(), durationMs: clock.now() - started, reasons: [...reasons], gateways: gateways.length, nodes: nodes.length, skipped: 0, error });
      return { outcome: "render_error", error };
    }
    metrics.skipped.set(r.skipped.length);
    if (r.skipped.length > 0) log.warn("registry entries left out of the HAProxy config", { skipped: r.skipped.slice(0, 10) });

    const res = await control.apply(r.text);
    if (res.outcome === "ok" || res.outcome === "unchanged") {
      const desired = new Map<string, ServerAdminState>();
      for (const n of r.nodes) {
        const ev = eventAdmin.get(n.name);
        desired.set(n.name, ev && ev.seq > listedAt ? ev.admin : n.admin);
      }
      for (const [id, ev] of eventAdmin) if (ev.seq <= listedAt) eventAdmin.delete(id);
      liveNames = new Set(desired.keys());
      const renderedNames = new Set(r.gateways.map((g) => g.name));
      renderedGateways = gateways.filter((g) => renderedNames.has(g.id));
      scheduleExpiry(gateways);
      if (res.started) enforced.clear();
      metrics.servers.set(r.gateways.length, { backend: "gateways" });
      metrics.servers.set(r.nodes.length, { backend: NODES_BACKEND });
      await reconcileAdminStates(desired);
    }
    if (res.outcome !== "unchanged") {
      metrics.reloadSeconds.observe(res.durationMs / 1000);
      await report({
        type: "templater",
        outcome: res.outcome,
        at: clock.now(),
        durationMs: res.durationMs,
        reasons: [...reasons],
        gateways: r.gateways.length,
        nodes: r.nodes.length,
        skipped: r.skipped.length,
        ...(res.error ? { error: res.error } : {}),
        ...(res.reloads !== undefined ? { reloads: res.reloads } : {}),
        ...(res.workerPid !== undefined ? { workerPid: res.workerPid } : {}),
      });
    }
    return { outcome: res.outcome, render: r, apply: res, ...(res.error ? { error: res.error } : {}) };
  }

  const runSync = (reasons: readonly string[]) =>
    serial(() =>
      syncOnce(reasons).catch((err: unknown): SyncResult => {
        // Registry unreachable and the like: the next event or resync tries again.
        log.error("sync failed", { err });
        return { outcome: "failed", error: String(err) };
      }),
    );

  const debouncer = new ReloadDebouncer(clock, config.templaterDebounceMs, async (reasons) => {
    await runSync(reasons);
  });

  function onNodeEvent(e: NodeEvent): void {
    if (e.to !== undefined) {
      const want = nodeAdminState(e.to);
      eventAdmin.set(e.nodeId, { admin: want, seq: ++eventSeq });
      // At once, not after the debounce: a draining node must stop taking players now.
      if (liveNames.has(e.nodeId) && enforced.get(e.nodeId) !== want) {
        enforced.set(e.nodeId, want);
        void setAdmin(e.nodeId, want, `node ${e.from ?? "new"} → ${e.to}`);
      }
    } else {
      eventAdmin.delete(e.nodeId);
    }
    debouncer.request(`node ${e.nodeId} ${e.from ?? "new"}→${e.to ?? "deleted"}`);
  }

  // Redis outages: nothing renders while it is gone (listing fails); when it is back, a render at
  // once, with the grace of listGateways.
  deps.redis.on("reconnecting", () => {
    redisDown = true;
  });
  deps.redis.on("error", () => {
    redisDown = true;
  });
  deps.redis.on("ready", () => {
    if (!redisDown) return;
    redisDown = false;
    redisBackAt = clock.now();
    debouncer.request("redis back");
  });

  // First render before following events, so HAProxy runs (or is attached) when this returns.
  const first = await runSync(["start"]);
  if (first.outcome !== "ok" && first.outcome !== "unchanged") log.error("initial HAProxy config not applied", { outcome: first.outcome, error: first.error });

  const unsubscribeNodes = await deps.nodes.subscribe(onNodeEvent);
  const sub = deps.newRedis();
  sub.on("message", (channel: string, msg: string) => {
    if (channel !== keys.gatewayEventsChannel) return;
    let what = "gateway change";
    try {
      const e = JSON.parse(msg) as { gatewayId?: unknown; change?: unknown };
      what = `gateway ${String(e.gatewayId)} ${String(e.change)}`;
    } catch {
      /* any message on the channel means "look again" */
    }
    debouncer.request(what);
  });
  await sub.subscribe(keys.gatewayEventsChannel);

  const resync: TimerHandle = clock.setInterval(() => {
    metrics.resyncs.inc();
    debouncer.request("resync");
  }, config.templaterResyncMs);

  let server: ReturnType<typeof Bun.serve> | undefined;
  if (config.templaterMetricsPort !== 0) {
    server = Bun.serve({
      hostname: "127.0.0.1",
      port: config.templaterMetricsPort,
      fetch(req) {
        const path = new URL(req.url).pathname;
        if (path === "/metrics") return deps.metrics.render().then((text) => new Response(text, { headers: { "content-type": deps.metrics.contentType } }));
        if (path === "/health") return Response.json({ status: "ok" });
        return Response.json({ error: { code: "NOT_FOUND", message: "not found" } }, { status: 404 });
      },
    });
    log.info(`templater metrics on http://127.0.0.1:${server.port}/metrics`);
  }

  return {
    settings,
    control,
    get lastEvent() {
      return lastEvent;
    },
    metricsPort: server?.port,
    syncNow: (reason = "manual") => runSync([reason]),
    idle: async () => {
      await debouncer.idle();
      await chain;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      expiryTimer?.cancel();
      resync.cancel();
      debouncer.stop();
      // Bounded: with Redis gone an UNSUBSCRIBE (and a sync waiting on a listing) never answers.
      const step = redisDown ? 200 : STOP_STEP_MS;
      await within(unsubscribeNodes().catch(() => {}), step, undefined);
      await within(sub.unsubscribe(keys.gatewayEventsChannel).catch(() => {}), step, undefined);
      sub.disconnect();
      server?.stop(true);
      await within(chain, step, undefined);
    },
  };
}
