/**
 * Room placement in Redis. The ring order comes from the pure module; the bounded-load choice and
 * the write happen in one Lua script, so two gateways placing the same new room at once agree
 * (the second sees the first's `room → node` and returns it), and two rooms racing for a node's
 * last slot cannot both get it. The placement is never recomputed while the room lives.
 */
import { noCapacity } from "../../core/errors.ts";
import type { Keys } from "../../core/keys.ts";
import type { NodeRegistry } from "../node-registry.ts";
import type { Redis } from "../../core/redis.ts";
import type { NodeRecord } from "../../core/types.ts";
import type { Placement } from "../contracts.ts";
import { placementCandidates, placementIsLive } from "./candidates.ts";
import { DEFAULT_LOAD_FACTOR, RingCache } from "./ring.ts";

/**
 * KEYS[1] room → node string
 * KEYS[2+4i], KEYS[3+4i], KEYS[4+4i], KEYS[5+4i]: node hash, node rooms set, node seats set, node
 *   room-seats hash of candidate i (in ring order)
 * ARGV[1] room code, ARGV[2] load factor, ARGV[3] seat holder id ("" = place without a seat),
 * ARGV[4] stale node id the room may be taken from ("" = none), ARGV[5] player seats the room takes
 * (its maxPlayers; 1 for an ad-hoc room, 0 with a seat holder), ARGV[6..] candidate ids.
 * A node takes the room while it holds fewer than maxRooms rooms and its session seats plus the
 * seats of its rooms plus this room's (at most its capacity: one room per node with one server per
 * match) fit its capacity — so N-player rooms never overfill a node of N × k players.
 * Returns {1, nodeId} placed; {0, nodeId} already placed (by someone else); {-1, ""} no capacity.
 */
const PLACE_LUA = `
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[4] then return {0, cur} end
local factor = tonumber(ARGV[2])
local seat = ARGV[3]
local want = tonumber(ARGV[5]) or 1
local n = #ARGV - 5
local elig = {}
local total = 0
for i = 1, n do
  local nk = KEYS[2 + (i - 1) * 4]
  local f = redis.call('HMGET', nk, 'state', 'maxRooms', 'capacity')
  if f[1] == 'ready' then
    local rooms = redis.call('SCARD', KEYS[3 + (i - 1) * 4])
    local seatCap = tonumber(f[3] or '0') or 0
    local used = redis.call('SCARD', KEYS[4 + (i - 1) * 4])
    for _, v in ipairs(redis.call('HVALS', KEYS[5 + (i - 1) * 4])) do used = used + (tonumber(v) or 0) end
    local w = math.min(want, seatCap)
    if seat ~= '' then w = 1 end
    elig[#elig + 1] = {i = i, rooms = rooms, maxRooms = tonumber(f[2] or '0') or 0, used = used, seatCap = seatCap, w = w}
    total = total + rooms
  end
end
if #elig == 0 then return {-1, ''} end
local bound = math.ceil(factor * (total + 1) / #elig)
for _, e in ipairs(elig) do
  if e.rooms < e.maxRooms and e.rooms < bound and e.w > 0 and e.used + e.w <= e.seatCap then
    local id = ARGV[5 + e.i]
    local nk = KEYS[2 + (e.i - 1) * 4]
    redis.call('SET', KEYS[1], id)
    redis.call('SADD', KEYS[3 + (e.i - 1) * 4], ARGV[1])
    redis.call('HSET', nk, 'rooms', e.rooms + 1)
    if seat ~= '' then
      redis.call('SADD', KEYS[4 + (e.i - 1) * 4], seat)
      redis.call('HINCRBY', nk, 'players', 1)
    else
      redis.call('HSET', KEYS[5 + (e.i - 1) * 4], ARGV[1], e.w)
    end
    return {1, id}
  end
end
return {-1, ''}
`;

/**
 * KEYS[1] room → node, KEYS[2] node rooms set, KEYS[3] node hash, KEYS[4] node seats set,
 * KEYS[5] node room-seats hash; ARGV[1] room code, ARGV[2] node id, ARGV[3] seat holder id ("" = none)
 * Forgets the room only if it is still placed on that node (compare-and-delete).
 */
const RELEASE_LUA = `
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[2] then redis.call('DEL', KEYS[1]) end
redis.call('HDEL', KEYS[5], ARGV[1])
if redis.call('SREM', KEYS[2], ARGV[1]) == 1 and redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('HSET', KEYS[3], 'rooms', redis.call('SCARD', KEYS[2]))
end
if ARGV[3] ~= '' and redis.call('SREM', KEYS[4], ARGV[3]) == 1 and redis.call('EXISTS', KEYS[3]) == 1 then
  local p = tonumber(redis.call('HGET', KEYS[3], 'players') or '0') or 0
  if p > 0 then redis.call('HINCRBY', KEYS[3], 'players', -1) end
end
return 1
`;

export interface RedisPlacementOptions {
  /** Bounded-load factor. Default 1.25. */
  loadFactor?: number;
}

export class RedisPlacement implements Placement {
  private readonly rings = new RingCache();
  private readonly factor: number;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly nodes: NodeRegistry,
    opts: RedisPlacementOptions = {},
  ) {
    this.factor = opts.loadFactor ?? DEFAULT_LOAD_FACTOR;
  }

  async nodeForRoom(roomCode: string): Promise<NodeRecord | undefined> {
    const id = await this.redis.get(this.keys.roomNode(roomCode));
    return id ? this.nodes.get(id) : undefined;
  }

  async placeRoom(roomCode: string, opts: { region?: string; now: number; seats?: number }): Promise<NodeRecord> {
    const placed = await this.place(roomCode, opts.region, "", opts.seats ?? 1);
    if (!placed) throw noCapacity("no ready game server has room for a new room");
    return placed;
  }

  /**
   * Places a new room and reserves one player seat on its node in the same atomic step (player
   * sessions: MAX_PLAYERS_PER_SERVER bounds the seats). Undefined when no ready node has both.
   */
  async placeRoomWithSeat(roomCode: string, seatHolder: string, region?: string): Promise<NodeRecord | undefined> {
    return this.place(roomCode, region, seatHolder, 1);
  }

  async releaseRoom(roomCode: string): Promise<void> {
    const id = await this.redis.get(this.keys.roomNode(roomCode));
    if (id) await this.release(roomCode, id, "");
  }

  /** Forgets a room placed on `nodeId` and frees the seat `seatHolder` held there. Idempotent. */
  async release(roomCode: string, nodeId: string, seatHolder: string): Promise<void> {
    await releasePlacement(this.redis, this.keys, roomCode, nodeId, seatHolder);
  }

  private async place(roomCode: string, region: string | undefined, seat: string, seats: number): Promise<NodeRecord | undefined> {
    const roomKey = this.keys.roomNode(roomCode);
    // Existing placement: kept while its node lives (draining included), whatever the ring says now.
    let stale = "";
    const existing = await this.redis.get(roomKey);
    if (existing) {
      const node = await this.nodes.get(existing);
      if (placementIsLive(node)) return node;
      stale = existing;
    }
    const all = await this.nodes.list();
    const candidates = placementCandidates(all, region);
    if (candidates.length === 0) return undefined;
    const order = this.rings.get(candidates.map((n) => n.id)).order(roomCode);
    const keys: string[] = [roomKey];
    for (const id of order) keys.push(this.keys.node(id), this.keys.nodeRooms(id), this.keys.nodeSeats(id), this.keys.nodeRoomSeats(id));
    const [status, nodeId] = (await this.redis.eval(PLACE_LUA, keys.length, ...keys, roomCode, String(this.factor), seat, stale, String(Math.max(1, Math.floor(seats))), ...order)) as [number, string];
    if (status === -1) return undefined;
    if (stale && status === 1) await this.release(roomCode, stale, "").catch(() => {});
    if (status === 0 && seat) return undefined; // someone else placed this (new, unique) room: not ours
    const node = await this.nodes.get(nodeId);
    return node;
  }
}

/**
 * Forgets a room placed on `nodeId` (only if it is still placed there) and frees the seat
 * `seatHolder` ("" = none) held on that node. Idempotent. A function, not a method, so the
 * scheduler's reap tick can release expired sessions without a gateway.
 */
export async function releasePlacement(redis: Redis, keys: Keys, roomCode: string, nodeId: string, seatHolder: string): Promise<void> {
  await redis.eval(RELEASE_LUA, 5, keys.roomNode(roomCode), keys.nodeRooms(nodeId), keys.node(nodeId), keys.nodeSeats(nodeId), keys.nodeRoomSeats(nodeId), roomCode, nodeId, seatHolder);
}
