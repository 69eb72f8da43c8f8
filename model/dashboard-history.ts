/**
 * The dashboard's history: bounded rings in Redis (a list per source, newest first, trimmed to
 * DASHBOARD_HISTORY_POINTS and expiring when nobody writes), so a freshly opened dashboard shows
 * the last minutes at once.
 *
 * - `historyFleet`: fleet-wide samples (players, capacity, nodes by state and version, rooms,
 *   lobbies, the matchmaking queue, scaling events), one per interval: whichever gateway takes the
 *   interval's lock writes it (several replicas do not write duplicates).
 * - `historyGateway(id)`: each gateway's own counters as deltas over the interval (joins, failed
 *   joins, join p99, relayed frames) — merged by time slot for the fleet's joins/s and frames/s.
 *
 * Pure parts (parsing, merging) are exported apart from the store for table tests.
 */
import type { Keys } from "../core/keys.ts";
import type { Redis } from "../core/redis.ts";

/** One reading of a node's resource use, from its driver (keys.nodeStats). */
export interface NodeStats {
  /** When it was measured (ms since the epoch). */
  at: number;
  /** CPU use in percent of one core (200 = two cores busy). */
  cpuPercent: number;
  /** Memory in use (Docker: usage without the page cache; processes: resident set). */
  memoryBytes: number;
  /** The container's memory limit; null without one. */
  memoryLimitBytes: number | null;
}

/** A stored NodeStats, or undefined when missing or malformed. */
export function parseNodeStats(raw: string | null | undefined): NodeStats | undefined {
  if (!raw) return undefined;
  const v = parse(raw);
  if (!v) return undefined;
  const limit = v.memoryLimitBytes;
  return { at: num(v.at), cpuPercent: num(v.cpuPercent), memoryBytes: num(v.memoryBytes), memoryLimitBytes: typeof limit === "number" && Number.isFinite(limit) ? limit : null };
}

/** One fleet-wide sample. */
export interface FleetSample {
  at: number;
  players: number;
  /** Seats on ready nodes. */
  capacity: number;
  /** Nodes by state (every state present, zeros included). */
  nodes: Record<string, number>;
  /** Live (not stopped) nodes by fleet version ("active" for nodes from before versions). */
  versions: Record<string, number>;
  rooms: number;
  /** Public rooms with open seats (the lobby lists). */
  lobbies: number;
  /** Matchmaking tickets waiting in every queue. */
  queue: number;
  /** Scale-up / scale-down decisions recorded since the previous sample. */
  scaleUps: number;
  scaleDowns: number;
}

/** One gateway's counters over one interval. */
export interface GatewaySample {
  at: number;
  gateway: string;
  /** Seconds the deltas cover. */
  seconds: number;
  joins: number;
  joinsFailed: number;
  /** p99 of the joins answered in the interval (seconds), null with none. */
  joinP99: number | null;
  /** Frames relayed in both directions. */
  frames: number;
  connections: number;
}

/** The fleet's history as the dashboard charts it (oldest first). */
export interface FleetHistory {
  intervalMs: number;
  fleet: FleetSample[];
  /** Per time slot, summed over gateways: rates per second; p99 = the worst gateway's. */
  traffic: Array<{ at: number; joinsPerSec: number; failedPerSec: number; joinP99: number | null; framesPerSec: number; connections: number }>;
}

const num = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) ? v : 0);
const counts = (v: unknown): Record<string, number> => {
  const out: Record<string, number> = {};
  if (v && typeof v === "object") for (const [k, x] of Object.entries(v)) if (typeof x === "number" && Number.isFinite(x)) out[k.slice(0, 64)] = x;
  return out;
};
function parse(raw: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(raw);
    return v && typeof v === "object" && !Array.isArray(v) && typeof (v as { at?: unknown }).at === "number" ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Fleet samples from their ring (newest first), oldest first; malformed entries are skipped. */
export function parseFleetSamples(raw: readonly string[]): FleetSample[] {
  const out: FleetSample[] = [];
  for (const r of raw) {
    const v = parse(r);
    if (!v) continue;
    out.push({
      at: num(v.at),
      players: num(v.players),
      capacity: num(v.capacity),
      nodes: counts(v.nodes),
      versions: counts(v.versions),
      rooms: num(v.rooms),
      lobbies: num(v.lobbies),
      queue: num(v.queue),
      scaleUps: num(v.scaleUps),
      scaleDowns: num(v.scaleDowns),
    });
  }
  return out.sort((a, b) => a.at - b.at);
}

export function parseGatewaySamples(raw: readonly string[]): GatewaySample[] {
  const out: GatewaySample[] = [];
  for (const r of raw) {
    const v = parse(r);
    if (!v) continue;
    out.push({
      at: num(v.at),
      gateway: typeof v.gateway === "string" ? v.gateway.slice(0, 128) : "",
      seconds: num(v.seconds) || 1,
      joins: num(v.joins),
      joinsFailed: num(v.joinsFailed),
      joinP99: typeof v.joinP99 === "number" && Number.isFinite(v.joinP99) ? v.joinP99 : null,
      frames: num(v.frames),
      connections: num(v.connections),
    });
  }
  return out.sort((a, b) => a.at - b.at);
}

/**
 * Merges the gateways' samples into one series: samples fall into slots of `intervalMs` (by their
 * time), rates are summed over gateways, p99 is the highest gateway's (a fleet p99 cannot be
 * rebuilt from per-gateway p99s; the worst one is the honest upper bound).
 */
export function mergeTraffic(samples: readonly GatewaySample[], intervalMs: number): FleetHistory["traffic"] {
  const slots = new Map<number, { at: number; joins: number; failed: number; p99: number | null; frames: number; connections: number }>();
  for (const s of samples) {
    const slot = Math.round(s.at / intervalMs);
    let o = slots.get(slot);
    if (!o) {
      o = { at: slot * intervalMs, joins: 0, failed: 0, p99: null, frames: 0, connections: 0 };
      slots.set(slot, o);
    }
    const secs = s.seconds > 0 ? s.seconds : intervalMs / 1000;
    o.joins += s.joins / secs;
    o.failed += s.joinsFailed / secs;
    o.frames += s.frames / secs;
    o.connections += s.connections;
    if (s.joinP99 !== null) o.p99 = o.p99 === null ? s.joinP99 : Math.max(o.p99, s.joinP99);
  }
  const round = (x: number) => Math.round(x * 1000) / 1000;
  return [...slots.values()]
    .sort((a, b) => a.at - b.at)
    .map((o) => ({ at: o.at, joinsPerSec: round(o.joins), failedPerSec: round(o.failed), joinP99: o.p99, framesPerSec: round(o.frames), connections: o.connections }));
}

/** Reads and writes the rings. */
export class HistoryStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    /** Samples kept per ring (DASHBOARD_HISTORY_POINTS). */
    readonly points: number,
    /** DASHBOARD_HISTORY_INTERVAL in ms. */
    readonly intervalMs: number,
  ) {}

  /** A ring nobody writes to disappears after twice its span. */
  private get ttlMs(): number {
    return Math.max(60_000, this.points * this.intervalMs * 2);
  }

  /**
   * Takes this interval's fleet-sample turn: true for exactly one caller per interval (SET NX with
   * a TTL a little under the interval, so the next interval's turn is free again).
   */
  async claimFleetTurn(gatewayId: string): Promise<boolean> {
    const ok = await this.redis.set(this.keys.historyFleetLock, gatewayId, "PX", Math.max(1, Math.floor(this.intervalMs * 0.9)), "NX");
    return ok === "OK";
  }

  async appendFleet(sample: FleetSample): Promise<void> {
    await this.redis.multi().lpush(this.keys.historyFleet, JSON.stringify(sample)).ltrim(this.keys.historyFleet, 0, this.points - 1).pexpire(this.keys.historyFleet, this.ttlMs).exec();
  }

  async appendGateway(sample: GatewaySample): Promise<void> {
    const key = this.keys.historyGateway(sample.gateway);
    await this.redis
      .multi()
      .lpush(key, JSON.stringify(sample))
      .ltrim(key, 0, this.points - 1)
      .pexpire(key, this.ttlMs)
      .sadd(this.keys.historyGateways, sample.gateway)
      .pexpire(this.keys.historyGateways, this.ttlMs)
      .exec();
  }

  /** The whole history, oldest first. Gateways whose ring expired are dropped from the index. */
  async read(): Promise<FleetHistory> {
    const [fleetRaw, ids] = await Promise.all([this.redis.lrange(this.keys.historyFleet, 0, this.points - 1), this.redis.smembers(this.keys.historyGateways)]);
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.lrange(this.keys.historyGateway(id), 0, this.points - 1);
    const res = ids.length ? ((await pipe.exec()) ?? []) : [];
    const samples: GatewaySample[] = [];
    const gone: string[] = [];
    res.forEach(([err, v], i) => {
      if (err || !Array.isArray(v)) return;
      if (v.length === 0) gone.push(ids[i]!);
      samples.push(...parseGatewaySamples(v as string[]));
    });
    if (gone.length) await this.redis.srem(this.keys.historyGateways, ...gone);
    return { intervalMs: this.intervalMs, fleet: parseFleetSamples(fleetRaw), traffic: mergeTraffic(samples, this.intervalMs) };
  }
}
