/**
 * The seat budget: the ONLY reader and writer of seat reservations on nodes (issue 9).
 *
 * A node record keeps two kinds of numbers apart:
 * - what the node REPORTS (`rooms`, `players`: its last `/health`, written by the health checks);
 * - what is RESERVED on it (`reservedRooms`, `reservedSeats`: written here, atomically with the
 *   reservation sets, so they are never stale):
 *   - a player session holds one seat (`nodeSeats`, member = session id);
 *   - a room holds its maxPlayers seats, at most the node's capacity (`nodeRoomSeats`, room → seats);
 *     an ad-hoc room (no record) holds one.
 *
 * Placement, the autoscaler's utilisation, `/v1/capacity`, `/metrics` and the dashboard all count
 * a node's load with `usedSeats` / `usedRooms` below: the larger of reported and reserved (a
 * reservation precedes the player's connection; a reported player may be in a room whose seat
 * count is unknown, e.g. an ad-hoc room with more players than the one seat it reserved).
 *
 * Redis layout (core/keys.ts): `nodeRooms(id)` set of room codes placed on the node,
 * `nodeSeats(id)` set of session ids, `nodeRoomSeats(id)` hash room code → seats, and the node
 * hash fields `reservedRooms` / `reservedSeats`. The node registry deletes these keys with the
 * node record (model/node-registry.ts, REMOVE_LUA) — the one other place that touches them.
 */
import type { Keys } from "../core/keys.ts";
import type { Redis } from "../core/redis.ts";
import type { NodeRecord } from "../core/types.ts";

/** Seats counted against a node's capacity: max(reported players, reserved seats), at most its capacity. */
export function usedSeats(n: Pick<NodeRecord, "players" | "reservedSeats" | "capacity">): number {
  return Math.min(n.capacity, Math.max(n.players, n.reservedSeats));
}

/** Rooms counted on a node: max(reported rooms, rooms placed on it). */
export function usedRooms(n: Pick<NodeRecord, "rooms" | "reservedRooms">): number {
  return Math.max(n.rooms, n.reservedRooms);
}

/** Seats a node can still give (0 when full). */
export function freeSeats(n: Pick<NodeRecord, "players" | "reservedSeats" | "capacity">): number {
  return Math.max(0, n.capacity - Math.max(n.players, n.reservedSeats));
}

/** Seats a new room takes on a node: its maxPlayers, at most the node's capacity (one server per match). */
export function roomSeatsOn(n: Pick<NodeRecord, "capacity">, maxPlayers: number): number {
  return Math.max(1, Math.min(Math.floor(maxPlayers), n.capacity));
}

/** Lua: recounts a node's reserved fields from its reservation sets (only while the node exists). */
const RECOUNT_FN = `
local function recount(nk, rk, sk, rsk)
  if redis.call('EXISTS', nk) == 0 then return end
  local seats = redis.call('SCARD', sk)
  for _, v in ipairs(redis.call('HVALS', rsk)) do seats = seats + (tonumber(v) or 0) end
  redis.call('HSET', nk, 'reservedRooms', redis.call('SCARD', rk), 'reservedSeats', seats)
end
`;

/**
 * KEYS[1] room → node string
 * KEYS[2+4i], KEYS[3+4i], KEYS[4+4i], KEYS[5+4i]: node hash, node rooms set, node seats set, node
 *   room-seats hash of candidate i (in ring order)
 * ARGV[1] room code, ARGV[2] load factor, ARGV[3] seat holder id ("" = place without a session seat),
 * ARGV[4] stale node id the room may be taken from ("" = none), ARGV[5] player seats the room takes
 * (its maxPlayers; 1 for an ad-hoc room; ignored with a seat holder, who takes one),
 * ARGV[6..] candidate ids.
 * A node takes the room while it holds fewer than maxRooms rooms (and fewer than the bounded-load
 * bound) and max(reported players, reserved seats) plus the room's seats fit its capacity.
 * Returns {1, nodeId} placed; {0, nodeId} already placed (by someone else); {-1, ""} no capacity.
 */
const PLACE_LUA =
  RECOUNT_FN +
  `
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
  local f = redis.call('HMGET', nk, 'state', 'maxRooms', 'capacity', 'players')
  if f[1] == 'ready' then
    local rooms = redis.call('SCARD', KEYS[3 + (i - 1) * 4])
    local seatCap = tonumber(f[3] or '0') or 0
    local reserved = redis.call('SCARD', KEYS[4 + (i - 1) * 4])
    for _, v in ipairs(redis.call('HVALS', KEYS[5 + (i - 1) * 4])) do reserved = reserved + (tonumber(v) or 0) end
    local used = math.max(reserved, tonumber(f[4] or '0') or 0)
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
    local b = 2 + (e.i - 1) * 4
    local id = ARGV[5 + e.i]
    redis.call('SET', KEYS[1], id)
    redis.call('SADD', KEYS[b + 1], ARGV[1])
    if seat ~= '' then
      redis.call('SADD', KEYS[b + 2], seat)
    else
      redis.call('HSET', KEYS[b + 3], ARGV[1], e.w)
    end
    recount(KEYS[b], KEYS[b + 1], KEYS[b + 2], KEYS[b + 3])
    return {1, id}
  end
end
return {-1, ''}
`;

/**
 * KEYS[1] room → node, KEYS[2] node rooms set, KEYS[3] node hash, KEYS[4] node seats set,
 * KEYS[5] node room-seats hash; ARGV[1] room code, ARGV[2] node id, ARGV[3] seat holder id ("" = none)
 * Forgets the room only if it is still placed on that node (compare-and-delete), frees its seats.
 */
const RELEASE_LUA =
  RECOUNT_FN +
  `
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[2] then redis.call('DEL', KEYS[1]) end
redis.call('HDEL', KEYS[5], ARGV[1])
redis.call('SREM', KEYS[2], ARGV[1])
if ARGV[3] ~= '' then redis.call('SREM', KEYS[4], ARGV[3]) end
recount(KEYS[3], KEYS[2], KEYS[4], KEYS[5])
return 1
`;

export type ReserveResult = { status: "placed"; nodeId: string } | { status: "already"; nodeId: string } | { status: "full" };

/** The seat budget in Redis. Stateless apart from its connection: any number of processes share it. */
export class SeatBudget {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  /**
   * Places `roomCode` on the first of `candidateIds` (ring order) with room for it and reserves its
   * seats, in one atomic step: `seatHolder` (a player session) takes one seat, otherwise the room
   * takes `seats`. `stale` names a dead node the room may be taken from.
   */
  async reserve(roomCode: string, candidateIds: readonly string[], opts: { loadFactor: number; seatHolder?: string; seats?: number; stale?: string }): Promise<ReserveResult> {
    const keys: string[] = [this.keys.roomNode(roomCode)];
    for (const id of candidateIds) keys.push(this.keys.node(id), this.keys.nodeRooms(id), this.keys.nodeSeats(id), this.keys.nodeRoomSeats(id));
    const [status, nodeId] = (await this.redis.eval(
      PLACE_LUA,
      keys.length,
      ...keys,
      roomCode,
      String(opts.loadFactor),
      opts.seatHolder ?? "",
      opts.stale ?? "",
      String(Math.max(1, Math.floor(opts.seats ?? 1))),
      ...candidateIds,
    )) as [number, string];
    if (status === -1) return { status: "full" };
    return { status: status === 1 ? "placed" : "already", nodeId };
  }

  /** Forgets a room placed on `nodeId` (only if it is still placed there) and frees its seats and `seatHolder`'s. Idempotent. */
  async release(roomCode: string, nodeId: string, seatHolder = ""): Promise<void> {
    await releaseReservation(this.redis, this.keys, roomCode, nodeId, seatHolder);
  }

  /** The node a room is placed on, if any. */
  async nodeOf(roomCode: string): Promise<string | undefined> {
    return (await this.redis.get(this.keys.roomNode(roomCode))) ?? undefined;
  }
}

/**
 * Forgets a room placed on `nodeId` (only if it is still placed there) and frees the seat
 * `seatHolder` ("" = none) held on that node. A function as well as a method, so the scheduler's
 * reap tick can release expired sessions without building a budget.
 */
export async function releaseReservation(redis: Redis, keys: Keys, roomCode: string, nodeId: string, seatHolder: string): Promise<void> {
  await redis.eval(RELEASE_LUA, 5, keys.roomNode(roomCode), keys.nodeRooms(nodeId), keys.node(nodeId), keys.nodeSeats(nodeId), keys.nodeRoomSeats(nodeId), roomCode, nodeId, seatHolder);
}
