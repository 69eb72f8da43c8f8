/** The matchmaking tickets' Lua scripts. Each is atomic and takes `now` as ARGV[1]. */

/**
 * Enqueues a ticket unless the player already has a live one.
 * KEYS[1] ticket hash, KEYS[2] queue zset, KEYS[3] queues set, KEYS[4] player's ticket,
 * KEYS[5] the ticket hash of the player's ticket id as read just before (KEYS[1] when none).
 * ARGV[1] now, [2] id, [3] playerId, [4] mode, [5] region, [6] rating ("" = none), [7] ticket TTL,
 * [8] record retention, [9] the player's ticket id as read before ("" = none), [10] fallback regions
 * as a JSON array ("" = sent without latencies: any region after REGION_FALLBACK_WAIT).
 * Returns {"OK"}, {"ERR", "RETRY"} when the player's ticket changed since the read, or
 * {"ERR", "ALREADY_QUEUED", existingId}.
 */
export const CREATE_TICKET = `
local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[7])
local existing = redis.call('GET', KEYS[4])
if (existing or '') ~= ARGV[9] then return {'ERR', 'RETRY'} end
if existing then
  local f = redis.call('HMGET', KEYS[5], 'status', 'createdAt')
  if f[1] == 'queued' and tonumber(f[2]) + ttl > now then return {'ERR', 'ALREADY_QUEUED', existing} end
end
redis.call('HSET', KEYS[1], 'id', ARGV[2], 'playerId', ARGV[3], 'mode', ARGV[4], 'region', ARGV[5], 'rating', ARGV[6], 'createdAt', ARGV[1], 'status', 'queued', 'fallbacks', ARGV[10] or '')
redis.call('PEXPIRE', KEYS[1], ttl + tonumber(ARGV[8]))
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[4] .. '|' .. ARGV[5])
redis.call('SET', KEYS[4], ARGV[2], 'PX', ttl)
return {'OK'}
`;

/**
 * The owner cancels a queued ticket. KEYS[1] ticket, KEYS[2] queue, KEYS[3] player's ticket.
 * ARGV[1] now, [2] playerId, [3] ticket TTL, [4] ticket id.
 * Returns {"OK"} or {"ERR", code, status}.
 */
export const CANCEL_TICKET = `
local f = redis.call('HMGET', KEYS[1], 'playerId', 'status', 'createdAt')
if not f[1] then return {'ERR', 'NOT_FOUND', ''} end
if f[1] ~= ARGV[2] then return {'ERR', 'NOT_OWNER', ''} end
if f[2] ~= 'queued' then return {'ERR', 'NOT_QUEUED', f[2]} end
redis.call('ZREM', KEYS[2], ARGV[4])
if redis.call('GET', KEYS[3]) == ARGV[4] then redis.call('DEL', KEYS[3]) end
if tonumber(f[3]) + tonumber(ARGV[3]) <= tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'status', 'expired', 'closedAt', ARGV[1])
  return {'ERR', 'NOT_QUEUED', 'expired'}
end
redis.call('HSET', KEYS[1], 'status', 'cancelled', 'closedAt', ARGV[1])
return {'OK'}
`;

/**
 * Expires a queued ticket (TTL reached), or drops a queue entry whose ticket is no longer queued.
 * KEYS[1] ticket, KEYS[2] queue, KEYS[3] player's ticket, KEYS[4] queues set.
 * ARGV[1] now, [2] ticket id, [3] "mode|region", [4] expire 1/0 (0 = only drop a stale entry).
 */
export const EXPIRE_TICKET = `
local st = redis.call('HGET', KEYS[1], 'status')
if st == 'queued' and ARGV[4] == '1' then
  redis.call('HSET', KEYS[1], 'status', 'expired', 'closedAt', ARGV[1])
  if redis.call('GET', KEYS[3]) == ARGV[2] then redis.call('DEL', KEYS[3]) end
  redis.call('ZREM', KEYS[2], ARGV[2])
elseif st ~= 'queued' then
  redis.call('ZREM', KEYS[2], ARGV[2])
end
-- Same script as the create's ZADD+SADD is atomic with, so an empty queue is never forgotten while a ticket is added.
if redis.call('ZCARD', KEYS[2]) == 0 then redis.call('SREM', KEYS[4], ARGV[3]) end
return 1
`;

/** Forgets an empty queue. KEYS[1] queue, KEYS[2] queues set; ARGV[1] "mode|region". */
export const FORGET_EMPTY_QUEUE = `
if redis.call('ZCARD', KEYS[1]) == 0 then return redis.call('SREM', KEYS[2], ARGV[1]) end
return 0
`;

/**
 * Claims the tickets of one match and creates its room, all or nothing. No ticket is ever
 * matched twice: the first claim to run moves them out of `queued`, every later claim for any of
 * them finds a ticket that is not queued and writes nothing.
 *
 * KEYS[1] room hash, KEYS[2] room players, KEYS[3] live rooms set,
 *   then per ticket i (0-based) KEYS[4+3i] ticket, KEYS[5+3i] player's ticket, KEYS[6+3i] seat token,
 *   then the queue zsets, then the room-absences zset, then (last) the room's room → node key (an
 *   ad-hoc room using the code). Every seated player starts absent (since now) until their first
 *   socket opens, so a matched player who never shows is reaped (model/rooms/seat-reaper.ts).
 * ARGV[1] now, [2] room code, [3] ticket count n, [4] ticket TTL, [5] seat-token TTL, [6] retention
 *   of a matched ticket record, [7] room field count f, then f name/value pairs,
 *   then per ticket: id, playerId, team, seat-token id, seat-token value, queue index (1-based among the queue keys).
 * Returns {"OK"}, {"CODE_TAKEN"} or {"STALE", id...}.
 */
export const CLAIM_MATCH = `
local now, n, ttl = tonumber(ARGV[1]), tonumber(ARGV[3]), tonumber(ARGV[4])
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[#KEYS]) == 1 then return {'CODE_TAKEN'} end
local nf = tonumber(ARGV[7])
local base = 8 + nf * 2
local qbase = 3 + n * 3
local stale = {}
for i = 0, n - 1 do
  local a = base + i * 6
  local f = redis.call('HMGET', KEYS[4 + i * 3], 'status', 'playerId', 'createdAt')
  if f[1] ~= 'queued' or f[2] ~= ARGV[a + 1] or tonumber(f[3]) + ttl <= now then stale[#stale + 1] = ARGV[a] end
end
if #stale > 0 then
  table.insert(stale, 1, 'STALE')
  return stale
end
local fields = {}
for i = 1, nf * 2 do fields[i] = ARGV[7 + i] end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('HSET', KEYS[1], 'seq', n)
redis.call('SADD', KEYS[3], ARGV[2])
for i = 0, n - 1 do
  local a = base + i * 6
  local id, player = ARGV[a], ARGV[a + 1]
  redis.call('HSET', KEYS[2], player, i + 1)
  redis.call('ZADD', KEYS[#KEYS - 1], now, ARGV[2] .. '|' .. player)
  redis.call('HSET', KEYS[4 + i * 3], 'status', 'matched', 'roomCode', ARGV[2], 'team', ARGV[a + 2], 'seatToken', ARGV[a + 3], 'matchedAt', ARGV[1])
  redis.call('PEXPIRE', KEYS[4 + i * 3], tonumber(ARGV[6]))
  if redis.call('GET', KEYS[5 + i * 3]) == id then redis.call('DEL', KEYS[5 + i * 3]) end
  redis.call('SET', KEYS[6 + i * 3], ARGV[a + 4], 'PX', ARGV[5])
  redis.call('ZREM', KEYS[qbase + tonumber(ARGV[a + 5])], id)
end
return {'OK'}
`;
