/**
 * Fleet versions and rollouts (CONTRACT "Fleet versions and rollouts"): which version is active,
 * which one a running rollout moves to (and what share of new rooms it gets), and each rollout's
 * record and timeline. The one source of truth every process reads: placement (which version a new
 * room goes to), the scale-up job (which version a new node runs), the rollout job, the admin API.
 *
 * Every change that must be atomic is one Lua script: beginning a rollout (409 while another runs,
 * so two admins or a retried request never start two), finishing it (the routing flips in the same
 * step: `succeeded` makes the target active, `rolled_back`/`cancelled` drop it), promoting a canary.
 *
 * Two implementations behind one interface: RedisRolloutStore and MemoryRolloutStore (unit tests);
 * test/integration/rollout-store.test.ts runs one suite against both.
 */
import type { Keys } from "../core/keys.ts";
import type { Redis } from "../core/redis.ts";
import type { FleetVersion } from "../core/types.ts";
import { LuaScript } from "./lua-script.ts";

export type RolloutState = "running" | "succeeded" | "rolled_back" | "cancelled";
export const TERMINAL_ROLLOUT_STATES: readonly RolloutState[] = ["succeeded", "rolled_back", "cancelled"];

/** One rollout as stored. */
export interface RolloutRecord {
  id: string;
  /** The version rolled out to. */
  version: string;
  image: string;
  env: Record<string, string>;
  /** The version that was active when it began. */
  fromVersion: string;
  fromImage: string;
  state: RolloutState;
  reason: string;
  /** Share of new rooms the new version gets (100 = all; promote sets 100). */
  canaryPercent: number;
  maxSurge: number;
  drainDeadlineMs: number;
  startedAt: number;
  finishedAt: number;
  /** Nodes of the old version when it began (the ones it retires). */
  oldNodes: string[];
  /** New-version nodes this rollout started (ready or not). */
  newNodes: string[];
  /** Old nodes it has asked to drain. */
  drained: string[];
  /** New nodes that failed to get ready. */
  failures: number;
  /** Start slots handed out (node ids derive from them). */
  slots: number;
  /** Who started it. */
  by: string;
}

/** What placement and the scale-up job read: where new rooms and new nodes go. */
export interface FleetRouting {
  active: FleetVersion;
  /** The running rollout's version, if one runs. */
  target?: FleetVersion;
  /** Share of new rooms for the target (1–100). */
  canaryPercent: number;
  rolloutId?: string;
}

/** One timeline entry of a rollout. */
export interface RolloutEvent {
  at: number;
  event: string;
  detail?: string;
}

export type BeginResult = { ok: true; record: RolloutRecord } | { ok: false; runningId: string };

export interface RolloutStore {
  /** Routing now; with nothing stored, the default (NODE_IMAGE) version is active. */
  routing(): Promise<FleetRouting>;
  /** Starts a rollout unless one runs. The old version is the active one, read in the same step. */
  begin(r: Omit<RolloutRecord, "fromVersion" | "fromImage" | "state" | "reason" | "finishedAt" | "newNodes" | "drained" | "failures" | "slots">): Promise<BeginResult>;
  get(id: string): Promise<RolloutRecord | undefined>;
  /** Newest first. */
  list(limit: number): Promise<RolloutRecord[]>;
  /** running → `state` (once); the routing follows in the same step. False when not running. */
  finish(id: string, state: Exclude<RolloutState, "running">, reason: string, now: number): Promise<boolean>;
  /** A running canary to 100%. False when not running. */
  promote(id: string): Promise<boolean>;
  /** The next start slot (0, 1, …). */
  nextSlot(id: string): Promise<number>;
  /** Counts a failed start; returns the count. */
  addFailure(id: string): Promise<number>;
  addNewNode(id: string, nodeId: string): Promise<void>;
  addDrained(id: string, nodeId: string): Promise<void>;
  /** Records an old node as gone (drained and deleted); true the first time (timeline once). */
  markRetired(id: string, nodeId: string): Promise<boolean>;
  /** The next canary ticket (1, 2, …; restarts with each rollout): see canaryPick. */
  canaryTicket(): Promise<number>;
  /** Appends to the timeline (kept: the last ROLLOUT_EVENTS_KEPT). */
  event(id: string, e: RolloutEvent): Promise<void>;
  events(id: string): Promise<RolloutEvent[]>;
}

export const ROLLOUT_EVENTS_KEPT = 500;

/** The version a node image names when none is given: its tag (`fleetgate-node:v2` → `v2`), else the image. */
export function versionOfImage(image: string): string {
  const slash = image.lastIndexOf("/");
  const colon = image.lastIndexOf(":");
  const tag = colon > slash ? image.slice(colon + 1) : "";
  return tag && !image.includes("@") ? tag : image;
}

/** The version a deployment runs before any rollout: NODE_IMAGE. */
export function defaultVersion(nodeImage: string): FleetVersion {
  return { version: versionOfImage(nodeImage), image: nodeImage };
}

/** The version of a node record ("" = from before versions: the active one). */
export function nodeVersion(n: { version: string }, routing: Pick<FleetRouting, "active">): string {
  return n.version || routing.active.version;
}

/**
 * Whether the `ticket`-th new room of a canary (1, 2, …: a counter shared by every gateway in
 * Redis) goes to the canary: exactly `percent` of every 100 in a row, spread evenly (with 25%: the
 * 4th, 8th, …) — not a coin flip per room, so "25%" means 25 of 100 and not 15 or 35.
 */
export function canaryPick(percent: number, ticket: number): boolean {
  if (percent >= 100) return true;
  if (percent <= 0 || ticket < 1) return false;
  return Math.floor((ticket * percent) / 100) > Math.floor(((ticket - 1) * percent) / 100);
}

/**
 * The version a new room (or session) goes to: the target during a rollout (a canary: the rooms
 * `canaryPick` picks, by a ticket from the store), else the active version; undefined when nothing
 * was ever stored (no version preferred). A room is decided once: placement then keeps it.
 */
export async function versionForNewRoom(versions: Pick<RolloutStore, "routing" | "canaryTicket">): Promise<{ want: string | undefined; active: string }> {
  const routing = await versions.routing();
  const active = routing.active.version;
  if (!routing.target) return { want: active || undefined, active };
  if (routing.canaryPercent >= 100) return { want: routing.target.version, active };
  return { want: canaryPick(routing.canaryPercent, await versions.canaryTicket()) ? routing.target.version : active, active };
}

/**
 * The version a new node (scale-up without one) runs: the version placement wants more of. No
 * rollout: the active one. A rollout to 100%: its target. A canary: the target while its share of
 * ready + starting nodes is below canaryPercent, else the active version.
 */
export function versionForNewNode(routing: FleetRouting, nodes: readonly { version: string; state: string }[]): FleetVersion {
  const target = routing.target;
  if (!target) return routing.active;
  if (routing.canaryPercent >= 100) return target;
  const live = nodes.filter((n) => n.state === "ready" || n.state === "starting");
  const onTarget = live.filter((n) => (n.version || routing.active.version) === target.version).length;
  return live.length === 0 || (onTarget * 100) / live.length < routing.canaryPercent ? target : routing.active;
}

/** One version as operators see it (GET /v1/admin/fleet, /v1/capacity, /metrics). */
export interface VersionSummary {
  version: string;
  image: string;
  state: "active" | "canary" | "retiring";
  /** Nodes of the version that are not stopped. */
  nodes: number;
  /** Nodes of the version by state. */
  byState: Record<string, number>;
  rooms: number;
  players: number;
}

type SummaryNode = { version: string; image: string; state: string; rooms: number; players: number; reservedRooms?: number };

/**
 * Nodes, rooms and players per version. During a rollout to 100% the target is `active` and the old
 * version `retiring`; during a canary the target is `canary` and the old version still `active`.
 * Rooms count what the node reports or what is placed on it, whichever is larger; players as reported.
 */
export function summarizeVersions(routing: FleetRouting, nodes: readonly SummaryNode[]): VersionSummary[] {
  const out = new Map<string, VersionSummary>();
  const stateOf = (version: string): VersionSummary["state"] => {
    const t = routing.target;
    if (t && version === t.version) return routing.canaryPercent >= 100 ? "active" : "canary";
    if (version === routing.active.version) return t && routing.canaryPercent >= 100 ? "retiring" : "active";
    return "retiring";
  };
  const add = (version: string, image: string) => {
    let v = out.get(version);
    if (!v) out.set(version, (v = { version, image, state: stateOf(version), nodes: 0, byState: {}, rooms: 0, players: 0 }));
    return v;
  };
  add(routing.active.version, routing.active.image);
  if (routing.target) add(routing.target.version, routing.target.image);
  for (const n of nodes) {
    const version = n.version || routing.active.version;
    const v = add(version, n.image || (version === routing.active.version ? routing.active.image : ""));
    v.byState[n.state] = (v.byState[n.state] ?? 0) + 1;
    if (n.state === "stopped") continue;
    v.nodes++;
    v.rooms += Math.max(n.rooms, n.reservedRooms ?? 0);
    v.players += n.players;
  }
  return [...out.values()];
}

// ---- Redis ------------------------------------------------------------------------------------

/**
 * KEYS[1] fleet versions hash, KEYS[2] rollout hash, KEYS[3] rollouts zset
 * ARGV[1] id, ARGV[2] startedAt, ARGV[3] default active version JSON, ARGV[4] target JSON,
 * ARGV[5] canaryPercent, ARGV[6..] rollout field/value pairs
 * Returns {1, fromJSON} begun; {0, runningId} refused.
 */
const BEGIN_LUA = `
local cur = redis.call('HGET', KEYS[1], 'rolloutId')
if cur and cur ~= '' then return {0, cur} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {0, ARGV[1]} end
local active = redis.call('HGET', KEYS[1], 'active')
if not active then
  active = ARGV[3]
  redis.call('HSET', KEYS[1], 'active', active)
end
redis.call('HSET', KEYS[1], 'rolloutId', ARGV[1], 'target', ARGV[4], 'canaryPercent', ARGV[5], 'canarySeq', 0)
for i = 6, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
redis.call('HSET', KEYS[2], 'from', active, 'state', 'running', 'failures', 0, 'slots', 0)
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
return {1, active}
`;

/** KEYS[1] fleet versions, KEYS[2] rollout; ARGV[1] id, ARGV[2] state, ARGV[3] reason, ARGV[4] now */
const FINISH_LUA = `
if redis.call('HGET', KEYS[2], 'state') ~= 'running' then return 0 end
redis.call('HSET', KEYS[2], 'state', ARGV[2], 'reason', ARGV[3], 'finishedAt', ARGV[4])
if redis.call('HGET', KEYS[1], 'rolloutId') == ARGV[1] then
  if ARGV[2] == 'succeeded' then
    local t = redis.call('HGET', KEYS[1], 'target')
    if t then redis.call('HSET', KEYS[1], 'active', t) end
  end
  redis.call('HDEL', KEYS[1], 'target')
  redis.call('HSET', KEYS[1], 'rolloutId', '', 'canaryPercent', 100)
end
return 1
`;

/** KEYS[1] fleet versions, KEYS[2] rollout; ARGV[1] id */
const PROMOTE_LUA = `
if redis.call('HGET', KEYS[2], 'state') ~= 'running' then return 0 end
redis.call('HSET', KEYS[2], 'canaryPercent', 100)
if redis.call('HGET', KEYS[1], 'rolloutId') == ARGV[1] then redis.call('HSET', KEYS[1], 'canaryPercent', 100) end
return 1
`;

/** KEYS[1] rollout; ARGV[1] field, ARGV[2] node id. Appends to a JSON list field once. */
const ADD_TO_LIST_LUA = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local list = {}
if raw and raw ~= '' then list = cjson.decode(raw) end
for _, v in ipairs(list) do if v == ARGV[2] then return 0 end end
list[#list + 1] = ARGV[2]
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(list))
return 1
`;

const scripts = {
  begin: new LuaScript("rollout-begin", BEGIN_LUA),
  finish: new LuaScript("rollout-finish", FINISH_LUA),
  promote: new LuaScript("rollout-promote", PROMOTE_LUA),
  addToList: new LuaScript("rollout-add-to-list", ADD_TO_LIST_LUA),
};

function parseVersion(raw: string | undefined): FleetVersion | undefined {
  if (!raw) return undefined;
  try {
    const v = JSON.parse(raw) as Partial<FleetVersion>;
    if (typeof v.version !== "string" || typeof v.image !== "string") return undefined;
    return { version: v.version, image: v.image, ...(v.env && typeof v.env === "object" ? { env: v.env } : {}) };
  } catch {
    return undefined;
  }
}

function parseList(raw: string | undefined): string[] {
  if (!raw) return [];
  try {
    const v = JSON.parse(raw) as unknown;
    // cjson encodes an empty table as an object.
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
  } catch {
    return [];
  }
}

function decodeRollout(h: Record<string, string>): RolloutRecord | undefined {
  if (!h.id || !h.state) return undefined;
  const num = (k: string) => Number(h[k] ?? 0) || 0;
  const from = parseVersion(h.from);
  let env: Record<string, string> = {};
  try {
    env = h.env ? (JSON.parse(h.env) as Record<string, string>) : {};
  } catch {
    env = {};
  }
  return {
    id: h.id,
    version: h.version ?? "",
    image: h.image ?? "",
    env,
    fromVersion: from?.version ?? "",
    fromImage: from?.image ?? "",
    state: h.state as RolloutState,
    reason: h.reason ?? "",
    canaryPercent: num("canaryPercent") || 100,
    maxSurge: num("maxSurge") || 1,
    drainDeadlineMs: num("drainDeadlineMs"),
    startedAt: num("startedAt"),
    finishedAt: num("finishedAt"),
    oldNodes: parseList(h.oldNodes),
    newNodes: parseList(h.newNodes),
    drained: parseList(h.drained),
    failures: num("failures"),
    slots: num("slots"),
    by: h.by ?? "",
  };
}

export class RedisRolloutStore implements RolloutStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    /** The version active before any rollout (NODE_IMAGE). */
    private readonly initial: FleetVersion,
  ) {}

  async routing(): Promise<FleetRouting> {
    const h = await this.redis.hgetall(this.keys.fleetVersions);
    const active = parseVersion(h.active) ?? this.initial;
    const target = h.rolloutId ? parseVersion(h.target) : undefined;
    const canary = Number(h.canaryPercent ?? 100);
    return {
      active,
      ...(target ? { target, rolloutId: h.rolloutId } : {}),
      canaryPercent: Number.isFinite(canary) && canary >= 1 && canary <= 100 ? canary : 100,
    };
  }

  async begin(r: Parameters<RolloutStore["begin"]>[0]): Promise<BeginResult> {
    const target: FleetVersion = { version: r.version, image: r.image, ...(Object.keys(r.env).length ? { env: r.env } : {}) };
    const fields: Record<string, string> = {
      id: r.id,
      version: r.version,
      image: r.image,
      env: JSON.stringify(r.env),
      canaryPercent: String(r.canaryPercent),
      maxSurge: String(r.maxSurge),
      drainDeadlineMs: String(r.drainDeadlineMs),
      startedAt: String(r.startedAt),
      finishedAt: "0",
      reason: "",
      oldNodes: JSON.stringify(r.oldNodes),
      newNodes: "[]",
      drained: "[]",
      by: r.by,
    };
    const res = (await scripts.begin.run(
      this.redis,
      [this.keys.fleetVersions, this.keys.rollout(r.id), this.keys.rollouts],
      [r.id, r.startedAt, JSON.stringify(this.initial), JSON.stringify(target), r.canaryPercent, ...Object.entries(fields).flat()],
    )) as [number, string];
    if (res[0] !== 1) return { ok: false, runningId: res[1] };
    const rec = await this.get(r.id);
    if (!rec) throw new Error(`rollout ${r.id} vanished after begin`);
    return { ok: true, record: rec };
  }

  async get(id: string): Promise<RolloutRecord | undefined> {
    return decodeRollout(await this.redis.hgetall(this.keys.rollout(id)));
  }

  async list(limit: number): Promise<RolloutRecord[]> {
    const ids = await this.redis.zrevrange(this.keys.rollouts, 0, Math.max(0, limit - 1));
    const out: RolloutRecord[] = [];
    for (const id of ids) {
      const r = await this.get(id);
      if (r) out.push(r);
    }
    return out;
  }

  async finish(id: string, state: Exclude<RolloutState, "running">, reason: string, now: number): Promise<boolean> {
    return (await scripts.finish.run(this.redis, [this.keys.fleetVersions, this.keys.rollout(id)], [id, state, reason, now])) === 1;
  }

  async promote(id: string): Promise<boolean> {
    return (await scripts.promote.run(this.redis, [this.keys.fleetVersions, this.keys.rollout(id)], [id])) === 1;
  }

  async nextSlot(id: string): Promise<number> {
    return (await this.redis.hincrby(this.keys.rollout(id), "slots", 1)) - 1;
  }

  async addFailure(id: string): Promise<number> {
    return this.redis.hincrby(this.keys.rollout(id), "failures", 1);
  }

  async addNewNode(id: string, nodeId: string): Promise<void> {
    await scripts.addToList.run(this.redis, [this.keys.rollout(id)], ["newNodes", nodeId]);
  }

  async addDrained(id: string, nodeId: string): Promise<void> {
    await scripts.addToList.run(this.redis, [this.keys.rollout(id)], ["drained", nodeId]);
  }

  async markRetired(id: string, nodeId: string): Promise<boolean> {
    return (await scripts.addToList.run(this.redis, [this.keys.rollout(id)], ["retired", nodeId])) === 1;
  }

  async canaryTicket(): Promise<number> {
    return this.redis.hincrby(this.keys.fleetVersions, "canarySeq", 1);
  }

  async event(id: string, e: RolloutEvent): Promise<void> {
    const key = this.keys.rolloutEvents(id);
    await this.redis.multi().rpush(key, JSON.stringify(e)).ltrim(key, -ROLLOUT_EVENTS_KEPT, -1).exec();
  }

  async events(id: string): Promise<RolloutEvent[]> {
    const raw = await this.redis.lrange(this.keys.rolloutEvents(id), 0, -1);
    const out: RolloutEvent[] = [];
    for (const r of raw) {
      try {
        out.push(JSON.parse(r) as RolloutEvent);
      } catch {
        /* a malformed entry is skipped */
      }
    }
    return out;
  }
}

// ---- memory -----------------------------------------------------------------------------------

/** In-memory store with the same semantics, for unit tests. */
export class MemoryRolloutStore implements RolloutStore {
  private active: FleetVersion | undefined;
  private target: FleetVersion | undefined;
  private canary = 100;
  private runningId = "";
  private canarySeq = 0;
  private readonly records = new Map<string, RolloutRecord>();
  private readonly timeline = new Map<string, RolloutEvent[]>();

  constructor(private readonly initial: FleetVersion) {}

  async routing(): Promise<FleetRouting> {
    const active = this.active ?? this.initial;
    return { active, ...(this.runningId && this.target ? { target: this.target, rolloutId: this.runningId } : {}), canaryPercent: this.canary };
  }

  async begin(r: Parameters<RolloutStore["begin"]>[0]): Promise<BeginResult> {
    if (this.runningId) return { ok: false, runningId: this.runningId };
    if (this.records.has(r.id)) return { ok: false, runningId: r.id };
    this.active ??= this.initial;
    const rec: RolloutRecord = { ...r, env: { ...r.env }, oldNodes: [...r.oldNodes], fromVersion: this.active.version, fromImage: this.active.image, state: "running", reason: "", finishedAt: 0, newNodes: [], drained: [], failures: 0, slots: 0 };
    this.records.set(r.id, rec);
    this.runningId = r.id;
    this.target = { version: r.version, image: r.image, ...(Object.keys(r.env).length ? { env: { ...r.env } } : {}) };
    this.canary = r.canaryPercent;
    this.canarySeq = 0;
    return { ok: true, record: structuredClone(rec) };
  }

  async get(id: string): Promise<RolloutRecord | undefined> {
    const r = this.records.get(id);
    return r ? structuredClone(r) : undefined;
  }

  async list(limit: number): Promise<RolloutRecord[]> {
    return [...this.records.values()]
      .sort((a, b) => b.startedAt - a.startedAt)
      .slice(0, limit)
      .map((r) => structuredClone(r));
  }

  async finish(id: string, state: Exclude<RolloutState, "running">, reason: string, now: number): Promise<boolean> {
    const r = this.records.get(id);
    if (!r || r.state !== "running") return false;
    Object.assign(r, { state, reason, finishedAt: now });
    if (this.runningId === id) {
      if (state === "succeeded" && this.target) this.active = this.target;
      this.target = undefined;
      this.runningId = "";
      this.canary = 100;
    }
    return true;
  }

  async promote(id: string): Promise<boolean> {
    const r = this.records.get(id);
    if (!r || r.state !== "running") return false;
    r.canaryPercent = 100;
    if (this.runningId === id) this.canary = 100;
    return true;
  }

  async nextSlot(id: string): Promise<number> {
    const r = this.records.get(id);
    if (!r) return 0;
    return r.slots++;
  }

  async addFailure(id: string): Promise<number> {
    const r = this.records.get(id);
    if (!r) return 0;
    return ++r.failures;
  }

  async addNewNode(id: string, nodeId: string): Promise<void> {
    const r = this.records.get(id);
    if (r && !r.newNodes.includes(nodeId)) r.newNodes.push(nodeId);
  }

  async addDrained(id: string, nodeId: string): Promise<void> {
    const r = this.records.get(id);
    if (r && !r.drained.includes(nodeId)) r.drained.push(nodeId);
  }

  private readonly retired = new Set<string>();
  async markRetired(id: string, nodeId: string): Promise<boolean> {
    if (!this.records.has(id) || this.retired.has(`${id}|${nodeId}`)) return false;
    this.retired.add(`${id}|${nodeId}`);
    return true;
  }

  async canaryTicket(): Promise<number> {
    return ++this.canarySeq;
  }

  async event(id: string, e: RolloutEvent): Promise<void> {
    const list = this.timeline.get(id) ?? [];
    list.push({ ...e });
    if (list.length > ROLLOUT_EVENTS_KEPT) list.splice(0, list.length - ROLLOUT_EVENTS_KEPT);
    this.timeline.set(id, list);
  }

  async events(id: string): Promise<RolloutEvent[]> {
    return (this.timeline.get(id) ?? []).map((e) => ({ ...e }));
  }
}
