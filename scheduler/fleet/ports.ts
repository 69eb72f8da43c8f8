/**
 * Node port allocation and the MAX_SERVERS ceiling, decided together in one atomic step, so two
 * scheduler replicas can never hand out one port twice nor start more nodes than MAX_SERVERS.
 *
 * `keys.ports` is a hash `port → "<nodeId>|<reservedAt>"`. A node holds its port from reservation
 * until its record is deleted (a stopped node keeps it so a wake gets the same address). A port
 * found in use by something else (HAProxy, another program) is parked as `-busy-|<until>` for a
 * while so every replica skips it without probing again.
 */
import type { Keys } from "../../core/keys.ts";
import type { Redis } from "../../core/redis.ts";
import type { NodeRegistry } from "../../model/node-registry.ts";
import { LIVE_STATES } from "../policy/fleet-counts.ts";

export type Reservation =
  | { ok: true; port: number; /** The node already held this port (a retried start). */ existing: boolean }
  | { ok: false; reason: "max-servers"; live: number }
  | { ok: false; reason: "no-free-port" };

export interface PortAllocator {
  /** Reserves a port for `nodeId` unless MAX_SERVERS nodes already hold a slot. Idempotent per node. */
  reserve(nodeId: string, now: number): Promise<Reservation>;
  /** Marks a port as used by something outside the fleet for `forMs` (skipped by every replica). */
  markBusy(port: number, nodeId: string, now: number, forMs: number): Promise<void>;
  /** Frees every port `nodeId` holds. Idempotent. */
  releaseNode(nodeId: string): Promise<void>;
  /** Nodes holding a server slot (LIVE_STATES, plus reservations whose record is not written yet). */
  liveCount(): Promise<number>;
  /** Frees reservations older than `graceMs` whose node record does not exist, and expired busy marks. */
  sweep(now: number, graceMs: number): Promise<number>;
}

export interface PortRange {
  start: number;
  end: number;
  /** Ports never handed out (the gateway's, HAProxy's, metrics). */
  exclude: readonly number[];
  maxServers: number;
}

const LIVE = LIVE_STATES.join(",");

/**
 * Shared Lua: live-slot count. Reads node records by id (keys built from ARGV prefix — this is a
 * single-instance Redis deployment; a cluster would need hash tags).
 */
const COUNT_LIVE_FN = `
local function count_live(ports_key, nodes_key, node_prefix, live_csv)
  local live = ',' .. live_csv .. ','
  local seen = {}
  local n = 0
  local entries = redis.call('HGETALL', ports_key)
  for i = 2, #entries, 2 do
    local v = entries[i]
    local id = string.match(v, '^([^|]+)|')
    if id and id ~= '-busy-' and not seen[id] then
      seen[id] = true
      local st = redis.call('HGET', node_prefix .. id, 'state')
      if (not st) or string.find(live, ',' .. st .. ',', 1, true) then n = n + 1 end
    end
  end
  for _, id in ipairs(redis.call('SMEMBERS', nodes_key)) do
    if not seen[id] then
      local st = redis.call('HGET', node_prefix .. id, 'state')
      if st and string.find(live, ',' .. st .. ',', 1, true) then n = n + 1 end
    end
  end
  return n
end
`;

/**
 * KEYS[1] ports hash, KEYS[2] nodes set
 * ARGV[1] nodeId, ARGV[2] now, ARGV[3] start, ARGV[4] end, ARGV[5] maxServers, ARGV[6] node key
 * prefix, ARGV[7] live states csv, ARGV[8] excluded ports ",p1,p2,"
 * Returns {port, existing} | {-1, live} (MAX_SERVERS) | {-2, 0} (no free port)
 */
const RESERVE_LUA = `${COUNT_LIVE_FN}
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  if string.match(entries[i + 1], '^([^|]+)|') == ARGV[1] then return {tonumber(entries[i]), 1} end
end
local live = count_live(KEYS[1], KEYS[2], ARGV[6], ARGV[7])
if live >= tonumber(ARGV[5]) then return {-1, live} end
local now = tonumber(ARGV[2])
for p = tonumber(ARGV[3]), tonumber(ARGV[4]) do
  if not string.find(ARGV[8], ',' .. p .. ',', 1, true) then
    local v = redis.call('HGET', KEYS[1], tostring(p))
    local free = not v
    if v then
      local until_ms = string.match(v, '^%-busy%-|(%d+)')
      if until_ms and tonumber(until_ms) <= now then free = true end
    end
    if free then
      redis.call('HSET', KEYS[1], tostring(p), ARGV[1] .. '|' .. ARGV[2])
      return {p, 0}
    end
  end
end
return {-2, 0}
`;

/** KEYS[1] ports, KEYS[2] nodes; ARGV[1] node prefix, ARGV[2] live csv */
const COUNT_LUA = `${COUNT_LIVE_FN}
return count_live(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
`;

/** KEYS[1] ports; ARGV[1] port, ARGV[2] nodeId, ARGV[3] until. Only if the node holds it. */
const BUSY_LUA = `
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v and string.match(v, '^([^|]+)|') == ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], '-busy-|' .. ARGV[3])
  return 1
end
return 0
`;

/** KEYS[1] ports; ARGV[1] nodeId */
const RELEASE_LUA = `
local entries = redis.call('HGETALL', KEYS[1])
local n = 0
for i = 1, #entries, 2 do
  if string.match(entries[i + 1], '^([^|]+)|') == ARGV[1] then redis.call('HDEL', KEYS[1], entries[i]); n = n + 1 end
end
return n
`;

/** KEYS[1] ports; ARGV[1] now, ARGV[2] grace, ARGV[3] node prefix */
const SWEEP_LUA = `
local entries = redis.call('HGETALL', KEYS[1])
local now = tonumber(ARGV[1])
local n = 0
for i = 1, #entries, 2 do
  local id, t = string.match(entries[i + 1], '^([^|]+)|(%d+)')
  if id == '-busy-' then
    if tonumber(t) <= now then redis.call('HDEL', KEYS[1], entries[i]); n = n + 1 end
  elseif id and tonumber(t) < now - tonumber(ARGV[2]) and redis.call('EXISTS', ARGV[3] .. id) == 0 then
    redis.call('HDEL', KEYS[1], entries[i]); n = n + 1
  end
end
return n
`;

export class RedisPortAllocator implements PortAllocator {
  private readonly nodePrefix: string;
  private readonly excluded: string;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly range: PortRange,
  ) {
    // keys.node("x") ends in the id; strip it to get the prefix the Lua appends ids to.
    this.nodePrefix = keys.node("x").slice(0, -1);
    this.excluded = `,${range.exclude.join(",")},`;
  }

  async reserve(nodeId: string, now: number): Promise<Reservation> {
    const [a, b] = (await this.redis.eval(
      RESERVE_LUA,
      2,
      this.keys.ports,
      this.keys.nodes,
      nodeId,
      String(now),
      String(this.range.start),
      String(this.range.end),
      String(this.range.maxServers),
      this.nodePrefix,
      LIVE,
      this.excluded,
    )) as [number, number];
    if (a === -1) return { ok: false, reason: "max-servers", live: b };
    if (a === -2) return { ok: false, reason: "no-free-port" };
    return { ok: true, port: a, existing: b === 1 };
  }

  async markBusy(port: number, nodeId: string, now: number, forMs: number): Promise<void> {
    await this.redis.eval(BUSY_LUA, 1, this.keys.ports, String(port), nodeId, String(now + forMs));
  }

  async releaseNode(nodeId: string): Promise<void> {
    await this.redis.eval(RELEASE_LUA, 1, this.keys.ports, nodeId);
  }

  async liveCount(): Promise<number> {
    return (await this.redis.eval(COUNT_LUA, 2, this.keys.ports, this.keys.nodes, this.nodePrefix, LIVE)) as number;
  }

  async sweep(now: number, graceMs: number): Promise<number> {
    return (await this.redis.eval(SWEEP_LUA, 1, this.keys.ports, String(now), String(graceMs), this.nodePrefix)) as number;
  }
}

/** The same semantics in memory, for unit tests (node states come from the given registry). */
export class MemoryPortAllocator implements PortAllocator {
  private readonly ports = new Map<number, { nodeId: string; at: number }>();

  constructor(
    private readonly range: PortRange,
    private readonly registry: Pick<NodeRegistry, "list">,
  ) {}

  /** Reservations run one at a time, as the Lua script does in Redis. */
  private queue: Promise<unknown> = Promise.resolve();

  reserve(nodeId: string, now: number): Promise<Reservation> {
    const run = this.queue.then(() => this.reserveNow(nodeId, now));
    this.queue = run.catch(() => {});
    return run;
  }

  private async reserveNow(nodeId: string, now: number): Promise<Reservation> {
    for (const [p, v] of this.ports) if (v.nodeId === nodeId) return { ok: true, port: p, existing: true };
    const live = await this.liveCount();
    if (live >= this.range.maxServers) return { ok: false, reason: "max-servers", live };
    for (let p = this.range.start; p <= this.range.end; p++) {
      if (this.range.exclude.includes(p)) continue;
      const v = this.ports.get(p);
      if (!v || (v.nodeId === "-busy-" && v.at <= now)) {
        this.ports.set(p, { nodeId, at: now });
        return { ok: true, port: p, existing: false };
      }
    }
    return { ok: false, reason: "no-free-port" };
  }

  async markBusy(port: number, nodeId: string, now: number, forMs: number): Promise<void> {
    if (this.ports.get(port)?.nodeId === nodeId) this.ports.set(port, { nodeId: "-busy-", at: now + forMs });
  }

  async releaseNode(nodeId: string): Promise<void> {
    for (const [p, v] of [...this.ports]) if (v.nodeId === nodeId) this.ports.delete(p);
  }

  async liveCount(): Promise<number> {
    const states = new Map((await this.registry.list()).map((n) => [n.id, n.state]));
    const ids = new Set<string>([...states.keys()]);
    for (const v of this.ports.values()) if (v.nodeId !== "-busy-") ids.add(v.nodeId);
    let n = 0;
    for (const id of ids) {
      const st = states.get(id);
      // A reservation whose record is not written yet holds a slot.
      if ((st === undefined && [...this.ports.values()].some((v) => v.nodeId === id)) || (st !== undefined && LIVE_STATES.includes(st))) n++;
    }
    return n;
  }

  async sweep(now: number, graceMs: number): Promise<number> {
    const known = new Set((await this.registry.list()).map((n) => n.id));
    let n = 0;
    for (const [p, v] of [...this.ports]) {
      const stale = v.nodeId === "-busy-" ? v.at <= now : v.at < now - graceMs && !known.has(v.nodeId);
      if (stale) {
        this.ports.delete(p);
        n++;
      }
    }
    return n;
  }

  /** Port → holder, for assertions. */
  held(): Map<number, string> {
    return new Map([...this.ports].map(([p, v]) => [p, v.nodeId]));
  }
}
