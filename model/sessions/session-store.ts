/**
 * Player sessions in Redis: a hash per session, a zset of expiries (SESSION_TTL after the last
 * heartbeat), and the player's current session id. Whoever removes a session from the expiry zset
 * owns its release, so a sweep racing a heartbeat, a leave or another gateway's sweep releases
 * each seat exactly once.
 */
import type { Keys } from "../../core/keys.ts";
import type { Redis } from "../../core/redis.ts";
import type { PlayerSession } from "../../core/types.ts";
import { releaseReservation } from "../seat-budget.ts";

export interface StoredSession extends PlayerSession {
  mode: string;
  region: string;
  /** When it expires without another heartbeat (ms). */
  expiresAt: number;
}

/**
 * KEYS[1] sessions zset, KEYS[2] session hash; ARGV[1] session id, ARGV[2] now, ARGV[3] new expiry
 * Extends a live session; returns 0 when it is missing or already expired (its release is owed
 * to the sweep, which may not have run yet).
 */
const BEAT_LUA = `
local exp = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not exp or tonumber(exp) < tonumber(ARGV[2]) then return 0 end
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('HSET', KEYS[2], 'lastBeatAt', ARGV[2], 'expiresAt', ARGV[3])
return 1
`;

/**
 * KEYS[1] sessions zset, KEYS[2] session hash; ARGV[1] session id, ARGV[2] max expiry to claim
 * ("+inf" for a leave). Claims the session for release: removes it from the zset only if it
 * expires by ARGV[2]; returns the session hash fields as a flat list, or an empty list when
 * someone else claimed it (or it never existed).
 */
const CLAIM_LUA = `
local exp = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not exp then return {} end
if ARGV[2] ~= '+inf' and tonumber(exp) > tonumber(ARGV[2]) then return {} end
redis.call('ZREM', KEYS[1], ARGV[1])
local h = redis.call('HGETALL', KEYS[2])
redis.call('DEL', KEYS[2])
return h
`;

/** KEYS[1] player → session; ARGV[1] session id. Deletes the pointer only if it still names this session. */
const UNPOINT_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`;

function decode(h: Record<string, string>): StoredSession | undefined {
  if (!h.sessionId || !h.playerId || !h.roomCode || !h.nodeId) return undefined;
  return {
    sessionId: h.sessionId,
    playerId: h.playerId,
    roomCode: h.roomCode,
    nodeId: h.nodeId,
    mode: h.mode ?? "",
    region: h.region ?? "",
    createdAt: Number(h.createdAt) || 0,
    lastBeatAt: Number(h.lastBeatAt) || 0,
    expiresAt: Number(h.expiresAt) || 0,
  };
}

function pairs(flat: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]!] = flat[i + 1]!;
  return out;
}

const SESSION_ID_RE = /^s_[A-Za-z0-9_-]{8,64}$/;

/** Whether a string can be a session id (checked before any key is built from it). */
export function isSessionId(s: unknown): s is string {
  return typeof s === "string" && SESSION_ID_RE.test(s);
}

export class SessionStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    /** SESSION_TTL. */
    private readonly ttlMs: number,
  ) {}

  async create(s: Omit<StoredSession, "expiresAt" | "lastBeatAt">, now: number): Promise<StoredSession> {
    const full: StoredSession = { ...s, lastBeatAt: now, expiresAt: now + this.ttlMs };
    const fields: Record<string, string> = {};
    for (const [k, v] of Object.entries(full)) fields[k] = String(v);
    await this.redis
      .multi()
      .hset(this.keys.session(s.sessionId), fields)
      .zadd(this.keys.sessions, String(full.expiresAt), s.sessionId)
      .set(this.keys.playerSession(s.playerId), s.sessionId)
      .exec();
    return full;
  }

  /** A live (unexpired) session, or undefined. */
  async get(sessionId: string, now: number): Promise<StoredSession | undefined> {
    if (!isSessionId(sessionId)) return undefined;
    const s = decode(await this.redis.hgetall(this.keys.session(sessionId)));
    return s && s.expiresAt >= now ? s : undefined;
  }

  /** The player's live session, if any. */
  async forPlayer(playerId: string, now: number): Promise<StoredSession | undefined> {
    const id = await this.redis.get(this.keys.playerSession(playerId));
    return id ? this.get(id, now) : undefined;
  }

  /** Whether the player's live session is the one whose room this is (a session room is its player's alone). */
  async playerHoldsRoom(playerId: string, roomCode: string, now: number): Promise<boolean> {
    const s = await this.forPlayer(playerId, now);
    return s !== undefined && s.roomCode === roomCode;
  }

  /** Extends a live session by SESSION_TTL; false when it is missing or expired. */
  async beat(sessionId: string, now: number): Promise<boolean> {
    if (!isSessionId(sessionId)) return false;
    const r = await this.redis.eval(BEAT_LUA, 2, this.keys.sessions, this.keys.session(sessionId), sessionId, String(now), String(now + this.ttlMs));
    return r === 1;
  }

  /** Ends a session now (leave): frees its seat and room. False when it was already gone. */
  async release(sessionId: string): Promise<boolean> {
    if (!isSessionId(sessionId)) return false;
    return releaseClaimed(this.redis, this.keys, sessionId, "+inf");
  }

  /** Releases every session expired by `now`; returns how many this call released. */
  async sweepExpired(now: number): Promise<number> {
    return sweepExpiredSessions(this.redis, this.keys, now);
  }
}

async function releaseClaimed(redis: Redis, keys: Keys, sessionId: string, maxExpiry: string): Promise<boolean> {
  const flat = (await redis.eval(CLAIM_LUA, 2, keys.sessions, keys.session(sessionId), sessionId, maxExpiry)) as string[];
  if (flat.length === 0) return false;
  const s = decode(pairs(flat));
  if (!s) return true;
  await releaseReservation(redis, keys, s.roomCode, s.nodeId, s.sessionId);
  // The room may have been placed again after its first node died (a reconnect): forget that too.
  const current = await redis.get(keys.roomNode(s.roomCode));
  if (current && current !== s.nodeId) await releaseReservation(redis, keys, s.roomCode, current, "");
  await redis.eval(UNPOINT_LUA, 1, keys.playerSession(s.playerId), s.sessionId);
  return true;
}

/**
 * Releases the seats and rooms of every session expired by `now` (at most `batch` per call).
 * Exported for the scheduler's reap tick: any number of gateways and schedulers may sweep at
 * once; each session is released by exactly one of them.
 */
export async function sweepExpiredSessions(redis: Redis, keys: Keys, now: number, batch = 500): Promise<number> {
  const ids = await redis.zrangebyscore(keys.sessions, "-inf", String(now), "LIMIT", 0, batch);
  let n = 0;
  for (const id of ids) if (await releaseClaimed(redis, keys, id, String(now))) n++;
  return n;
}
