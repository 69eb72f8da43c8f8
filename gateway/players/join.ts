/**
 * Player join: a room of its own for the player, on a ready node with a free seat (one atomic
 * Lua step reserves the seat and places the room). When no node has one, the join asks the
 * scheduler for a node (deterministic request id: the same join never asks twice) and waits in
 * the shared loop (model/placement/wait-for-node.ts) — woken by node events, bounded by
 * JOIN_WAIT_TIMEOUT — then answers 503 NO_CAPACITY.
 */
import { randomBytes } from "node:crypto";
import type { Clock } from "../../core/clock.ts";
import type { Config } from "../../core/config.ts";
import { noCapacity } from "../../core/errors.ts";
import type { Keys } from "../../core/keys.ts";
import type { Logger } from "../../core/log.ts";
import type { Counter, Histogram, MetricsRegistry } from "../../core/metrics.ts";
import type { NodeRegistry } from "../../model/node-registry.ts";
import type { Redis } from "../../core/redis.ts";
import type { SchedulerClient } from "../../model/jobs.ts";
import type { RedisPlacement } from "../../model/placement/redis-placement.ts";
import type { NodeChangeWaiter } from "./node-events.ts";
import type { SessionStore, StoredSession } from "../../model/sessions/session-store.ts";
import { openRegions, type RegionRanking } from "../../model/placement/region-choice.ts";
import { decideCapacity, waitForNode } from "../../model/placement/wait-for-node.ts";

/** Room codes of player sessions start with this; only the session's player may connect to one. */
export const SESSION_ROOM_PREFIX = "s-";

export interface JoinDeps {
  config: Config;
  keys: Keys;
  redis: Redis;
  clock: Clock;
  log: Logger;
  metrics: MetricsRegistry;
  nodes: NodeRegistry;
  scheduler: SchedulerClient;
  placement: RedisPlacement;
  sessions: SessionStore;
  waiter: NodeChangeWaiter;
}

export interface JoinRequest {
  playerId: string;
  /** The player's region (the first choice when `ranking` is given). */
  region: string;
  mode: string;
  /**
   * The player's ranked regions (region-choice.ts): the session goes to the first choice, and to a
   * fallback only once the join has waited REGION_FALLBACK_WAIT. Unset: `region` preferred, else any node.
   */
  ranking?: RegionRanking;
}


export class JoinService {
  private readonly joins: Counter;
  private readonly joinSeconds: Histogram;

  constructor(private readonly deps: JoinDeps) {
    this.joins = deps.metrics.counter("fleetgate_joins_total", "Player joins, by result", ["result"]);
    this.joinSeconds = deps.metrics.histogram("fleetgate_join_seconds", "Time to answer a player join (incl. waiting for a node)", [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30]);
  }

  async join(req: JoinRequest): Promise<StoredSession> {
    const { clock, config } = this.deps;
    const started = clock.now();
    const existing = await this.deps.sessions.forPlayer(req.playerId, started);
    if (existing) {
      this.joins.inc({ result: "existing" });
      return existing;
    }
    const sessionId = `s_${randomBytes(12).toString("base64url")}`;
    const roomCode = `${SESSION_ROOM_PREFIX}${randomBytes(12).toString("base64url")}`;
    const deadline = started + config.joinWaitTimeoutMs;
    const scaleRegion = req.ranking?.best ?? req.region;
    const hasFallbacks = (req.ranking?.fallbacks.length ?? 0) > 0;
    let pending = false;
    try {
      const node = await waitForNode({
        clock,
        timeoutMs: config.joinWaitTimeoutMs,
        ...(hasFallbacks ? { wakeAtElapsedMs: config.regionFallbackWaitMs } : {}),
        nextChange: (ms) => this.deps.waiter.next(ms),
        attempt: async (elapsed) => {
          const regions = req.ranking ? openRegions(req.ranking, elapsed, config.regionFallbackWaitMs) : undefined;
          return this.deps.placement.placeRoomWithSeat(roomCode, sessionId, req.region, regions);
        },
        askForCapacity: async () => {
          const fleet = await this.deps.nodes.list();
          const ask = decideCapacity({ fleet, maxServers: config.maxServers, fallbacksLater: hasFallbacks && clock.now() - started < config.regionFallbackWaitMs });
          if (ask.kind === "give-up") return "give-up";
          if (ask.kind === "scale-up") {
            // Deterministic per join: a retried request of this loop cannot start a second node.
            // A failed request is logged, not fatal: the autoscaler also sees the pending join.
            await this.deps.scheduler
              .requestScaleUp({ count: 1, region: scaleRegion, reason: "player join: no free seat", requestId: `join-${sessionId}` })
              .catch((err: unknown) => this.deps.log.warn("scale-up request failed", { sessionId, err }));
          }
          await this.deps.redis.zadd(this.deps.keys.pendingJoins, String(deadline), sessionId);
          pending = true;
          return "wait";
        },
      });
      if (node) {
        const now = clock.now();
        const s = await this.deps.sessions.create({ sessionId, playerId: req.playerId, roomCode, nodeId: node.id, mode: req.mode, region: node.region || req.region, createdAt: now }, now);
        await this.deps.nodes.touchActivity(node.id, now).catch(() => {});
        this.joins.inc({ result: "ok" });
        this.joinSeconds.observe((now - started) / 1000);
        return s;
      }
    } finally {
      if (pending) await this.deps.redis.zrem(this.deps.keys.pendingJoins, sessionId).catch(() => {});
    }
    this.joins.inc({ result: "no_capacity" });
    this.joinSeconds.observe((clock.now() - started) / 1000);
    throw noCapacity(`no game server became free within ${Math.round(config.joinWaitTimeoutMs / 1000)} s`);
  }
}
