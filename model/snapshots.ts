/**
 * Room snapshots (CONTRACT "Session resume"): the opaque bytes a node saves about one of its rooms,
 * so the node that takes the room over after a loss can read where the game was. One snapshot per
 * room, kept SNAPSHOT_TTL after its last write and deleted when the room closes.
 *
 * A node may only write a snapshot of a room placed on it: the write is a compare-and-set on the
 * room's placement (`room → node`) in one Lua step, so a lost node's late write cannot overwrite
 * the snapshot of the node that took the room over.
 */
import type { Keys } from "../core/keys.ts";
import type { Redis } from "../core/redis.ts";

export interface SnapshotStore {
  /** Stores `bytes` as the room's snapshot if the room is placed on `nodeId`. False: it is not (nothing written). */
  put(roomCode: string, nodeId: string, bytes: Uint8Array, ttlMs: number): Promise<boolean>;
  /** The room's last snapshot, or undefined. */
  get(roomCode: string): Promise<Uint8Array | undefined>;
  /** Forgets the room's snapshot (the room closed). */
  delete(roomCode: string): Promise<void>;
}

/**
 * KEYS[1] room → node, KEYS[2] room snapshot; ARGV[1] node id, ARGV[2] bytes, ARGV[3] ttl ms.
 * Returns 1 written, 0 the room is not placed on that node.
 */
const PUT_LUA = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return 1
`;

export class RedisSnapshotStore implements SnapshotStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  async put(roomCode: string, nodeId: string, bytes: Uint8Array, ttlMs: number): Promise<boolean> {
    const r = await this.redis.eval(PUT_LUA, 2, this.keys.roomNode(roomCode), this.keys.roomSnapshot(roomCode), nodeId, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), String(Math.max(1, Math.floor(ttlMs))));
    return Number(r) === 1;
  }

  async get(roomCode: string): Promise<Uint8Array | undefined> {
    const b = await this.redis.getBuffer(this.keys.roomSnapshot(roomCode));
    return b ?? undefined;
  }

  async delete(roomCode: string): Promise<void> {
    await this.redis.del(this.keys.roomSnapshot(roomCode));
  }
}

/** In memory, for unit tests: `placedOn` answers where a room is placed. */
export class MemorySnapshotStore implements SnapshotStore {
  private readonly data = new Map<string, { bytes: Uint8Array; expiresAt: number }>();
  constructor(
    private readonly placedOn: (roomCode: string) => string | undefined,
    private readonly now: () => number,
  ) {}

  async put(roomCode: string, nodeId: string, bytes: Uint8Array, ttlMs: number): Promise<boolean> {
    if (this.placedOn(roomCode) !== nodeId) return false;
    this.data.set(roomCode, { bytes: bytes.slice(), expiresAt: this.now() + ttlMs });
    return true;
  }

  async get(roomCode: string): Promise<Uint8Array | undefined> {
    const e = this.data.get(roomCode);
    if (!e) return undefined;
    if (e.expiresAt <= this.now()) {
      this.data.delete(roomCode);
      return undefined;
    }
    return e.bytes.slice();
  }

  async delete(roomCode: string): Promise<void> {
    this.data.delete(roomCode);
  }
}
