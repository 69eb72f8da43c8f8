/**
 * The node registry: the one source of truth for game-server nodes. Every state change is an
 * atomic compare-and-set (Lua in Redis) checked against NODE_TRANSITIONS, stamped with `now`, and
 * published on the node-events channel that the gateway, templater and dashboard follow.
 *
 * Two implementations behind one interface: RedisNodeRegistry (real) and MemoryNodeRegistry (unit
 * tests). test/integration/node-registry.conformance.test.ts runs the same suite against both.
 */
import type { Keys } from "../core/keys.ts";
import type { Redis } from "../core/redis.ts";
import { NODE_TRANSITIONS, canTransition, isNodeState, type NodeEvent, type NodeRecord, type NodeState } from "../core/types.ts";

export class InvalidTransitionError extends Error {
  constructor(
    readonly nodeId: string,
    readonly from: NodeState | undefined,
    readonly to: NodeState,
  ) {
    super(`node ${nodeId}: cannot go from ${from ?? "(missing)"} to ${to}`);
    this.name = "InvalidTransitionError";
  }
}

export class NodeNotFoundError extends Error {
  constructor(readonly nodeId: string) {
    super(`node ${nodeId} not found`);
    this.name = "NodeNotFoundError";
  }
}

/** Condition of a conditional remove: the state (and optionally its timestamp) it must still be in. */
export interface RemoveExpectation {
  state: NodeState;
  stateChangedAt?: number;
}

/** Fields that may change without a state transition. */
export type NodePatch = Partial<Omit<NodeRecord, "id" | "state" | "stateChangedAt">>;

export interface NodeRegistry {
  /** Adds a node. Fails (returns false) if the id exists. Publishes a `from: undefined` event. */
  create(node: NodeRecord, now: number): Promise<boolean>;
  get(nodeId: string): Promise<NodeRecord | undefined>;
  list(): Promise<NodeRecord[]>;
  /**
   * Moves a node to `to` if its current state allows it (and, when `expectFrom` is given, only from
   * one of those states). Applies `patch` in the same atomic step. Throws InvalidTransitionError /
   * NodeNotFoundError.
   */
  transition(nodeId: string, to: NodeState, now: number, opts?: { expectFrom?: readonly NodeState[]; patch?: NodePatch; reason?: string }): Promise<NodeRecord>;
  /** Updates non-state fields. Missing node: no-op, returns false. */
  update(nodeId: string, patch: NodePatch): Promise<boolean>;
  /** Records player activity on a node (heartbeats, frames). Never moves time backwards. */
  touchActivity(nodeId: string, now: number): Promise<void>;
  /**
   * Removes the node record (the node is deleted). Publishes a `to: undefined` event. Idempotent.
   * With `expect`, removes only while the node is still in that state (and, when given, entered it
   * at `stateChangedAt`) — so a delete decided on a stopped node cannot remove it after a wake.
   */
  remove(nodeId: string, now: number, reason?: string, expect?: RemoveExpectation): Promise<boolean>;
  /** Subscribes to node events; returns an unsubscribe function. */
  subscribe(fn: (e: NodeEvent) => void): Promise<() => Promise<void>>;
}

const NUM_FIELDS = ["port", "capacity", "maxRooms", "rooms", "players", "reservedRooms", "reservedSeats", "startedAt", "lastSeenAt", "stateChangedAt", "lastActivityAt", "stoppedAt", "healthFailures"] as const;

export function encodeNode(n: Partial<NodeRecord>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(n)) if (v !== undefined) out[k] = String(v);
  return out;
}

export function decodeNode(h: Record<string, string>): NodeRecord | undefined {
  if (!h.id || !h.state || !isNodeState(h.state)) return undefined;
  const num = (k: (typeof NUM_FIELDS)[number]) => Number(h[k] ?? 0) || 0;
  return {
    id: h.id,
    state: h.state,
    host: h.host ?? "127.0.0.1",
    port: num("port"),
    region: h.region ?? "",
    capacity: num("capacity"),
    maxRooms: num("maxRooms"),
    rooms: num("rooms"),
    players: num("players"),
    reservedRooms: num("reservedRooms"),
    reservedSeats: num("reservedSeats"),
    token: h.token ?? "",
    driver: h.driver ?? "",
    ref: h.ref ?? "",
    dockerHost: h.dockerHost ?? "",
    startedAt: num("startedAt"),
    lastSeenAt: num("lastSeenAt"),
    stateChangedAt: num("stateChangedAt"),
    lastActivityAt: num("lastActivityAt"),
    stoppedAt: num("stoppedAt"),
    healthFailures: num("healthFailures"),
    requestId: h.requestId ?? "",
    version: h.version ?? "",
    image: h.image ?? "",
    ...(h.versionEnv ? { versionEnv: h.versionEnv } : {}),
  };
}

/**
 * KEYS[1] node hash, KEYS[2] events channel
 * ARGV[1] target state, ARGV[2] now, ARGV[3] allowed-from states (comma list),
 * ARGV[4] reason, ARGV[5..] patch field/value pairs
 * Returns {ok, fromState} ; ok = 1 moved, 0 refused, -1 missing.
 */
const TRANSITION_LUA = `
local cur = redis.call('HGET', KEYS[1], 'state')
if not cur then return {-1, ''} end
local allowed = ',' .. ARGV[3] .. ','
if not string.find(allowed, ',' .. cur .. ',', 1, true) then return {0, cur} end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'stateChangedAt', ARGV[2])
for i = 5, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
local id = redis.call('HGET', KEYS[1], 'id')
local ev = cjson.encode({type='node', nodeId=id, from=cur, to=ARGV[1], at=tonumber(ARGV[2]), reason=ARGV[4]})
redis.call('PUBLISH', KEYS[2], ev)
return {1, cur}
`;

/** KEYS[1] node hash, KEYS[2] nodes set, KEYS[3] channel; ARGV[1] id, ARGV[2] now, ARGV[3..] fields */
const CREATE_LUA = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('SADD', KEYS[2], ARGV[1])
local st = redis.call('HGET', KEYS[1], 'state')
redis.call('PUBLISH', KEYS[3], cjson.encode({type='node', nodeId=ARGV[1], to=st, at=tonumber(ARGV[2]), reason='created'}))
return 1
`;

/**
 * KEYS[1] node hash, KEYS[2] nodes set, KEYS[3] channel, KEYS[4] node rooms, KEYS[5] activity, KEYS[6] node seats, KEYS[7] node room seats;
 * ARGV[1] id, ARGV[2] now, ARGV[3] reason, ARGV[4] expected state ("" any), ARGV[5] expected stateChangedAt ("" any)
 */
const REMOVE_LUA = `
local st = redis.call('HGET', KEYS[1], 'state')
if st and ARGV[4] ~= '' then
  if st ~= ARGV[4] then return 0 end
  if ARGV[5] ~= '' and redis.call('HGET', KEYS[1], 'stateChangedAt') ~= ARGV[5] then return 0 end
end
local existed = redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[4], KEYS[5], KEYS[6], KEYS[7])
if existed == 1 then
  redis.call('PUBLISH', KEYS[3], cjson.encode({type='node', nodeId=ARGV[1], from=st, at=tonumber(ARGV[2]), reason=ARGV[3]}))
end
return existed
`;

/** KEYS[1] node hash; ARGV[1] now. Only moves forward; only if the node exists. */
const TOUCH_LUA = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local cur = tonumber(redis.call('HGET', KEYS[1], 'lastActivityAt') or '0')
if tonumber(ARGV[1]) > cur then redis.call('HSET', KEYS[1], 'lastActivityAt', ARGV[1]) end
return 1
`;

/** KEYS[1] node hash; ARGV field/value pairs. Only if the node exists. */
const UPDATE_LUA = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 1, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
`;

function allowedFrom(to: NodeState, expectFrom?: readonly NodeState[]): NodeState[] {
  const all = (Object.keys(NODE_TRANSITIONS) as NodeState[]).filter((from) => canTransition(from, to));
  return expectFrom ? all.filter((s) => expectFrom.includes(s)) : all;
}

function flat(patch: NodePatch | undefined): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(encodeNode(patch ?? {}))) {
    if (k === "id" || k === "state" || k === "stateChangedAt") continue;
    out.push(k, v);
  }
  return out;
}

export class RedisNodeRegistry implements NodeRegistry {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    /** A separate connection for subscriptions (a subscribed connection cannot run commands). */
    private readonly subscriberFactory: () => Redis,
  ) {}

  async create(node: NodeRecord, now: number): Promise<boolean> {
    const fields = Object.entries(encodeNode(node)).flat();
    const r = await this.redis.eval(CREATE_LUA, 3, this.keys.node(node.id), this.keys.nodes, this.keys.nodeEventsChannel, node.id, String(now), ...fields);
    return r === 1;
  }

  async get(nodeId: string): Promise<NodeRecord | undefined> {
    const h = await this.redis.hgetall(this.keys.node(nodeId));
    return decodeNode(h);
  }

  async list(): Promise<NodeRecord[]> {
    const ids = await this.redis.smembers(this.keys.nodes);
    if (ids.length === 0) return [];
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.hgetall(this.keys.node(id));
    const res = (await pipe.exec()) ?? [];
    const out: NodeRecord[] = [];
    for (const [err, h] of res) {
      if (err) continue;
      const n = decodeNode(h as Record<string, string>);
      if (n) out.push(n);
    }
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }

  async transition(nodeId: string, to: NodeState, now: number, opts: { expectFrom?: readonly NodeState[]; patch?: NodePatch; reason?: string } = {}): Promise<NodeRecord> {
    const from = allowedFrom(to, opts.expectFrom);
    const [ok, cur] = (await this.redis.eval(
      TRANSITION_LUA,
      2,
      this.keys.node(nodeId),
      this.keys.nodeEventsChannel,
      to,
      String(now),
      from.join(","),
      opts.reason ?? "",
      ...flat(opts.patch),
    )) as [number, string];
    if (ok === -1) throw new NodeNotFoundError(nodeId);
    if (ok === 0) throw new InvalidTransitionError(nodeId, isNodeState(cur) ? cur : undefined, to);
    const n = await this.get(nodeId);
    if (!n) throw new NodeNotFoundError(nodeId);
    return n;
  }

  async update(nodeId: string, patch: NodePatch): Promise<boolean> {
    const args = flat(patch);
    if (args.length === 0) return (await this.redis.exists(this.keys.node(nodeId))) === 1;
    return (await this.redis.eval(UPDATE_LUA, 1, this.keys.node(nodeId), ...args)) === 1;
  }

  async touchActivity(nodeId: string, now: number): Promise<void> {
    await this.redis.eval(TOUCH_LUA, 1, this.keys.node(nodeId), String(now));
  }

  async remove(nodeId: string, now: number, reason = "deleted", expect?: RemoveExpectation): Promise<boolean> {
    const r = await this.redis.eval(
      REMOVE_LUA,
      7,
      this.keys.node(nodeId),
      this.keys.nodes,
      this.keys.nodeEventsChannel,
      this.keys.nodeRooms(nodeId),
      this.keys.nodeActivity(nodeId),
      this.keys.nodeSeats(nodeId),
      this.keys.nodeRoomSeats(nodeId),
      nodeId,
      String(now),
      reason,
      expect?.state ?? "",
      expect?.stateChangedAt === undefined ? "" : String(expect.stateChangedAt),
    );
    return r === 1;
  }

  async subscribe(fn: (e: NodeEvent) => void): Promise<() => Promise<void>> {
    const sub = this.subscriberFactory();
    const channel = this.keys.nodeEventsChannel;
    sub.on("message", (ch: string, msg: string) => {
      if (ch !== channel) return;
      try {
        fn(JSON.parse(msg) as NodeEvent);
      } catch {
        /* a malformed event is ignored; the periodic resyncs heal what it would have said */
      }
    });
    await sub.subscribe(channel);
    return async () => {
      await sub.unsubscribe(channel).catch(() => {});
      sub.disconnect();
    };
  }
}

/** In-memory registry with the same semantics, for unit tests. */
export class MemoryNodeRegistry implements NodeRegistry {
  private readonly nodes = new Map<string, NodeRecord>();
  private readonly listeners = new Set<(e: NodeEvent) => void>();

  private emit(e: NodeEvent): void {
    for (const l of this.listeners) queueMicrotask(() => l(e));
  }

  async create(node: NodeRecord, now: number): Promise<boolean> {
    if (this.nodes.has(node.id)) return false;
    this.nodes.set(node.id, { ...node });
    this.emit({ type: "node", nodeId: node.id, from: undefined, to: node.state, at: now, reason: "created" });
    return true;
  }

  async get(nodeId: string): Promise<NodeRecord | undefined> {
    const n = this.nodes.get(nodeId);
    return n ? { ...n } : undefined;
  }

  async list(): Promise<NodeRecord[]> {
    return [...this.nodes.values()].map((n) => ({ ...n })).sort((a, b) => a.id.localeCompare(b.id));
  }

  async transition(nodeId: string, to: NodeState, now: number, opts: { expectFrom?: readonly NodeState[]; patch?: NodePatch; reason?: string } = {}): Promise<NodeRecord> {
    const n = this.nodes.get(nodeId);
    if (!n) throw new NodeNotFoundError(nodeId);
    if (!allowedFrom(to, opts.expectFrom).includes(n.state)) throw new InvalidTransitionError(nodeId, n.state, to);
    const from = n.state;
    const { id: _id, state: _s, stateChangedAt: _c, ...patch } = { ...(opts.patch ?? {}) } as NodeRecord;
    Object.assign(n, stripUndefined(patch), { state: to, stateChangedAt: now });
    this.emit({ type: "node", nodeId, from, to, at: now, reason: opts.reason ?? "" });
    return { ...n };
  }

  async update(nodeId: string, patch: NodePatch): Promise<boolean> {
    const n = this.nodes.get(nodeId);
    if (!n) return false;
    const { id: _id, state: _s, stateChangedAt: _c, ...rest } = patch as NodeRecord;
    Object.assign(n, stripUndefined(rest));
    return true;
  }

  async touchActivity(nodeId: string, now: number): Promise<void> {
    const n = this.nodes.get(nodeId);
    if (n && now > n.lastActivityAt) n.lastActivityAt = now;
  }

  async remove(nodeId: string, now: number, reason = "deleted", expect?: RemoveExpectation): Promise<boolean> {
    const n = this.nodes.get(nodeId);
    if (!n) return false;
    if (expect && (n.state !== expect.state || (expect.stateChangedAt !== undefined && n.stateChangedAt !== expect.stateChangedAt))) return false;
    this.nodes.delete(nodeId);
    this.emit({ type: "node", nodeId, from: n.state, to: undefined, at: now, reason });
    return true;
  }

  async subscribe(fn: (e: NodeEvent) => void): Promise<() => Promise<void>> {
    this.listeners.add(fn);
    return async () => {
      this.listeners.delete(fn);
    };
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
