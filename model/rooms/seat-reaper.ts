/**
 * The seat reaper (issue 6): a seated player with no open socket to their room for
 * ROOM_SEAT_GRACE loses the seat, as if they had sent POST /v1/rooms/:code/leave — host
 * migration, the room closing with its last player, the lobby index updated. Presence is written
 * by the relay (./presence.ts) and the seat claims (./room-lua.ts, the matchmaker's claim).
 *
 * Which seats are reaped, by room state:
 * - `waiting`, `starting`: yes — lobbies and matched rooms must not fill with ghosts.
 * - `active`: no — the seat is kept for reconnection until the match ends; the absence stays
 *   recorded, so once the match ends the seat is reaped at the next sweep if the player is still
 *   away (the grace already ran during the match).
 * - `ending`: yes — the match is over; a ghost would otherwise block the unanimous restart vote.
 * - `completed` or no record: the absence is stale and dropped (closing already freed the seats).
 *
 * Run by the scheduler's reap sweep (scheduler/jobs/reap.ts). Any number of sweepers may run at
 * once: each seat is freed by one Lua script that re-checks the absence's score, so a seat is
 * reaped once, and a player who reconnected after the sweep read it is not reaped.
 */
import type { Config } from "../../core/config.ts";
import type { Keys } from "../../core/keys.ts";
import type { Logger } from "../../core/log.ts";
import type { Redis } from "../../core/redis.ts";
import type { RoomState } from "../../core/types.ts";
import { releaseReservation } from "../seat-budget.ts";
import { dropDeadGatewayPresence, parseAbsenceMember } from "./presence.ts";
import { RoomStore } from "./room-store.ts";

/** A recorded absence: `playerId` has had no socket to `code` since `since` (ms). */
export interface Absence {
  code: string;
  playerId: string;
  since: number;
}

/** What the sweep knows of an absence's room: its state, or null when there is no record. */
export type RoomStateOf = (code: string) => RoomState | null;

export interface AbsencePlan {
  /** Seats to free now. */
  reap: Absence[];
  /** Stale absences (room closed or gone) to forget. */
  drop: Absence[];
}

/** Room states whose absent seats are reaped (see the module comment). */
export const REAPED_STATES: ReadonlySet<RoomState> = new Set<RoomState>(["waiting", "starting", "ending"]);

/** Pure: which absences are due at `now`. Absences younger than the grace, or in an `active` room, are kept. */
export function planAbsentSeats(absences: readonly Absence[], stateOf: RoomStateOf, now: number, graceMs: number): AbsencePlan {
  const plan: AbsencePlan = { reap: [], drop: [] };
  for (const a of absences) {
    const st = stateOf(a.code);
    if (st === null || st === "completed") plan.drop.push(a);
    else if (now - a.since >= graceMs && REAPED_STATES.has(st)) plan.reap.push(a);
  }
  return plan;
}

export interface SeatReaperDeps {
  redis: Redis;
  keys: Keys;
  config: Pick<Config, "roomSeatGraceMs" | "roomRetentionMs" | "seatTokenTtlMs" | "gatewayHeartbeatMs">;
  log?: Pick<Logger, "info" | "warn" | "debug">;
}

export interface SeatSweepResult {
  /** Seats freed by this sweeper. */
  reaped: Absence[];
  /** Rooms this sweeper closed (their last seat was reaped). */
  closed: string[];
  /** Stale absences dropped. */
  dropped: number;
  /** Dead gateways whose presence was dropped (their players became absent). */
  deadGateways: string[];
}

/** Absences read per page (oldest first). */
export const SWEEP_BATCH = 1000;
/**
 * Pages read per sweep. Absences of `active` rooms stay in the zset (kept for after the match), so
 * a sweep pages past them instead of re-reading only the oldest page; entries freed on one page
 * shift the next one, and what a sweep skips that way (or beyond its last page) waits a tick.
 */
export const SWEEP_PAGES = 10;

/** Frees the due absent seats (up to SWEEP_PAGES × SWEEP_BATCH read per call). Safe to run in any number of processes at once. */
export async function sweepAbsentSeats(deps: SeatReaperDeps, now: number): Promise<SeatSweepResult> {
  const { redis, keys, config } = deps;
  const result: SeatSweepResult = { reaped: [], closed: [], dropped: 0, deadGateways: [] };
  // The GatewayRegistry's liveness rule: three heartbeat intervals without a beat.
  result.deadGateways = await dropDeadGatewayPresence(deps, now, 3 * config.gatewayHeartbeatMs);
  if (result.deadGateways.length > 0) deps.log?.info("presence of dead gateways dropped", { gateways: result.deadGateways });
  const store = new RoomStore(deps);
  for (let page = 0; page < SWEEP_PAGES; page++) {
    // Only absences already older than the grace can be due; younger ones are not even read.
    const flat = await redis.zrangebyscore(keys.roomAbsences, "-inf", now - config.roomSeatGraceMs, "WITHSCORES", "LIMIT", page * SWEEP_BATCH, SWEEP_BATCH);
    await sweepPage(deps, store, flat, now, result);
    if (flat.length < 2 * SWEEP_BATCH) break;
  }
  return result;
}

/** Decides and acts on one page of absences (flat member/score pairs). */
async function sweepPage(deps: SeatReaperDeps, store: RoomStore, flat: string[], now: number, result: SeatSweepResult): Promise<void> {
  const { redis, keys, config } = deps;
  const absences: Absence[] = [];
  const bad: string[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const m = parseAbsenceMember(flat[i]!);
    if (m) absences.push({ ...m, since: Number(flat[i + 1]) });
    else bad.push(flat[i]!);
  }
  if (bad.length > 0) result.dropped += await redis.zrem(keys.roomAbsences, ...bad);
  if (absences.length === 0) return;

  const codes = [...new Set(absences.map((a) => a.code))];
  const pipe = redis.pipeline();
  for (const c of codes) pipe.hmget(keys.room(c), "state", "mode", "region");
  const rows = (await pipe.exec()) ?? [];
  const rooms = new Map<string, { state: RoomState | null; mode: string; region: string }>();
  codes.forEach((c, i) => {
    const [err, v] = rows[i] ?? [null, null];
    if (err) throw err;
    const [state, mode, region] = (v as (string | null)[] | null) ?? [null, null, null];
    rooms.set(c, { state: (state as RoomState | null) ?? null, mode: mode ?? "default", region: region ?? "" });
  });

  const plan = planAbsentSeats(absences, (c) => rooms.get(c)?.state ?? null, now, config.roomSeatGraceMs);
  if (plan.drop.length > 0) {
    // Conditional on the score read, like a reap: an absence re-recorded since is not dropped.
    const drops = redis.pipeline();
    for (const a of plan.drop) drops.eval(DROP_IF_SAME, 1, keys.roomAbsences, `${a.code}|${a.playerId}`, a.since);
    for (const [err, n] of (await drops.exec()) ?? []) if (!err) result.dropped += Number(n);
  }

  for (const a of plan.reap) {
    const room = rooms.get(a.code)!;
    try {
      const r = await store.reapAbsent({ code: a.code, mode: room.mode, region: room.region }, a.playerId, a.since, now);
      if (!r.reaped) continue;
      result.reaped.push(a);
      deps.log?.info("absent player's seat freed", { room: a.code, playerId: a.playerId, absentMs: now - a.since, closed: r.closed, newHostId: r.newHostId });
      await announce(deps, store, a.code, r, now);
      if (r.closed) result.closed.push(a.code);
    } catch (err) {
      // One room's failure does not stop the sweep; the absence stays and is retried next tick.
      deps.log?.warn("seat reap failed", { room: a.code, playerId: a.playerId, err });
    }
  }
}

/** Drops an absence only if its score is still the one read. KEYS[1] absences; ARGV member, score. */
const DROP_IF_SAME = `
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if s and tonumber(s) == tonumber(ARGV[2]) then return redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0
`;

/** The same room events POST /leave publishes, and the placement released when the room closed. */
async function announce(deps: SeatReaperDeps, store: RoomStore, code: string, r: { newHostId: string | null; closed: boolean; restarted: boolean }, now: number): Promise<void> {
  const publish = (e: Parameters<RoomStore["publish"]>[0]) => store.publish(e).catch((err: unknown) => deps.log?.warn("room event not published", { event: e.type, room: code, err }));
  if (r.closed) {
    await publish({ type: "close", roomCode: code, at: now });
    const nodeId = await deps.redis.get(deps.keys.roomNode(code));
    if (nodeId) await releaseReservation(deps.redis, deps.keys, code, nodeId, "").catch((err: unknown) => deps.log?.warn("placement not released", { room: code, err }));
  } else if (r.newHostId) {
    await publish({ type: "host", roomCode: code, playerId: r.newHostId, at: now });
  }
  if (r.restarted) await publish({ type: "state", roomCode: code, at: now });
}
