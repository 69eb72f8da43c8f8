/**
 * The autoscaler's shared state in Redis: the admin floor, when the fleet last scaled, and the
 * capped list of recent decisions the dashboard shows. Every replica reads and writes the same
 * keys, so a decision taken by one is honoured by all (cooldowns, floors).
 */
import type { Keys } from "../core/keys.ts";
import type { Redis } from "../core/redis.ts";

export const SCALE_ACTIONS = ["up", "down", "floor", "replace", "refused"] as const;
export type ScaleAction = (typeof SCALE_ACTIONS)[number];

/** A scaling decision as the scheduler records it and the dashboard lists it (keys.scaleEvents, newest first). */
export interface ScaleEvent {
  at: number;
  action: ScaleAction;
  count: number;
  reason: string;
}

/** Parses the scale-events list, skipping anything that is not a well-formed event; newest first. */
export function parseScaleEvents(raw: readonly string[]): ScaleEvent[] {
  const out: ScaleEvent[] = [];
  for (const r of raw) {
    try {
      const v = JSON.parse(r) as Partial<ScaleEvent> | null;
      if (!v || typeof v.at !== "number" || !SCALE_ACTIONS.includes(v.action as ScaleAction)) continue;
      out.push({ at: v.at, action: v.action as ScaleAction, count: typeof v.count === "number" ? v.count : 0, reason: typeof v.reason === "string" ? v.reason.slice(0, 200) : "" });
    } catch {
      /* not JSON: skipped */
    }
  }
  return out.sort((a, b) => b.at - a.at);
}

export interface ScaleState {
  /** Admin floor: at least this many ready + starting nodes. 0 = none. */
  floor: number;
  lastScaleUpAt: number;
  lastScaleDownAt: number;
}

/** Length of keys.scaleEvents. */
export const SCALE_EVENTS_KEPT = 200;

export class ScaleStateStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  async read(): Promise<ScaleState> {
    const h = await this.redis.hgetall(this.keys.scaleState);
    const num = (v: string | undefined) => (v !== undefined && Number.isFinite(Number(v)) ? Number(v) : 0);
    return { floor: num(h.floor), lastScaleUpAt: num(h.lastScaleUpAt), lastScaleDownAt: num(h.lastScaleDownAt) };
  }

  /** Sets the admin floor (POST /v1/admin/scale). */
  async setFloor(nodes: number, now: number, by: string): Promise<void> {
    await this.redis
      .multi()
      .hset(this.keys.scaleState, { floor: String(nodes), floorSetAt: String(now), floorSetBy: by })
      .lpush(this.keys.scaleEvents, JSON.stringify({ at: now, action: "floor", count: nodes, reason: `admin floor set to ${nodes} by ${by}` } satisfies ScaleEvent))
      .ltrim(this.keys.scaleEvents, 0, SCALE_EVENTS_KEPT - 1)
      .exec();
  }

  /** Records a scale event: bumps the matching timestamp (cooldowns) and pushes it for the dashboard. */
  async record(e: ScaleEvent): Promise<void> {
    const m = this.redis.multi();
    if (e.action === "up" || e.action === "replace") m.hset(this.keys.scaleState, "lastScaleUpAt", String(e.at));
    if (e.action === "down") m.hset(this.keys.scaleState, "lastScaleDownAt", String(e.at));
    m.lpush(this.keys.scaleEvents, JSON.stringify(e)).ltrim(this.keys.scaleEvents, 0, SCALE_EVENTS_KEPT - 1);
    await m.exec();
  }

  /** Recent events, newest first. */
  async events(limit = 50): Promise<ScaleEvent[]> {
    const raw = await this.redis.lrange(this.keys.scaleEvents, 0, limit - 1);
    const out: ScaleEvent[] = [];
    for (const r of raw) {
      try {
        out.push(JSON.parse(r) as ScaleEvent);
      } catch {
        /* a malformed entry is skipped */
      }
    }
    return out;
  }
}

/**
 * Joins waiting for a node: keys.pendingJoins is a zset `waiterId → deadline (ms)`, written by the
 * gateway when a join finds no free seat and removed when it is placed or gives up. Entries past
 * their deadline are ignored (and pruned), so a crashed gateway cannot hold the fleet up.
 */
export async function livePendingJoins(redis: Redis, keys: Keys, now: number): Promise<number> {
  const res = await redis.multi().zremrangebyscore(keys.pendingJoins, "-inf", String(now)).zcard(keys.pendingJoins).exec();
  const n = res?.[1]?.[1];
  return typeof n === "number" ? n : 0;
}
