/**
 * Writes this gateway's share of the dashboard history every DASHBOARD_HISTORY_INTERVAL (see
 * model/dashboard-history.ts): its own joins, failed joins, join p99 and relayed frames over the
 * interval (read from its Prometheus metrics, so the chart and /metrics agree), and — when it wins
 * the interval's turn — the fleet-wide sample (players vs capacity, nodes by state and version,
 * rooms, lobbies, the matchmaking queue, scaling decisions). Runs whether or not a dashboard is
 * open, so an opened page shows the last minutes.
 */
import type { Clock, TimerHandle } from "../../core/clock.ts";
import type { Keys } from "../../core/keys.ts";
import type { Logger } from "../../core/log.ts";
import { Counter, Gauge, Histogram, quantileOf, type MetricsRegistry } from "../../core/metrics.ts";
import type { Redis } from "../../core/redis.ts";
import type { NodeRegistry } from "../../model/node-registry.ts";
import { HistoryStore, parseFleetSamples, type FleetSample, type GatewaySample } from "../../model/dashboard-history.ts";
import { summarizeCapacity } from "../ops/capacity.ts";
import { parseScaleEvents, roomAndQueueCounts } from "./dashboard-data.ts";

export interface HistorySamplerDeps {
  keys: Keys;
  redis: Redis;
  clock: Clock;
  log: Logger;
  metrics: MetricsRegistry;
  nodes: NodeRegistry;
  gatewayId: string;
  config: { dashboardHistoryIntervalMs: number; dashboardHistoryPoints: number };
}

/** Counter and histogram readings at one moment (for deltas). */
interface Reading {
  at: number;
  joins: number;
  joinsOk: number;
  frames: number;
  hist: { counts: number[]; count: number } | undefined;
}

export class HistorySampler {
  readonly store: HistoryStore;
  private timer: TimerHandle | undefined;
  private last: Reading | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly deps: HistorySamplerDeps) {
    this.store = new HistoryStore(deps.redis, deps.keys, deps.config.dashboardHistoryPoints, deps.config.dashboardHistoryIntervalMs);
  }

  start(): void {
    if (this.timer) return;
    this.last = this.read();
    this.timer = this.deps.clock.setInterval(() => {
      // One sample at a time: a slow Redis skips a beat rather than piling samples up.
      if (this.running) return;
      this.running = this.sample()
        .then(() => undefined)
        .catch((err: unknown) => this.deps.log.debug("history sample failed", { err }))
        .finally(() => (this.running = undefined));
    }, this.deps.config.dashboardHistoryIntervalMs);
  }

  async stop(): Promise<void> {
    this.timer?.cancel();
    this.timer = undefined;
    await this.running;
  }

  private read(): Reading {
    const m = this.deps.metrics;
    const joins = m.find("fleetgate_joins_total");
    const frames = m.find("fleetgate_relayed_frames_total");
    const hist = m.find("fleetgate_join_seconds");
    const j = joins instanceof Counter ? joins : undefined;
    return {
      at: this.deps.clock.now(),
      joins: j?.total() ?? 0,
      // `existing`: the player already had a seat — answered, not failed.
      joinsOk: (j?.get({ result: "ok" }) ?? 0) + (j?.get({ result: "existing" }) ?? 0),
      frames: frames instanceof Counter ? frames.total() : 0,
      hist: hist instanceof Histogram ? hist.snapshot() : undefined,
    };
  }

  /** One interval's samples (exposed for tests, which call it directly). */
  async sample(): Promise<{ gateway: GatewaySample; fleet?: FleetSample }> {
    const now = this.read();
    const prev = this.last ?? now;
    this.last = now;
    const hist = this.deps.metrics.find("fleetgate_join_seconds");
    let joinP99: number | null = null;
    if (hist instanceof Histogram && now.hist && prev.hist) {
      const counts = now.hist.counts.map((c, i) => c - (prev.hist!.counts[i] ?? 0));
      joinP99 = quantileOf(hist.buckets, counts, now.hist.count - prev.hist.count, 0.99) ?? null;
    }
    const conns = this.deps.metrics.find("fleetgate_gateway_connections");
    if (conns instanceof Gauge) conns.runCollector();
    const joins = now.joins - prev.joins;
    const gateway: GatewaySample = {
      at: now.at,
      gateway: this.deps.gatewayId,
      seconds: Math.max(0.001, (now.at - prev.at) / 1000),
      joins,
      joinsFailed: Math.max(0, joins - (now.joinsOk - prev.joinsOk)),
      joinP99,
      frames: now.frames - prev.frames,
      connections: conns instanceof Gauge ? conns.get() : 0,
    };
    await this.store.appendGateway(gateway);
    let fleet: FleetSample | undefined;
    if (await this.store.claimFleetTurn(this.deps.gatewayId)) {
      fleet = await this.fleetSample(now.at);
      await this.store.appendFleet(fleet);
    }
    return { gateway, ...(fleet ? { fleet } : {}) };
  }

  private async fleetSample(at: number): Promise<FleetSample> {
    const { redis, keys } = this.deps;
    const [nodes, counts, rawEvents, previous] = await Promise.all([
      this.deps.nodes.list(),
      roomAndQueueCounts(redis, keys),
      redis.lrange(keys.scaleEvents, 0, 49),
      redis.lindex(keys.historyFleet, 0),
    ]);
    const cap = summarizeCapacity(nodes, {});
    const versions: Record<string, number> = {};
    for (const n of nodes) if (n.state !== "stopped") versions[n.version || "active"] = (versions[n.version || "active"] ?? 0) + 1;
    // Scaling decisions since the ring's newest sample (whichever gateway wrote it).
    const since = parseFleetSamples(previous ? [previous] : [])[0]?.at ?? at - this.deps.config.dashboardHistoryIntervalMs;
    const events = parseScaleEvents(rawEvents).filter((e) => e.at > since && e.at <= at);
    return {
      at,
      players: cap.players,
      capacity: cap.capacity,
      nodes: { ...cap.nodes },
      versions,
      rooms: counts.rooms,
      lobbies: counts.lobbies,
      queue: counts.queue,
      scaleUps: events.filter((e) => e.action === "up" || e.action === "replace").reduce((a, e) => a + Math.max(1, e.count), 0),
      scaleDowns: events.filter((e) => e.action === "down").reduce((a, e) => a + Math.max(1, e.count), 0),
    };
  }
}
