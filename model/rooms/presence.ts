/**
 * Room presence (issue 6, the seat reaper): which seated players have a WebSocket open to their
 * room. The relay hub calls `connected` when a player's socket to a room with a record opens and
 * `disconnected` when it closes — on connect and disconnect only, never per frame.
 *
 * Stored per deployment:
 * - a hash per room, "gatewayId|player" → sockets open on that gateway (a player may hold several,
 *   on several gateways);
 * - one zset of absences, "code|player" → absent since (ms). The seat claims (room create/join, the
 *   matchmaker's claim) add the absence a new seat starts with; the first socket removes it; the
 *   last socket's close, on whichever gateway, puts it back with the close time;
 * - per gateway, the set of "code|player" it holds sockets for, and a zset of gateways that wrote
 *   presence. A gateway that dies (killed, crashed) never reports its closes: once it has neither
 *   heartbeated (GatewayRegistry) nor written presence for three heartbeat intervals, the sweep
 *   (`dropDeadGatewayPresence`) removes its counts, and players with no socket elsewhere become
 *   absent from then on.
 *
 * Each change is one script, so a connect on one gateway racing a disconnect on another ends in the
 * right state whichever runs first (the counts decide, not the order).
 */
import type { Keys } from "../../core/keys.ts";
import type { Redis } from "../../core/redis.ts";
import type { RoomPresence } from "../contracts.ts";
import { LuaScript } from "../lua-script.ts";
import { PLAYER_PRESENT } from "./room-lua.ts";

/*
 * Shared layout: KEYS[1] room hash, KEYS[2] room players, KEYS[3] absences zset, KEYS[4] room
 * presence hash, KEYS[5] the gateway's presence set, KEYS[6] presence-gateways zset.
 * ARGV[1] now, ARGV[2] code, ARGV[3] player, ARGV[4] gateway id.
 */

/** Marks a still-seated player of a live room absent since now, unless a socket is open elsewhere. */
const ABSENT_IF_GONE = `${PLAYER_PRESENT}
local function absent_if_gone(now, code, player)
  if player_present(KEYS[4], player) then return end
  local st = redis.call('HGET', KEYS[1], 'state')
  if st and st ~= 'completed' and redis.call('HEXISTS', KEYS[2], player) == 1 then
    redis.call('ZADD', KEYS[3], now, code .. '|' .. player)
  end
end
`;

/** Returns the player's socket count on this gateway (0: the room has no live record; nothing written). */
const CONNECTED = `
local st = redis.call('HGET', KEYS[1], 'state')
if not st or st == 'completed' then return 0 end
local member = ARGV[2] .. '|' .. ARGV[3]
redis.call('ZREM', KEYS[3], member)
redis.call('SADD', KEYS[5], member)
redis.call('ZADD', KEYS[6], ARGV[1], ARGV[4])
return redis.call('HINCRBY', KEYS[4], ARGV[4] .. '|' .. ARGV[3], 1)
`;

/**
 * The last socket of the player on this gateway makes them absent if none is open elsewhere. A count
 * at or below zero (the room closed and dropped the counts while sockets were open) is removed.
 */
const DISCONNECTED = `${ABSENT_IF_GONE}
local field = ARGV[4] .. '|' .. ARGV[3]
local n = redis.call('HINCRBY', KEYS[4], field, -1)
if n > 0 then return n end
redis.call('HDEL', KEYS[4], field)
redis.call('SREM', KEYS[5], ARGV[2] .. '|' .. ARGV[3])
absent_if_gone(ARGV[1], ARGV[2], ARGV[3])
return 0
`;

/** A dead gateway's sockets to one room for one player are gone. */
const DROP_GATEWAY_SEAT = `${ABSENT_IF_GONE}
redis.call('HDEL', KEYS[4], ARGV[4] .. '|' .. ARGV[3])
redis.call('SREM', KEYS[5], ARGV[2] .. '|' .. ARGV[3])
absent_if_gone(ARGV[1], ARGV[2], ARGV[3])
return 1
`;

/** Forgets a dead gateway once its set is empty. KEYS[1] its set, KEYS[2] presence-gateways; ARGV[1] gateway id. */
const FORGET_GATEWAY = `
if redis.call('SCARD', KEYS[1]) == 0 then return redis.call('ZREM', KEYS[2], ARGV[1]) end
return 0
`;

const scripts = {
  connected: new LuaScript("room-presence-connected", CONNECTED),
  disconnected: new LuaScript("room-presence-disconnected", DISCONNECTED),
  dropGatewaySeat: new LuaScript("room-presence-drop-gateway-seat", DROP_GATEWAY_SEAT),
  forgetGateway: new LuaScript("room-presence-forget-gateway", FORGET_GATEWAY),
};

function keysOf(keys: Keys, code: string, gatewayId: string): string[] {
  return [keys.room(code), keys.roomPlayers(code), keys.roomAbsences, keys.roomPresence(code), keys.gatewayPresence(gatewayId), keys.presenceGateways];
}

/** The Redis-backed RoomPresence of one gateway replica. */
export function createRoomPresence(deps: { redis: Redis; keys: Keys; gatewayId: string }): RoomPresence {
  return {
    async connected(code, playerId, now) {
      await scripts.connected.run(deps.redis, keysOf(deps.keys, code, deps.gatewayId), [now, code, playerId, deps.gatewayId]);
    },
    async disconnected(code, playerId, now) {
      await scripts.disconnected.run(deps.redis, keysOf(deps.keys, code, deps.gatewayId), [now, code, playerId, deps.gatewayId]);
    },
  };
}

/**
 * Drops the presence of gateways that died without reporting their closes: those that have neither
 * heartbeated in the GatewayRegistry nor written presence for `deadAfterMs`. Their players with no
 * socket on another gateway become absent since `now`. Idempotent; safe in several sweepers at once.
 * A gateway only stalled that long keeps its sockets; their players may then be reaped after the
 * grace and are refused (4003) on their next reconnect until they join again.
 * Returns the gateways dropped.
 */
export async function dropDeadGatewayPresence(deps: { redis: Redis; keys: Keys }, now: number, deadAfterMs: number): Promise<string[]> {
  const { redis, keys } = deps;
  const stale = await redis.zrangebyscore(keys.presenceGateways, "-inf", now - deadAfterMs);
  const dropped: string[] = [];
  for (const gw of stale) {
    const beat = await redis.zscore(keys.gateways, gw);
    if (beat !== null && Number(beat) > now - deadAfterMs) continue;
    for (const member of await redis.smembers(keys.gatewayPresence(gw))) {
      const m = parseAbsenceMember(member);
      if (!m) {
        await redis.srem(keys.gatewayPresence(gw), member);
        continue;
      }
      await scripts.dropGatewaySeat.run(redis, keysOf(keys, m.code, gw), [now, m.code, m.playerId, gw]);
    }
    await scripts.forgetGateway.run(redis, [keys.gatewayPresence(gw), keys.presenceGateways], [gw]);
    dropped.push(gw);
  }
  return dropped;
}

/** An absence (or presence) member: `code|player`. Room codes never contain `|`; player ids may. */
export function parseAbsenceMember(member: string): { code: string; playerId: string } | undefined {
  const i = member.indexOf("|");
  if (i <= 0 || i === member.length - 1) return undefined;
  return { code: member.slice(0, i), playerId: member.slice(i + 1) };
}
