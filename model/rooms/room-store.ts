/**
 * Rooms in Redis: records, seats, invites, bans, restart votes, seat tokens and the lobby index.
 * Every change that touches more than one key is one Lua script (./room-lua.ts) given `now`, so
 * seat claims never exceed maxPlayers however many gateways join at once.
 *
 * Used by the rooms routes, the seat checker and the matchmaker (which creates a room per match).
 */
import type { Config } from "../../core/config.ts";
import { AppError, badRequest, conflict, forbidden, notFound } from "../../core/errors.ts";
import type { Keys } from "../../core/keys.ts";
import { ROOM_CODE_RE, ROOM_CODE_RULE } from "../../core/names.ts";
import type { Redis } from "../../core/redis.ts";
import type { Room, RoomEvent, RoomState, RoomVisibility } from "../../core/types.ts";
import { LuaScript } from "../lua-script.ts";
import * as lua from "./room-lua.ts";

/** A room as stored: the public `Room` plus what the lobby and the match need. */
export interface RoomRecord extends Room {
  /** Free-form game settings given at creation (JSON object). */
  settings: Record<string, unknown>;
  /** Bun.password hash, "" when the room has no password. Never shown by the API. */
  passwordHash: string;
  /** How the room came to be: a lobby created by a player, or a matchmaking match. */
  source: "lobby" | "match";
  /** Teams of a matched room (player ids), else null. */
  teams: string[][] | null;
  /** 1 for the first match, +1 per restart. */
  matchNumber: number;
  /** Player ids that voted to restart (state `ending`). */
  restartVotes: string[];
  startingAt: number | null;
  activeAt: number | null;
  endedAt: number | null;
}

/** What GET /v1/rooms/:code shows: no password hash. */
export type RoomView = Omit<RoomRecord, "passwordHash"> & { hasPassword: boolean };

export function roomView(r: RoomRecord): RoomView {
  const { passwordHash, ...rest } = r;
  return { ...rest, hasPassword: passwordHash !== "" };
}

export interface CreateRoomInput {
  hostId: string;
  mode: string;
  region: string;
  visibility: RoomVisibility;
  maxPlayers: number;
  passwordHash?: string;
  settings?: Record<string, unknown>;
  /** Teams of a matched room (the matchmaker's claim script seats them). */
  teams?: string[][];
  source?: "lobby" | "match";
  /** Initial state: `waiting` (a lobby) or `starting` (a match whose seats are set). */
  state?: Extract<RoomState, "waiting" | "starting">;
  /** Where the room may be placed, in order (region-choice.ts encodeRanking); "" = its region, legacy rule. */
  regions?: string;
}

/** A seat token's stored value. */
export interface SeatGrant {
  room: string;
  player: string;
  /** Expiry, ms. */
  exp: number;
}

/** Whether the caller gave a password that matches (decided in JS with Bun.password before the join script). */
export type PasswordCheck = "none" | "ok" | "bad" | "missing";

/** Unambiguous alphabet: no 0/O, 1/I/L. */
export const ROOM_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789";
export const ROOM_CODE_LENGTH = 6;

export function generateRoomCode(length = ROOM_CODE_LENGTH): string {
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  let out = "";
  // 256 % 31 != 0: the tiny modulo bias is irrelevant for codes that are also unique-checked.
  for (const b of bytes) out += ROOM_CODE_ALPHABET[b % ROOM_CODE_ALPHABET.length];
  return out;
}

/** 400 for anything that is not a room code, before any key is built from it. */
export function assertRoomCode(code: unknown): string {
  if (typeof code !== "string" || !ROOM_CODE_RE.test(code)) throw badRequest("INVALID_ROOM_CODE", `room code must be ${ROOM_CODE_RULE}`);
  return code;
}

/** A 128-bit random token id, base64url (fits the key-safe id alphabet). */
export function randomToken(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64url");
}

const ERRORS: Record<string, () => AppError> = {
  NOT_FOUND: () => notFound("ROOM_NOT_FOUND", "no such room"),
  ROOM_CLOSED: () => conflict("ROOM_CLOSED", "the room is closed"),
  KICKED: () => forbidden("KICKED", "you were kicked from this room"),
  NOT_JOINABLE: () => conflict("ROOM_NOT_JOINABLE", "the room's match has started; new players cannot join"),
  NOT_INVITED: () => forbidden("NOT_INVITED", "this private room needs an invite or its password"),
  WRONG_PASSWORD: () => forbidden("WRONG_PASSWORD", "wrong room password"),
  ROOM_FULL: () => conflict("ROOM_FULL", "the room is full"),
  NOT_SEATED: () => conflict("NOT_IN_ROOM", "you are not seated in this room"),
  TARGET_NOT_SEATED: () => notFound("PLAYER_NOT_IN_ROOM", "that player is not seated in this room"),
  TARGET_KICKED: () => conflict("PLAYER_KICKED", "that player was kicked from this room"),
  NOT_HOST: () => forbidden("NOT_HOST", "only the room's host may do this"),
  KICK_SELF: () => badRequest("CANNOT_KICK_SELF", "the host cannot kick themselves; leave instead"),
  INVALID_STATE: () => conflict("INVALID_STATE", "not allowed in the room's current state"),
  NOT_ENOUGH_PLAYERS: () => conflict("NOT_ENOUGH_PLAYERS", "at least 2 players are needed"),
};

type LuaReply = (string | number)[];

function check(reply: unknown): LuaReply {
  const r = reply as LuaReply;
  if (r[0] === "ERR") throw (ERRORS[String(r[1])] ?? (() => conflict("ROOM_ERROR", String(r[1]))))();
  return r;
}

/** Results streams are capped (approximately) at this many entries. */
const RESULTS_STREAM_MAXLEN = 100_000;
/** Room creation retries with a new code this many times on a collision. */
const CODE_ATTEMPTS = 8;

const scripts = {
  create: new LuaScript("room-create", lua.CREATE_ROOM),
  join: new LuaScript("room-join", lua.JOIN_ROOM),
  leave: new LuaScript("room-leave", lua.LEAVE_ROOM),
  invite: new LuaScript("room-invite", lua.INVITE),
  kick: new LuaScript("room-kick", lua.KICK),
  host: new LuaScript("room-host", lua.TRANSFER_HOST),
  transition: new LuaScript("room-transition", lua.TRANSITION),
  vote: new LuaScript("room-vote", lua.VOTE_RESTART),
  reap: new LuaScript("room-reap-seat", lua.REAP_SEAT),
};

/** What reaping one absent seat did: the leave's outcome, or why nothing was done. */
export type ReapSeatOutcome = { reaped: true; newHostId: string | null; closed: boolean; restarted: boolean } | { reaped: false; why: "moved" | "present" | "gone" | "active" };

export interface RoomStoreDeps {
  redis: Redis;
  keys: Keys;
  config: Pick<Config, "seatTokenTtlMs" | "roomRetentionMs">;
}

export class RoomStore {
  constructor(private readonly deps: RoomStoreDeps) {}

  private get redis(): Redis {
    return this.deps.redis;
  }
  private get keys(): Keys {
    return this.deps.keys;
  }

  /** The standard KEYS layout of room scripts (see room-lua.ts). */
  roomScriptKeys(code: string, mode: string, region: string, extra: string): string[] {
    const k = this.keys;
    return [k.room(code), k.roomPlayers(code), k.roomBanned(code), k.roomInvites(code), k.roomVotes(code), k.lobby(mode, region), k.rooms, k.lobbies, extra, k.roomAbsences, k.roomPresence(code)];
  }

  private baseArgs(code: string, now: number): (string | number)[] {
    return [now, code, this.deps.config.roomRetentionMs];
  }

  /** The room's record fields as stored at creation (shared with the matchmaker's claim script). */
  static initialFields(code: string, input: CreateRoomInput, now: number): [string, string][] {
    return [
      ["code", code],
      ["mode", input.mode],
      ["region", input.region],
      ["visibility", input.visibility],
      ["state", input.state ?? "waiting"],
      ["maxPlayers", String(input.maxPlayers)],
      ["hostId", input.hostId],
      ["createdAt", String(now)],
      ["passwordHash", input.passwordHash ?? ""],
      ["settings", JSON.stringify(input.settings ?? {})],
      ["source", input.source ?? "lobby"],
      ["teams", input.teams ? JSON.stringify(input.teams) : ""],
      ["matchNumber", "1"],
      ["regions", input.regions ?? ""],
      ...(input.state === "starting" ? ([["startingAt", String(now)]] as [string, string][]) : []),
    ];
  }

  /** Creates a room under a fresh code with the host seated. */
  async create(input: CreateRoomInput, now: number): Promise<RoomRecord> {
    for (let i = 0; i < CODE_ATTEMPTS; i++) {
      const code = generateRoomCode();
      const fields = RoomStore.initialFields(code, input, now);
      const ok = await scripts.create.run(this.redis, this.roomScriptKeys(code, input.mode, input.region, this.keys.roomNode(code)), [
        ...this.baseArgs(code, now),
        fields.length,
        ...fields.flat(),
        input.hostId,
      ]);
      if (ok === 1) return (await this.get(code))!;
    }
    throw conflict("ROOM_CODE_EXHAUSTED", "could not allocate a room code; try again");
  }

  /** The room record, or undefined. Only rooms created by this store count (a hash with `state`). */
  async get(code: string): Promise<RoomRecord | undefined> {
    const k = this.keys;
    const [h, players, votes, nodeId] = (await this.redis
      .multi()
      .hgetall(k.room(code))
      .hgetall(k.roomPlayers(code))
      .smembers(k.roomVotes(code))
      .get(k.roomNode(code))
      .exec())!.map(([err, v]) => {
      if (err) throw err;
      return v;
    }) as [Record<string, string>, Record<string, string>, string[], string | null];
    if (!h.state) return undefined;
    const num = (v: string | undefined) => (v === undefined || v === "" ? null : Number(v));
    return {
      code,
      mode: h.mode ?? "default",
      region: h.region ?? "",
      visibility: h.visibility === "private" ? "private" : "public",
      state: h.state as RoomState,
      players: Object.entries(players)
        .sort((a, b) => Number(a[1]) - Number(b[1]) || (a[0] < b[0] ? -1 : 1))
        .map(([p]) => p),
      maxPlayers: Number(h.maxPlayers ?? 0),
      hostId: h.hostId ?? "",
      // Placement (gateway/placement) owns room → node; the room is placed on its first connect.
      nodeId: nodeId ?? null,
      createdAt: Number(h.createdAt ?? 0),
      settings: parseJson<Record<string, unknown>>(h.settings, {}),
      passwordHash: h.passwordHash ?? "",
      source: h.source === "match" ? "match" : "lobby",
      teams: h.teams ? parseJson<string[][] | null>(h.teams, null) : null,
      matchNumber: Number(h.matchNumber ?? 1),
      restartVotes: votes.sort(),
      startingAt: num(h.startingAt),
      activeAt: num(h.activeAt),
      endedAt: num(h.endedAt),
    };
  }

  /** The room or 404 ROOM_NOT_FOUND. */
  async require(code: string): Promise<RoomRecord> {
    const r = await this.get(code);
    if (!r) throw ERRORS.NOT_FOUND!();
    return r;
  }

  async isInvited(code: string, playerId: string): Promise<boolean> {
    return (await this.redis.sismember(this.keys.roomInvites(code), playerId)) === 1;
  }

  /**
   * Seats `playerId` (idempotent: a seated player gets a fresh token) and returns a seat token.
   * `password` is the outcome of the caller's Bun.password check.
   */
  async join(room: RoomRecord, playerId: string, password: PasswordCheck, now: number): Promise<{ seatToken: string; alreadySeated: boolean }> {
    const token = randomToken();
    const ttl = this.deps.config.seatTokenTtlMs;
    const grant: SeatGrant = { room: room.code, player: playerId, exp: now + ttl };
    const r = check(
      await scripts.join.run(this.redis, this.roomScriptKeys(room.code, room.mode, room.region, this.keys.seatToken(token)), [
        ...this.baseArgs(room.code, now),
        playerId,
        password,
        JSON.stringify(grant),
        ttl,
      ]),
    );
    return { seatToken: token, alreadySeated: r[1] === "again" };
  }

  async leave(room: RoomRecord, playerId: string, now: number): Promise<{ newHostId: string | null; closed: boolean; restarted: boolean }> {
    const r = check(await scripts.leave.run(this.redis, this.roomScriptKeys(room.code, room.mode, room.region, this.keys.rooms), [...this.baseArgs(room.code, now), playerId]));
    return { newHostId: r[1] ? String(r[1]) : null, closed: r[2] === 1, restarted: r[3] === 1 };
  }

  /**
   * Frees an absent player's seat (the seat reaper) if the absence is still the one read
   * (`since`), the player has no open socket and the room is not `active`. Mode and region build
   * the lobby key (they never change).
   */
  async reapAbsent(room: Pick<RoomRecord, "code" | "mode" | "region">, playerId: string, since: number, now: number): Promise<ReapSeatOutcome> {
    const r = check(await scripts.reap.run(this.redis, this.roomScriptKeys(room.code, room.mode, room.region, this.keys.rooms), [...this.baseArgs(room.code, now), playerId, since]));
    if (r[0] === "SKIP") return { reaped: false, why: String(r[1]) as "moved" | "present" | "gone" | "active" };
    return { reaped: true, newHostId: r[1] ? String(r[1]) : null, closed: r[2] === 1, restarted: r[3] === 1 };
  }

  async invite(room: RoomRecord, actorId: string, targetId: string, now: number): Promise<void> {
    check(await scripts.invite.run(this.redis, this.roomScriptKeys(room.code, room.mode, room.region, this.keys.rooms), [...this.baseArgs(room.code, now), actorId, targetId]));
  }

  async kick(room: RoomRecord, actorId: string, targetId: string, now: number): Promise<{ wasSeated: boolean; restarted: boolean }> {
    const r = check(await scripts.kick.run(this.redis, this.roomScriptKeys(room.code, room.mode, room.region, this.keys.rooms), [...this.baseArgs(room.code, now), actorId, targetId]));
    return { wasSeated: r[1] === 1, restarted: r[2] === 1 };
  }

  async transferHost(room: RoomRecord, actorId: string, targetId: string, now: number): Promise<void> {
    check(await scripts.host.run(this.redis, this.roomScriptKeys(room.code, room.mode, room.region, this.keys.rooms), [...this.baseArgs(room.code, now), actorId, targetId]));
  }

  /** Host-driven state change; `end` appends `results` (with duration) to the match-results stream. */
  async transition(
    room: RoomRecord,
    actorId: string,
    action: "start" | "activate" | "end" | "close",
    now: number,
    results?: unknown,
  ): Promise<{ state: RoomState; resultId: string | null; durationMs: number | null }> {
    const r = check(
      await scripts.transition.run(this.redis, this.roomScriptKeys(room.code, room.mode, room.region, this.keys.matchResults), [
        ...this.baseArgs(room.code, now),
        actorId,
        action,
        JSON.stringify(results ?? null),
        RESULTS_STREAM_MAXLEN,
      ]),
    );
    return { state: String(r[1]) as RoomState, resultId: r[2] ? String(r[2]) : null, durationMs: r[3] === "" ? null : Number(r[3]) };
  }

  async voteRestart(room: RoomRecord, actorId: string, now: number): Promise<{ votes: number; seated: number; restarted: boolean }> {
    const r = check(await scripts.vote.run(this.redis, this.roomScriptKeys(room.code, room.mode, room.region, this.keys.rooms), [...this.baseArgs(room.code, now), actorId]));
    return { votes: Number(r[1]), seated: Number(r[2]), restarted: r[3] === 1 };
  }

  /** A fresh seat token for a seated player (e.g. a matched ticket read after its first token expired). */
  async issueSeatToken(code: string, playerId: string, now: number): Promise<string> {
    const token = randomToken();
    const ttl = this.deps.config.seatTokenTtlMs;
    const grant: SeatGrant = { room: code, player: playerId, exp: now + ttl };
    await this.redis.set(this.keys.seatToken(token), JSON.stringify(grant), "PX", ttl);
    return token;
  }

  /** The grant behind a seat token, if it exists, has not expired and is well formed. */
  async readSeatToken(token: string | undefined, now: number): Promise<SeatGrant | undefined> {
    if (!token || !/^[A-Za-z0-9_-]{16,64}$/.test(token)) return undefined;
    const raw = await this.redis.get(this.keys.seatToken(token));
    const g = parseJson<Partial<SeatGrant> | null>(raw ?? undefined, null);
    if (!g || typeof g.room !== "string" || typeof g.player !== "string" || typeof g.exp !== "number" || g.exp <= now) return undefined;
    return { room: g.room, player: g.player, exp: g.exp };
  }

  /** Public waiting rooms with open seats, oldest first; `mode`/`region` undefined = any. */
  async listLobby(filter: { mode?: string | undefined; region?: string | undefined }, limit: number): Promise<RoomRecord[]> {
    const pairs = (await this.redis.smembers(this.keys.lobbies))
      .map((p) => p.split("|") as [string, string])
      .filter(([m, r]) => (filter.mode === undefined || m === filter.mode) && (filter.region === undefined || r === filter.region))
      .sort();
    const codes: string[] = [];
    for (const [m, r] of pairs) codes.push(...(await this.redis.zrange(this.keys.lobby(m, r), 0, String(limit - 1))));
    const rooms = await Promise.all(codes.map((c) => this.get(c)));
    // The index is kept by the same scripts that change seats; this filter only covers a read racing a change.
    return rooms
      .filter((r): r is RoomRecord => !!r && r.state === "waiting" && r.visibility === "public" && r.players.length < r.maxPlayers)
      .sort((a, b) => a.createdAt - b.createdAt || (a.code < b.code ? -1 : 1))
      .slice(0, limit);
  }

  /** Everything a seat check needs, in one round trip. */
  async seatState(code: string, playerId: string): Promise<{ state: string | null; visibility: string | null; maxPlayers: number; seated: boolean; banned: boolean; count: number; regions: string }> {
    const k = this.keys;
    const res = (await this.redis
      .multi()
      .hmget(k.room(code), "state", "visibility", "maxPlayers", "regions")
      .hexists(k.roomPlayers(code), playerId)
      .sismember(k.roomBanned(code), playerId)
      .hlen(k.roomPlayers(code))
      .exec())!.map(([err, v]) => {
      if (err) throw err;
      return v;
    });
    const [state, visibility, max, regions] = res[0] as (string | null)[];
    return { state: state ?? null, visibility: visibility ?? null, maxPlayers: Number(max ?? 0), seated: res[1] === 1, banned: res[2] === 1, count: Number(res[3]), regions: regions ?? "" };
  }

  /** Tells every gateway (kick → close 4003; close; host change; state change). */
  async publish(event: RoomEvent): Promise<void> {
    await this.redis.publish(this.keys.roomEventsChannel, JSON.stringify(event));
  }
}

function parseJson<T>(raw: string | undefined, fallback: T): T {
  if (raw === undefined || raw === "") return fallback;
  try {
    return JSON.parse(raw) as T;
  } catch {
    return fallback;
  }
}
