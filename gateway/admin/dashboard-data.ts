/**
 * What the capacity dashboard shows, in one snapshot. The capacity numbers come from
 * `summarizeCapacity` — the same function behind `/v1/capacity` — so both always agree.
 */
import type { Keys } from "../../core/keys.ts";
import type { NodeRegistry } from "../../model/node-registry.ts";
import type { Redis } from "../../core/redis.ts";
import { publicNode, type PublicNode } from "../../core/types.ts";
import { parseTemplaterEvent, type TemplaterEvent } from "../../model/templater-events.ts";
import type { SchedulerClient } from "../../model/jobs.ts";
import { summarizeCapacity, type CapacitySnapshot } from "../ops/capacity.ts";
import { parseNodeStats, type NodeStats } from "../../model/dashboard-history.ts";
import { RedisRolloutStore, defaultVersion, summarizeVersions } from "../../model/rollouts.ts";
import { parseScaleEvents, type ScaleEvent } from "../../model/scale-state.ts";

export type { ScaleEvent };

/** Everything on the dashboard at one moment. */
export interface DashboardSnapshot {
  /** When it was taken (ms since the epoch). */
  at: number;
  /** Exactly what `/v1/capacity` answers (with its per-version breakdown). */
  capacity: CapacitySnapshot & { versions: Record<string, VersionCounts> };
  /** Every node (as `/v1/servers` shows them: no tokens). */
  nodes: PublicNode[];
  /** Most recent first. */
  scaleEvents: ScaleEvent[];
  /** The templater's last reload attempt, if any. */
  lastReload: TemplaterEvent | null;
  /** CPU / memory per node id, while the scheduler samples them (a dashboard is open). */
  nodeStats: Record<string, NodeStats>;
  /** Live rooms, public rooms with open seats, and matchmaking tickets waiting (by "mode|region"). */
  rooms: RoomAndQueueCounts;
}

export interface RoomAndQueueCounts {
  rooms: number;
  lobbies: number;
  queue: number;
  queues: Record<string, number>;
}

/** Pairs looked at per index (lobbies, ticket queues): a bound on one snapshot's Redis work. */
const MAX_PAIRS = 200;

/** Live rooms (keys.rooms), open public rooms (every lobby zset) and waiting tickets (every queue). */
export async function roomAndQueueCounts(redis: Redis, keys: Keys): Promise<RoomAndQueueCounts> {
  const [rooms, lobbyPairs, queuePairs] = await Promise.all([redis.scard(keys.rooms), redis.smembers(keys.lobbies), redis.smembers(keys.ticketQueues)]);
  const split = (pair: string): [string, string] => {
    const i = pair.indexOf("|");
    return i < 0 ? [pair, ""] : [pair.slice(0, i), pair.slice(i + 1)];
  };
  const pipe = redis.pipeline();
  const lobbies: string[] = [];
  const queues: string[] = [];
  for (const p of lobbyPairs.slice(0, MAX_PAIRS)) {
    try {
      pipe.zcard(keys.lobby(...split(p)));
      lobbies.push(p);
    } catch {
      /* a pair the key builder refuses: skipped */
    }
  }
  for (const p of queuePairs.slice(0, MAX_PAIRS)) {
    try {
      pipe.zcard(keys.ticketQueue(...split(p)));
      queues.push(p);
    } catch {
      /* skipped */
    }
  }
  const res = lobbies.length + queues.length > 0 ? ((await pipe.exec()) ?? []) : [];
  const at = (i: number) => {
    const [e, v] = res[i] ?? [null, 0];
    return !e && typeof v === "number" ? v : 0;
  };
  const byQueue: Record<string, number> = {};
  queues.forEach((q, i) => (byQueue[q] = at(lobbies.length + i)));
  return {
    rooms,
    lobbies: lobbies.reduce((a, _p, i) => a + at(i), 0),
    queue: Object.values(byQueue).reduce((a, b) => a + b, 0),
    queues: byQueue,
  };
}

/** What the node view shows: the node, its latest stats and the tail of its log. */
export interface NodeDetail {
  node: PublicNode;
  stats: NodeStats | null;
  /** The log tail as the scheduler last stored it; null while none is stored yet. */
  logs: string | null;
}

export async function nodeDetail(deps: DashboardSources, id: string): Promise<NodeDetail | undefined> {
  const node = await deps.nodes.get(id);
  if (!node) return undefined;
  const [stats, logs] = await Promise.all([deps.redis.get(deps.keys.nodeStats(id)), deps.redis.get(deps.keys.nodeLogs(id))]);
  return { node: publicNode(node), stats: parseNodeStats(stats) ?? null, logs };
}

/** How many scale events the dashboard lists. */
export const SCALE_EVENTS_SHOWN = 20;

export { parseScaleEvents };

/** One fleet version's share, as `/v1/capacity` lists it. */
export interface VersionCounts {
  state: string;
  image: string;
  nodes: number;
  rooms: number;
  players: number;
}

export interface DashboardSources {
  config: { nodeImage: string };
  nodes: NodeRegistry;
  scheduler: SchedulerClient;
  redis: Redis;
  keys: Keys;
}

export async function dashboardSnapshot(deps: DashboardSources, now: number): Promise<DashboardSnapshot> {
  const versions = new RedisRolloutStore(deps.redis, deps.keys, defaultVersion(deps.config.nodeImage));
  const [nodes, queues, rawEvents, rawReload, rooms, routing] = await Promise.all([
    deps.nodes.list(),
    deps.scheduler.queuedJobs(),
    deps.redis.lrange(deps.keys.scaleEvents, 0, SCALE_EVENTS_SHOWN - 1),
    deps.redis.get(deps.keys.templaterLast),
    roomAndQueueCounts(deps.redis, deps.keys),
    versions.routing(),
  ]);
  // The same breakdown /v1/capacity adds (gateway/ops/routes.ts), from the same functions.
  const byVersion = Object.fromEntries(summarizeVersions(routing, nodes).map((v) => [v.version, { state: v.state, image: v.image, nodes: v.nodes, rooms: v.rooms, players: v.players }]));
  const live = nodes.filter((n) => n.state !== "stopped");
  const rawStats = live.length ? await deps.redis.mget(...live.map((n) => deps.keys.nodeStats(n.id))) : [];
  const nodeStats: Record<string, NodeStats> = {};
  live.forEach((n, i) => {
    const st = parseNodeStats(rawStats[i]);
    if (st) nodeStats[n.id] = st;
  });
  return {
    at: now,
    capacity: { ...summarizeCapacity(nodes, queues), versions: byVersion },
    nodes: nodes.map(publicNode),
    scaleEvents: parseScaleEvents(rawEvents).slice(0, SCALE_EVENTS_SHOWN),
    lastReload: parseTemplaterEvent(rawReload) ?? null,
    nodeStats,
    rooms,
  };
}
