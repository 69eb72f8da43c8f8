/**
 * Moving a live room off a lost node (CONTRACT "Session resume"), shared by every gateway replica.
 *
 * One placement for the whole room, however many gateways hold its players: the room's placement
 * is released only by a compare-and-delete on `room → lost node` (the seat budget's release), and
 * the new placement is the seat budget's atomic reserve — so the first gateway to get there places
 * the room and every later one (same or other replica) finds `room → new node` and follows it.
 *
 * A node the gateway found unreachable is also taken out of placement at once (`ready|draining →
 * unhealthy`, the state the health checker would give it after HEALTH_CHECK_FAILURES probes), so
 * no room — this one or a new one — is placed on it again meanwhile; the health checker turns it
 * back `ready` if it answers again.
 */
import type { Keys } from "../core/keys.ts";
import type { Redis } from "../core/redis.ts";
import { InvalidTransitionError, NodeNotFoundError, type NodeRegistry } from "./node-registry.ts";

/** What this module needs of placement: the compare-and-delete release of the seat budget. */
export interface PlacementRelease {
  /** Forgets a room placed on `nodeId` (only if it is still placed there) and frees its seats. Idempotent. */
  release(roomCode: string, nodeId: string, seatHolder: string): Promise<void>;
}

export interface RoomResume {
  /** The room left `fromNodeId`: releases its placement there if it is still there (once, whoever asks first). */
  leave(roomCode: string, fromNodeId: string): Promise<void>;
  /**
   * Takes an unreachable node out of placement (`unhealthy`). True when this call did it (the
   * caller may then ask for a replacement); false when the node was already out or is gone.
   */
  markLost(nodeId: string, now: number, reason: string): Promise<boolean>;
  /** The room's resume count, incremented (one per resume of the room, shared by its players' gateways). */
  nextResume(roomCode: string, fromNodeId: string, ttlMs: number): Promise<number>;
}

/**
 * KEYS[1] room resume counter; ARGV[1] the node the room is leaving, ARGV[2] ttl ms.
 * The counter moves once per lost node: `n|node` is kept, and asking again for the same node
 * returns the same n (every player of one resume gets the same attempt number).
 */
const NEXT_RESUME_LUA = `
local cur = redis.call('GET', KEYS[1])
local n = 0
if cur then
  local sep = string.find(cur, '|', 1, true)
  n = tonumber(string.sub(cur, 1, sep - 1)) or 0
  if string.sub(cur, sep + 1) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return n
  end
end
n = n + 1
redis.call('SET', KEYS[1], n .. '|' .. ARGV[1], 'PX', ARGV[2])
return n
`;

export class RedisRoomResume implements RoomResume {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly nodes: NodeRegistry,
    private readonly placement: PlacementRelease,
  ) {}

  async leave(roomCode: string, fromNodeId: string): Promise<void> {
    await this.placement.release(roomCode, fromNodeId, "");
  }

  async markLost(nodeId: string, now: number, reason: string): Promise<boolean> {
    try {
      await this.nodes.transition(nodeId, "unhealthy", now, { expectFrom: ["ready", "draining"], reason });
      return true;
    } catch (err) {
      if (err instanceof InvalidTransitionError || err instanceof NodeNotFoundError) return false;
      throw err;
    }
  }

  async nextResume(roomCode: string, fromNodeId: string, ttlMs: number): Promise<number> {
    return Number(await this.redis.eval(NEXT_RESUME_LUA, 1, this.keys.roomResume(roomCode), fromNodeId, String(Math.max(1, Math.floor(ttlMs)))));
  }
}
