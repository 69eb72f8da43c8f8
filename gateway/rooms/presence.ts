/**
 * Room presence (issue 6, the seat reaper): which seated players have a WebSocket open to their
 * room. The relay hub calls `connected` when a player's socket to a room with a record opens and
 * `disconnected` when it closes — on connect and disconnect only, never per frame.
 *
 * Stored per deployment: a hash per room (player → open sockets, over every gateway, since a
 * player may hold several) and one zset of absences (`code|player` → absent since, ms). The seat
 * claims (room create/join, the matchmaker's claim) add the absence a new seat starts with; the
 * first socket removes it; the last socket's close puts it back with the close time. Each change is
 * one script, so a connect on one gateway racing a disconnect on another ends in the right state
 * whichever runs first (the count decides, not the order).
 */
import type { Keys } from "../../core/keys.ts";
import type { Redis } from "../../core/redis.ts";
import type { RoomPresence } from "../contracts.ts";
import { LuaScript } from "./lua-script.ts";

/**
 * KEYS[1] room hash, KEYS[2] room players, KEYS[3] absences zset, KEYS[4] presence hash.
 * ARGV[1] now, ARGV[2] code, ARGV[3] player. Returns the player's open-socket count (0: no record).
 */
const CONNECTED = `
local st = redis.call('HGET', KEYS[1], 'state')
if not st or st == 'completed' then return 0 end
redis.call('ZREM', KEYS[3], ARGV[2] .. '|' .. ARGV[3])
return redis.call('HINCRBY', KEYS[4], ARGV[3], 1)
`;

/**
 * Same KEYS/ARGV. The last socket's close makes a still-seated player absent since now. A count
 * at or below zero (the room closed and dropped the counts while sockets were open) is removed.
 */
const DISCONNECTED = `
local n = redis.call('HINCRBY', KEYS[4], ARGV[3], -1)
if n > 0 then return n end
redis.call('HDEL', KEYS[4], ARGV[3])
local st = redis.call('HGET', KEYS[1], 'state')
if st and st ~= 'completed' and redis.call('HEXISTS', KEYS[2], ARGV[3]) == 1 then
  redis.call('ZADD', KEYS[3], ARGV[1], ARGV[2] .. '|' .. ARGV[3])
end
return 0
`;

const scripts = {
  connected: new LuaScript("room-presence-connected", CONNECTED),
  disconnected: new LuaScript("room-presence-disconnected", DISCONNECTED),
};

/** The Redis-backed RoomPresence. */
export function createRoomPresence(deps: { redis: Redis; keys: Keys }): RoomPresence {
  const keysOf = (code: string) => [deps.keys.room(code), deps.keys.roomPlayers(code), deps.keys.roomAbsences, deps.keys.roomPresence(code)];
  return {
    async connected(code, playerId, now) {
      await scripts.connected.run(deps.redis, keysOf(code), [now, code, playerId]);
    },
    async disconnected(code, playerId, now) {
      await scripts.disconnected.run(deps.redis, keysOf(code), [now, code, playerId]);
    },
  };
}

/** An absence as stored: `code|player` → since. Room codes never contain `|`; player ids may. */
export function parseAbsenceMember(member: string): { code: string; playerId: string } | undefined {
  const i = member.indexOf("|");
  if (i <= 0 || i === member.length - 1) return undefined;
  return { code: member.slice(0, i), playerId: member.slice(i + 1) };
}
