/**
 * Matchmaking tickets in Redis: one hash per ticket, one queue (zset by enqueue time) per
 * mode|region, one live ticket per player. Used by the gateway's matchmaking routes (create, read,
 * cancel) and by the matchmaker (read queues, expire, claim matches).
 */
import type { Config } from "../../core/config.ts";
import { AppError, conflict, forbidden, notFound } from "../../core/errors.ts";
import type { Keys } from "../../core/keys.ts";
import type { Redis } from "../../core/redis.ts";
import type { TicketStatus } from "../../core/types.ts";
import { LuaScript } from "../lua-script.ts";
import { randomToken, RoomStore, generateRoomCode, type SeatGrant } from "../rooms/room-store.ts";
import type { PlannedMatch, QueuedTicket } from "./match-plan.ts";
import * as lua from "./ticket-lua.ts";
import { encodeRanking } from "../placement/region-choice.ts";

/** A ticket as stored. */
export interface TicketRecord {
  id: string;
  playerId: string;
  mode: string;
  region: string;
  rating: number | undefined;
  createdAt: number;
  /** As stored; a `queued` ticket past TICKET_TTL reads as `expired` through `effectiveStatus`. */
  status: TicketStatus;
  roomCode: string | undefined;
  /** 0 or 1 once matched. */
  team: number | undefined;
  seatToken: string | undefined;
  matchedAt: number | undefined;
}

export type TicketsConfig = Pick<Config, "ticketTtlMs" | "seatTokenTtlMs" | "sessionSize" | "roomRetentionMs">;

export interface TicketStoreDeps {
  redis: Redis;
  keys: Keys;
  config: TicketsConfig;
}

const scripts = {
  create: new LuaScript("ticket-create", lua.CREATE_TICKET),
  cancel: new LuaScript("ticket-cancel", lua.CANCEL_TICKET),
  expire: new LuaScript("ticket-expire", lua.EXPIRE_TICKET),
  claim: new LuaScript("ticket-claim", lua.CLAIM_MATCH),
  forget: new LuaScript("ticket-queue-forget", lua.FORGET_EMPTY_QUEUE),
};

/** What a claim did: created the room, or found some tickets no longer claimable. */
export type ClaimOutcome = { ok: true; roomCode: string } | { ok: false; stale: string[] };

/** Code collisions are retried this many times (a 6-character code from 31 symbols: ~8.9e8 codes). */
const CODE_ATTEMPTS = 8;

export class TicketStore {
  constructor(private readonly deps: TicketStoreDeps) {}

  private get keys(): Keys {
    return this.deps.keys;
  }

  /** How long a ticket's record stays readable after it is matched (ROOM_RETENTION, like finished rooms). */
  private get retentionMs(): number {
    return this.deps.config.roomRetentionMs;
  }

  /** Enqueues a ticket for `playerId`; 409 ALREADY_QUEUED when the player has a live one. */
  /**
   * `fallbacks`: the regions the ticket accepts after REGION_FALLBACK_WAIT (region-choice.ts, from
   * measured latencies); undefined when the player sent none (then any region).
   */
  async create(input: { playerId: string; mode: string; region: string; rating?: number | undefined; fallbacks?: readonly string[] | undefined }, now: number): Promise<string> {
    const k = this.keys;
    const id = randomToken();
    for (let attempt = 0; attempt < 5; attempt++) {
      const existing = (await this.deps.redis.get(k.playerTicket(input.playerId))) ?? "";
      const r = (await scripts.create.run(
        this.deps.redis,
        [k.ticket(id), k.ticketQueue(input.mode, input.region), k.ticketQueues, k.playerTicket(input.playerId), existing ? k.ticket(existing) : k.ticket(id)],
        [now, id, input.playerId, input.mode, input.region, input.rating ?? "", this.deps.config.ticketTtlMs, this.retentionMs, existing, input.fallbacks ? JSON.stringify(input.fallbacks) : ""],
      )) as string[];
      if (r[0] === "OK") return id;
      if (r[1] === "ALREADY_QUEUED") throw new AppError(409, "ALREADY_QUEUED", "you already have a queued ticket", { ticketId: r[2] });
      // RETRY: the player's ticket changed between the read and the script; read again.
    }
    throw conflict("TICKET_BUSY", "could not enqueue the ticket; try again");
  }

  async get(id: string): Promise<TicketRecord | undefined> {
    return decodeTicket(await this.deps.redis.hgetall(this.keys.ticket(id)));
  }

  /** The ticket if `playerId` owns it; 404 otherwise (another player's ticket is not revealed). */
  async getOwned(id: string, playerId: string): Promise<TicketRecord> {
    const t = await this.get(id);
    if (!t || t.playerId !== playerId) throw notFound("TICKET_NOT_FOUND", "no such ticket");
    return t;
  }

  /** Status as the client sees it: a queued ticket past its TTL is expired even before the matcher says so. */
  effectiveStatus(t: TicketRecord, now: number): TicketStatus {
    return t.status === "queued" && now - t.createdAt >= this.deps.config.ticketTtlMs ? "expired" : t.status;
  }

  /** The owner cancels a queued ticket: 404 unknown, 403 not the owner, 409 not queued any more. */
  async cancel(id: string, playerId: string, now: number): Promise<void> {
    const t = await this.get(id);
    if (!t) throw notFound("TICKET_NOT_FOUND", "no such ticket");
    const k = this.keys;
    const r = (await scripts.cancel.run(this.deps.redis, [k.ticket(id), k.ticketQueue(t.mode, t.region), k.playerTicket(t.playerId)], [now, playerId, this.deps.config.ticketTtlMs, id])) as string[];
    if (r[0] === "OK") return;
    if (r[1] === "NOT_FOUND") throw notFound("TICKET_NOT_FOUND", "no such ticket");
    if (r[1] === "NOT_OWNER") throw forbidden("NOT_TICKET_OWNER", "only the ticket's owner may cancel it");
    throw conflict("TICKET_NOT_QUEUED", `the ticket is ${r[2]}`);
  }

  /** Queues that may hold tickets, as [mode, region]. */
  async queues(): Promise<[string, string][]> {
    return (await this.deps.redis.smembers(this.keys.ticketQueues)).map((p) => p.split("|") as [string, string]);
  }

  /**
   * The oldest `limit` queued tickets of one queue. Entries whose ticket is gone or no longer
   * queued are returned in `dead` so the caller can drop them.
   */
  async readQueue(mode: string, region: string, limit: number): Promise<{ tickets: QueuedTicket[]; dead: string[] }> {
    const ids = await this.deps.redis.zrange(this.keys.ticketQueue(mode, region), 0, String(limit - 1));
    if (ids.length === 0) {
      // Atomic with the create script's ZADD+SADD, so a queue is never forgotten while a ticket lands in it.
      await scripts.forget.run(this.deps.redis, [this.keys.ticketQueue(mode, region), this.keys.ticketQueues], [`${mode}|${region}`]);
      return { tickets: [], dead: [] };
    }
    const p = this.deps.redis.pipeline();
    for (const id of ids) p.hmget(this.keys.ticket(id), "playerId", "createdAt", "rating", "status", "fallbacks");
    const rows = (await p.exec()) ?? [];
    const tickets: QueuedTicket[] = [];
    const dead: string[] = [];
    ids.forEach((id, i) => {
      const [err, v] = rows[i] ?? [null, null];
      const [playerId, createdAt, rating, status, fallbacks] = (err ? [] : (v as (string | null)[])) as (string | null | undefined)[];
      if (!playerId || status !== "queued") dead.push(id);
      else {
        const fb = parseFallbacks(fallbacks);
        tickets.push({ id, playerId, mode, region, createdAt: Number(createdAt), ...(rating ? { rating: Number(rating) } : {}), ...(fb ? { fallbacks: fb } : {}) });
      }
    });
    return { tickets, dead };
  }

  /** Expires queued tickets (`expire`) or drops dead queue entries (`!expire`), one atomic script each. */
  async expireOrDrop(mode: string, region: string, ids: readonly string[], expire: boolean, now: number, playerOf: (id: string) => string | undefined): Promise<void> {
    if (ids.length === 0) return;
    const k = this.keys;
    await scripts.expire.run(this.deps.redis, [k.ticket(ids[0]!), k.ticketQueue(mode, region), k.playerTicket(playerOf(ids[0]!) ?? "none"), k.ticketQueues], [now, ids[0]!, `${mode}|${region}`, expire ? 1 : 0]);
    const p = this.deps.redis.pipeline();
    for (const id of ids.slice(1)) {
      p.evalsha(scripts.expire.sha, 4, k.ticket(id), k.ticketQueue(mode, region), k.playerTicket(playerOf(id) ?? "none"), k.ticketQueues, now, id, `${mode}|${region}`, expire ? 1 : 0);
    }
    // The first call above loaded the script if Redis had lost it, so EVALSHA is safe in the pipeline.
    await p.exec();
  }

  /**
   * Claims one planned match: every ticket still queued → the room is created (private, state
   * `starting`, teams stored, every player seated with a seat token) and the tickets are matched.
   */
  async claim(match: PlannedMatch, now: number): Promise<ClaimOutcome> {
    const k = this.keys;
    const cfg = this.deps.config;
    const members = match.teams.flatMap((team, t) => team.map((ticket) => ({ ticket, team: t })));
    const queueKeys = [...new Set(members.map((m) => k.ticketQueue(m.ticket.mode, m.ticket.region)))];
    for (let attempt = 0; attempt < CODE_ATTEMPTS; attempt++) {
      const code = generateRoomCode();
      const fields = RoomStore.initialFields(
        code,
        {
          hostId: members[0]!.ticket.playerId,
          mode: match.mode,
          region: match.region,
          visibility: "private",
          maxPlayers: cfg.sessionSize,
          source: "match",
          state: "starting",
          teams: match.teams.map((team) => team.map((t) => t.playerId)),
          settings: { matchKind: match.kind, crossRegion: match.crossRegion },
          // Where the room may be placed: its region, then (after REGION_FALLBACK_WAIT) the fallbacks all its players accept.
          ...(match.fallbacks ? { regions: encodeRanking({ best: match.region, fallbacks: match.fallbacks }) } : {}),
        },
        now,
      );
      const keys = [k.room(code), k.roomPlayers(code), k.rooms];
      const perTicket: (string | number)[] = [];
      for (const m of members) {
        const token = randomToken();
        const grant: SeatGrant = { room: code, player: m.ticket.playerId, exp: now + cfg.seatTokenTtlMs };
        keys.push(k.ticket(m.ticket.id), k.playerTicket(m.ticket.playerId), k.seatToken(token));
        perTicket.push(m.ticket.id, m.ticket.playerId, m.team, token, JSON.stringify(grant), queueKeys.indexOf(k.ticketQueue(m.ticket.mode, m.ticket.region)) + 1);
      }
      keys.push(...queueKeys, k.roomAbsences, k.roomNode(code));
      const r = (await scripts.claim.run(this.deps.redis, keys, [
        now,
        code,
        members.length,
        cfg.ticketTtlMs,
        cfg.seatTokenTtlMs,
        this.retentionMs,
        fields.length,
        ...fields.flat(),
        ...perTicket,
      ])) as string[];
      if (r[0] === "OK") return { ok: true, roomCode: code };
      if (r[0] === "STALE") return { ok: false, stale: r.slice(1) };
      // CODE_TAKEN: try another code.
    }
    return { ok: false, stale: [] };
  }
}

/** A stored `fallbacks` field: a JSON array of region names, or undefined ("" or malformed). */
function parseFallbacks(raw: string | null | undefined): string[] | undefined {
  if (!raw) return undefined;
  try {
    const v: unknown = JSON.parse(raw);
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : undefined;
  } catch {
    return undefined;
  }
}

function decodeTicket(h: Record<string, string>): TicketRecord | undefined {
  if (!h.id || !h.status) return undefined;
  const opt = (v: string | undefined) => (v === undefined || v === "" ? undefined : Number(v));
  return {
    id: h.id,
    playerId: h.playerId ?? "",
    mode: h.mode ?? "",
    region: h.region ?? "",
    rating: opt(h.rating),
    createdAt: Number(h.createdAt ?? 0),
    status: h.status as TicketStatus,
    roomCode: h.roomCode || undefined,
    team: opt(h.team),
    seatToken: h.seatToken || undefined,
    matchedAt: opt(h.matchedAt),
  };
}
