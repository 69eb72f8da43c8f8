/**
 * The room store's Lua scripts. Every script that changes a room uses one KEYS layout, so the
 * helpers below can be shared:
 *
 *   KEYS[1] room hash        KEYS[2] players hash (playerId -> join order)
 *   KEYS[3] banned set       KEYS[4] invites set      KEYS[5] restart votes set
 *   KEYS[6] lobby zset (the room's mode/region)       KEYS[7] live rooms set
 *   KEYS[8] lobbies set ("mode|region")               KEYS[9] script-specific (seat token / results stream)
 *   KEYS[10] absences zset ("code|player" -> absent since, ms)
 *   KEYS[11] presence hash ("gatewayId|player" -> open sockets on that gateway)
 *   ARGV[1] now (ms)   ARGV[2] room code   ARGV[3] retention of a completed room (ms)
 *   ARGV[4..] script-specific
 *
 * Errors are returned, not raised: `{"ERR", CODE}`; the store maps CODE to an AppError.
 * Mode and region never change after creation, so the caller may build the lobby key from a
 * read made before the script runs.
 *
 * Presence (the seat reaper, ./presence.ts and ./seat-reaper.ts): a seat taken here is "absent
 * since now" until the player's first socket opens; leaving, a kick or the room closing forgets
 * the absence in the same script, so the reaper never sees a seat that no longer exists.
 */

/**
 * Whether a player has a socket open to the room on any gateway. The presence hash's fields are
 * "gatewayId|player" (gateway ids never contain '|'); a room has at most maxPlayers × gateways.
 */
export const PLAYER_PRESENT = `
local function player_present(presence, player)
  local flat = redis.call('HGETALL', presence)
  for i = 1, #flat, 2 do
    local f = flat[i]
    local bar = string.find(f, '|', 1, true)
    if bar and string.sub(f, bar + 1) == player and tonumber(flat[i + 1]) > 0 then return true end
  end
  return false
end
`;

/** Shared helpers: lobby listing, closing, restart check. Prepended to every room script. */
export const ROOM_HELPERS = `${PLAYER_PRESENT}
local function relist(room, players, lobby, lobbies, code)
  local f = redis.call('HMGET', room, 'state', 'visibility', 'maxPlayers', 'createdAt', 'mode', 'region')
  if f[1] == 'waiting' and f[2] == 'public' and redis.call('HLEN', players) < tonumber(f[3]) then
    redis.call('ZADD', lobby, tonumber(f[4]), code)
    redis.call('SADD', lobbies, f[5] .. '|' .. f[6])
  else
    redis.call('ZREM', lobby, code)
  end
end

-- A new seat is absent until the player's first socket opens (none can be open yet, unless the
-- player left and re-joined while a socket stayed open: then they are present).
local function seat_absent(code, player, now)
  if not player_present(KEYS[11], player) then
    redis.call('ZADD', KEYS[10], now, code .. '|' .. player)
  end
end

local function close_room(now, code, retention)
  for _, p in ipairs(redis.call('HKEYS', KEYS[2])) do redis.call('ZREM', KEYS[10], code .. '|' .. p) end
  -- Open sockets are closed by the room's close event; their disconnects find no count and no seat.
  redis.call('DEL', KEYS[11])
  redis.call('HSET', KEYS[1], 'state', 'completed', 'closedAt', now)
  redis.call('ZREM', KEYS[6], code)
  redis.call('SREM', KEYS[7], code)
  redis.call('DEL', KEYS[5])
  for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], retention) end
end

-- In state 'ending', a restart happens once at least 2 players are seated and every one of them
-- has voted. Votes of players who left do not count.
local function maybe_restart(now, code)
  if redis.call('HGET', KEYS[1], 'state') ~= 'ending' then return 0 end
  local n = redis.call('HLEN', KEYS[2])
  if n < 2 then return 0 end
  for _, p in ipairs(redis.call('SMEMBERS', KEYS[5])) do
    if redis.call('HEXISTS', KEYS[2], p) == 0 then redis.call('SREM', KEYS[5], p) end
  end
  if redis.call('SCARD', KEYS[5]) < n then return 0 end
  redis.call('DEL', KEYS[5])
  redis.call('HSET', KEYS[1], 'state', 'waiting', 'restartedAt', now)
  redis.call('HDEL', KEYS[1], 'startingAt', 'activeAt', 'endedAt')
  redis.call('HINCRBY', KEYS[1], 'matchNumber', 1)
  relist(KEYS[1], KEYS[2], KEYS[6], KEYS[8], code)
  return 1
end

local function live_room()
  local st = redis.call('HGET', KEYS[1], 'state')
  if not st then return nil, {'ERR', 'NOT_FOUND'} end
  if st == 'completed' then return nil, {'ERR', 'ROOM_CLOSED'} end
  return st, nil
end

local function is_host(player)
  return redis.call('HGET', KEYS[1], 'hostId') == player
end

-- A seated player leaves (POST /leave, or the seat reaper). The host's leaving hands the room to
-- the longest-seated player; the last player's leaving closes the room.
-- Returns {"OK", newHostId or "", closed 0/1, restarted 0/1}, or {"ERR", "NOT_SEATED"}.
local function leave_seat(now, code, retention, player)
  if redis.call('HDEL', KEYS[2], player) == 0 then return {'ERR', 'NOT_SEATED'} end
  redis.call('ZREM', KEYS[10], code .. '|' .. player)
  redis.call('SREM', KEYS[5], player)
  if redis.call('HLEN', KEYS[2]) == 0 then
    close_room(now, code, retention)
    return {'OK', '', 1, 0}
  end
  local newHost = ''
  if is_host(player) then
    local flat = redis.call('HGETALL', KEYS[2])
    local best, bestSeq = nil, nil
    for i = 1, #flat, 2 do
      local s = tonumber(flat[i + 1])
      if bestSeq == nil or s < bestSeq or (s == bestSeq and flat[i] < best) then best, bestSeq = flat[i], s end
    end
    redis.call('HSET', KEYS[1], 'hostId', best)
    newHost = best
  end
  relist(KEYS[1], KEYS[2], KEYS[6], KEYS[8], code)
  return {'OK', newHost, 0, maybe_restart(now, code)}
end
`;

/**
 * Creates a room with its first players seated (host first), unless the code is taken — by a
 * room record, or by an ad-hoc room already placed on a node (KEYS[9] its room → node key).
 * ARGV[4] field count n, then n name/value pairs, then the player ids to seat (the host first).
 * Returns 1, or 0 when the code exists.
 */
export const CREATE_ROOM = `${ROOM_HELPERS}
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[9]) == 1 then return 0 end
local nf = tonumber(ARGV[4])
local fields = {}
for i = 1, nf * 2 do fields[i] = ARGV[4 + i] end
redis.call('HSET', KEYS[1], unpack(fields))
local seq = 0
for i = 5 + nf * 2, #ARGV do
  seq = seq + 1
  redis.call('HSET', KEYS[2], ARGV[i], seq)
  seat_absent(ARGV[2], ARGV[i], ARGV[1])
end
redis.call('HSET', KEYS[1], 'seq', seq)
redis.call('SADD', KEYS[7], ARGV[2])
relist(KEYS[1], KEYS[2], KEYS[6], KEYS[8], ARGV[2])
return 1
`;

/**
 * Seats a player (or re-issues a seat to one already seated) and stores a seat token.
 * ARGV[4] player, ARGV[5] password state (none|ok|bad|missing), ARGV[6] token value, ARGV[7] token TTL (ms).
 * KEYS[9] the seat token key. Returns {"OK", "new"|"again"} or {"ERR", code}.
 */
export const JOIN_ROOM = `${ROOM_HELPERS}
local st, err = live_room()
if err then return err end
local player = ARGV[4]
if redis.call('SISMEMBER', KEYS[3], player) == 1 then return {'ERR', 'KICKED'} end
local how = 'again'
if redis.call('HEXISTS', KEYS[2], player) == 0 then
  if st ~= 'waiting' then return {'ERR', 'NOT_JOINABLE'} end
  local invited = redis.call('SISMEMBER', KEYS[4], player) == 1
  if not invited then
    local pw = ARGV[5]
    local private = redis.call('HGET', KEYS[1], 'visibility') == 'private'
    if pw == 'none' then
      if private then return {'ERR', 'NOT_INVITED'} end
    elseif pw ~= 'ok' then
      return {'ERR', 'WRONG_PASSWORD'}
    end
  end
  -- The capacity check and the seat write are in one script: concurrent joins cannot overfill.
  if redis.call('HLEN', KEYS[2]) >= tonumber(redis.call('HGET', KEYS[1], 'maxPlayers')) then return {'ERR', 'ROOM_FULL'} end
  redis.call('HSET', KEYS[2], player, redis.call('HINCRBY', KEYS[1], 'seq', 1))
  seat_absent(ARGV[2], player, ARGV[1])
  relist(KEYS[1], KEYS[2], KEYS[6], KEYS[8], ARGV[2])
  how = 'new'
end
redis.call('SET', KEYS[9], ARGV[6], 'PX', ARGV[7])
return {'OK', how}
`;

/**
 * A player leaves. The host's leaving hands the room to the longest-seated player; the last
 * player's leaving closes the room. ARGV[4] player.
 * Returns {"OK", newHostId or "", closed 0/1, restarted 0/1}.
 */
export const LEAVE_ROOM = `${ROOM_HELPERS}
local st, err = live_room()
if err then return err end
return leave_seat(ARGV[1], ARGV[2], ARGV[3], ARGV[4])
`;

/**
 * The seat reaper frees one absent seat: the same leave as POST /leave, but only if the absence
 * the sweep read is still there with the same score (a player who reconnected, or reconnected
 * and left again, since the sweep read it is not reaped on stale data), no socket of the player
 * is open, and the room is in a state whose seats are reaped (not `active`).
 * ARGV[4] player, ARGV[5] the absent-since score the sweep read.
 * Returns the leave's reply, or {"SKIP", why} (why: moved | present | gone | active). A stale
 * entry (room closed or gone, player no longer seated, player present) is dropped.
 */
export const REAP_SEAT = `${ROOM_HELPERS}
local player = ARGV[4]
local member = ARGV[2] .. '|' .. player
local score = redis.call('ZSCORE', KEYS[10], member)
if not score or tonumber(score) ~= tonumber(ARGV[5]) then return {'SKIP', 'moved'} end
if player_present(KEYS[11], player) then
  redis.call('ZREM', KEYS[10], member)
  return {'SKIP', 'present'}
end
local st = redis.call('HGET', KEYS[1], 'state')
if not st or st == 'completed' or redis.call('HEXISTS', KEYS[2], player) == 0 then
  redis.call('ZREM', KEYS[10], member)
  return {'SKIP', 'gone'}
end
if st == 'active' then return {'SKIP', 'active'} end
return leave_seat(ARGV[1], ARGV[2], ARGV[3], player)
`;

/** A seated player invites another. ARGV[4] actor, ARGV[5] target. */
export const INVITE = `${ROOM_HELPERS}
local st, err = live_room()
if err then return err end
if redis.call('HEXISTS', KEYS[2], ARGV[4]) == 0 then return {'ERR', 'NOT_SEATED'} end
if redis.call('SISMEMBER', KEYS[3], ARGV[5]) == 1 then return {'ERR', 'TARGET_KICKED'} end
redis.call('SADD', KEYS[4], ARGV[5])
return {'OK'}
`;

/**
 * The host kicks a player: unseated, uninvited, banned from rejoining. Works on a player who is
 * not seated (yet) too. ARGV[4] actor, ARGV[5] target. Returns {"OK", wasSeated 0/1, restarted 0/1}.
 */
export const KICK = `${ROOM_HELPERS}
local st, err = live_room()
if err then return err end
if not is_host(ARGV[4]) then return {'ERR', 'NOT_HOST'} end
if ARGV[4] == ARGV[5] then return {'ERR', 'KICK_SELF'} end
redis.call('SADD', KEYS[3], ARGV[5])
redis.call('SREM', KEYS[4], ARGV[5])
redis.call('SREM', KEYS[5], ARGV[5])
redis.call('ZREM', KEYS[10], ARGV[2] .. '|' .. ARGV[5])
local was = redis.call('HDEL', KEYS[2], ARGV[5])
relist(KEYS[1], KEYS[2], KEYS[6], KEYS[8], ARGV[2])
return {'OK', was, maybe_restart(ARGV[1], ARGV[2])}
`;

/** The host hands the room to a seated player. ARGV[4] actor, ARGV[5] target. */
export const TRANSFER_HOST = `${ROOM_HELPERS}
local st, err = live_room()
if err then return err end
if not is_host(ARGV[4]) then return {'ERR', 'NOT_HOST'} end
if redis.call('HEXISTS', KEYS[2], ARGV[5]) == 0 then return {'ERR', 'TARGET_NOT_SEATED'} end
redis.call('HSET', KEYS[1], 'hostId', ARGV[5])
return {'OK'}
`;

/**
 * The host drives the state machine. ARGV[4] actor, ARGV[5] action, ARGV[6] results JSON (end),
 * ARGV[7] stream max length. KEYS[9] the match-results stream.
 *   start:    waiting  -> starting (at least 2 players; the room leaves the lobby browser)
 *   activate: starting -> active
 *   end:      active   -> ending   (result with duration appended to the stream)
 *   close:    waiting|starting|ending -> completed
 * Returns {"OK", state, streamId or "", durationMs or ""}.
 */
export const TRANSITION = `${ROOM_HELPERS}
local st, err = live_room()
if err then return err end
if not is_host(ARGV[4]) then return {'ERR', 'NOT_HOST'} end
local action, now = ARGV[5], ARGV[1]
if action == 'start' then
  if st ~= 'waiting' then return {'ERR', 'INVALID_STATE'} end
  if redis.call('HLEN', KEYS[2]) < 2 then return {'ERR', 'NOT_ENOUGH_PLAYERS'} end
  redis.call('HSET', KEYS[1], 'state', 'starting', 'startingAt', now)
  relist(KEYS[1], KEYS[2], KEYS[6], KEYS[8], ARGV[2])
  return {'OK', 'starting', '', ''}
elseif action == 'activate' then
  if st ~= 'starting' then return {'ERR', 'INVALID_STATE'} end
  redis.call('HSET', KEYS[1], 'state', 'active', 'activeAt', now)
  return {'OK', 'active', '', ''}
elseif action == 'end' then
  if st ~= 'active' then return {'ERR', 'INVALID_STATE'} end
  local f = redis.call('HMGET', KEYS[1], 'activeAt', 'mode', 'region', 'matchNumber')
  local duration = tonumber(now) - tonumber(f[1])
  local flat = redis.call('HGETALL', KEYS[2])
  local players = {}
  for i = 1, #flat, 2 do players[#players + 1] = flat[i] end
  table.sort(players)
  redis.call('HSET', KEYS[1], 'state', 'ending', 'endedAt', now)
  local id = redis.call('XADD', KEYS[9], 'MAXLEN', '~', ARGV[7], '*',
    'room', ARGV[2], 'mode', f[2], 'region', f[3], 'match', f[4] or '1',
    'startedAt', f[1], 'endedAt', now, 'durationMs', duration,
    'players', cjson.encode(players), 'results', ARGV[6])
  return {'OK', 'ending', id, duration}
elseif action == 'close' then
  if st == 'active' then return {'ERR', 'INVALID_STATE'} end
  close_room(now, ARGV[2], ARGV[3])
  return {'OK', 'completed', '', ''}
end
return {'ERR', 'INVALID_STATE'}
`;

/** A seated player votes to restart (state `ending`). ARGV[4] actor. Returns {"OK", votes, seated, restarted 0/1}. */
export const VOTE_RESTART = `${ROOM_HELPERS}
local st, err = live_room()
if err then return err end
if redis.call('HEXISTS', KEYS[2], ARGV[4]) == 0 then return {'ERR', 'NOT_SEATED'} end
if st ~= 'ending' then return {'ERR', 'INVALID_STATE'} end
redis.call('SADD', KEYS[5], ARGV[4])
local votes, seated = redis.call('SCARD', KEYS[5]), redis.call('HLEN', KEYS[2])
local restarted = maybe_restart(ARGV[1], ARGV[2])
return {'OK', votes, seated, restarted}
`;
