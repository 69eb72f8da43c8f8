/**
 * Rooms, lobbies, invites, kicks, host transfer and the match lifecycle (issue 6; CONTRACT "Rooms
 * and lobbies"). Mounted by gateway/app.ts. Decisions the CONTRACT leaves open, made here:
 *
 * - Joining twice is idempotent: a seated player gets 200 with a fresh seat token
 *   (`alreadySeated: true`), so a reconnecting client can always re-join for a new token.
 * - A private room admits invited players, or anyone with its password when it has one; a private
 *   room without a password admits only invited players. A public room with a password needs it.
 * - Kicked players are banned from the room: join answers 403 KICKED and the seat check 4003.
 * - Any seated player may invite; only the host may kick, transfer host, and drive the states.
 * - States: `POST /start` (waiting → starting, needs 2 players, leaves the lobby browser),
 *   `POST /activate` (starting → active), `POST /end {results}` (active → ending; result and
 *   duration appended to the match-results stream), then in `ending` every seated player votes
 *   `POST /restart`; once at least 2 are seated and all of them voted, the room goes back to
 *   `waiting` (match number + 1). `POST /close` (host, not while active) → completed. The last
 *   player leaving closes the room too.
 * - A private room's GET answers only its seated or invited players and admins (404 otherwise).
 */
import { Elysia } from "elysia";
import { badRequest, notFound } from "../../core/errors.ts";
import type { RoomEvent } from "../../core/types.ts";
import type { Claims } from "../contracts.ts";
import type { GatewayDeps } from "../deps.ts";
import { bodyObject, connectUrl, errorResponse, NAME_RE, optInt, optObject, optString, PLAYER_ID_RE, reqString, requirePlayer } from "./http.ts";
import { assertRoomCode, RoomStore, roomView, type PasswordCheck, type RoomRecord } from "../../model/rooms/room-store.ts";

export type RoomsDeps = Pick<GatewayDeps, "redis" | "keys" | "clock" | "config" | "auth" | "placement" | "log">;

/** Lobby browser page size. */
const LOBBY_LIMIT = 100;
const PASSWORD_RE = /^[\s\S]{1,128}$/;

export function roomsRoutes(deps: RoomsDeps) {
  const store = new RoomStore(deps);
  const log = deps.log.child("rooms");

  const publish = async (e: Omit<RoomEvent, "at">) => {
    try {
      await store.publish({ ...e, at: deps.clock.now() });
    } catch (err) {
      // The change itself is stored; the seat check enforces it on every reconnect.
      log.warn("room event not published", { event: e.type, room: e.roomCode, err });
    }
  };
  const closed = async (code: string) => {
    await publish({ type: "close", roomCode: code });
    try {
      await deps.placement.releaseRoom(code);
    } catch (err) {
      log.warn("placement not released", { room: code, err });
    }
  };

  /** The room from the path; 400 for a bad code before any lookup, 404 for an unknown one. */
  const roomFrom = async (params: Record<string, string>) => store.require(assertRoomCode(params.code));
  const targetOf = (request: Request, body: unknown) => reqString(bodyObject(request, body), "playerId", PLAYER_ID_RE, "a player id");
  const canSee = async (room: RoomRecord, claims: Claims) =>
    room.visibility === "public" || claims.roles.includes("admin") || room.players.includes(claims.sub) || (await store.isInvited(room.code, claims.sub));

  return new Elysia({ name: "roomsRoutes" })
    .onError(({ code, error }) => errorResponse(code, error))
    .post("/v1/rooms", async ({ request, body, set }) => {
      const claims = await requirePlayer(deps.auth, request);
      const o = bodyObject(request, body);
      const visibility = o.visibility;
      if (visibility !== "public" && visibility !== "private") throw badRequest("VALIDATION", 'visibility must be "public" or "private"', { field: "visibility" });
      const password = optString(o, "password", PASSWORD_RE, "1-128 characters");
      const now = deps.clock.now();
      const room = await store.create(
        {
          hostId: claims.sub,
          mode: optString(o, "mode", NAME_RE, "1-32 of [A-Za-z0-9_.-]") ?? "default",
          region: optString(o, "region", NAME_RE, "1-32 of [A-Za-z0-9_.-]") ?? (NAME_RE.test(claims.region) ? claims.region : deps.config.region),
          visibility,
          maxPlayers: optInt(o, "maxPlayers", 1, Math.max(deps.config.nodeMaxPlayers, deps.config.maxPlayersPerServer)) ?? deps.config.roomMaxPlayers,
          settings: optObject(o, "settings", 8 * 1024) ?? {},
          ...(password ? { passwordHash: await Bun.password.hash(password) } : {}),
        },
        now,
      );
      const seatToken = await store.issueSeatToken(room.code, claims.sub, now);
      set.status = 201;
      return { ...roomView(room), seatToken, connectUrl: connectUrl(deps.config, room.code, seatToken) };
    })
    .get("/v1/rooms", async ({ request, query }) => {
      await requirePlayer(deps.auth, request);
      const q = query as Record<string, string | undefined>;
      const filter = {
        mode: optString(q, "mode", NAME_RE, "1-32 of [A-Za-z0-9_.-]"),
        region: optString(q, "region", NAME_RE, "1-32 of [A-Za-z0-9_.-]"),
      };
      return { rooms: (await store.listLobby(filter, LOBBY_LIMIT)).map(roomView) };
    })
    .get("/v1/rooms/:code", async ({ request, params }) => {
      const claims = await requirePlayer(deps.auth, request);
      const room = await roomFrom(params);
      if (!(await canSee(room, claims))) throw notFound("ROOM_NOT_FOUND", "no such room");
      return roomView(room);
    })
    .post("/v1/rooms/:code/join", async ({ request, params, body }) => {
      const claims = await requirePlayer(deps.auth, request);
      const room = await roomFrom(params);
      const password = optString(bodyObject(request, body, true), "password", PASSWORD_RE, "1-128 characters");
      // Bun.password.verify is deliberately slow: skip it for players who do not need it.
      let check: PasswordCheck = "none";
      if (room.passwordHash && !room.players.includes(claims.sub)) {
        if (password === undefined) check = "missing";
        else check = (await Bun.password.verify(password, room.passwordHash)) ? "ok" : "bad";
      }
      const { seatToken, alreadySeated } = await store.join(room, claims.sub, check, deps.clock.now());
      return { roomCode: room.code, seatToken, connectUrl: connectUrl(deps.config, room.code, seatToken), alreadySeated };
    })
    .post("/v1/rooms/:code/leave", async ({ request, params }) => {
      const claims = await requirePlayer(deps.auth, request);
      const room = await roomFrom(params);
      const r = await store.leave(room, claims.sub, deps.clock.now());
      if (r.closed) await closed(room.code);
      else if (r.newHostId) await publish({ type: "host", roomCode: room.code, playerId: r.newHostId });
      if (r.restarted) await publish({ type: "state", roomCode: room.code });
      return { left: true, closed: r.closed, hostId: r.closed ? null : (r.newHostId ?? room.hostId), restarted: r.restarted };
    })
    .post("/v1/rooms/:code/invite", async ({ request, params, body }) => {
      const claims = await requirePlayer(deps.auth, request);
      const room = await roomFrom(params);
      const target = targetOf(request, body);
      await store.invite(room, claims.sub, target, deps.clock.now());
      return { invited: target };
    })
    .post("/v1/rooms/:code/kick", async ({ request, params, body }) => {
      const claims = await requirePlayer(deps.auth, request);
      const room = await roomFrom(params);
      const target = targetOf(request, body);
      const r = await store.kick(room, claims.sub, target, deps.clock.now());
      // Every gateway closes the kicked player's sockets in this room with 4003.
      await publish({ type: "kick", roomCode: room.code, playerId: target });
      if (r.restarted) await publish({ type: "state", roomCode: room.code });
      return { kicked: target, wasSeated: r.wasSeated };
    })
    .post("/v1/rooms/:code/host", async ({ request, params, body }) => {
      const claims = await requirePlayer(deps.auth, request);
      const room = await roomFrom(params);
      const target = targetOf(request, body);
      await store.transferHost(room, claims.sub, target, deps.clock.now());
      await publish({ type: "host", roomCode: room.code, playerId: target });
      return { hostId: target };
    })
    .post("/v1/rooms/:code/start", async ({ request, params }) => {
      const claims = await requirePlayer(deps.auth, request);
      const room = await roomFrom(params);
      const r = await store.transition(room, claims.sub, "start", deps.clock.now());
      await publish({ type: "state", roomCode: room.code });
      return { state: r.state };
    })
    .post("/v1/rooms/:code/activate", async ({ request, params }) => {
      const claims = await requirePlayer(deps.auth, request);
      const room = await roomFrom(params);
      const r = await store.transition(room, claims.sub, "activate", deps.clock.now());
      await publish({ type: "state", roomCode: room.code });
      return { state: r.state };
    })
    .post("/v1/rooms/:code/end", async ({ request, params, body }) => {
      const claims = await requirePlayer(deps.auth, request);
      const room = await roomFrom(params);
      const results = parseResults(bodyObject(request, body));
      const r = await store.transition(room, claims.sub, "end", deps.clock.now(), results);
      await publish({ type: "state", roomCode: room.code });
      return { state: r.state, resultId: r.resultId, durationMs: r.durationMs, results };
    })
    .post("/v1/rooms/:code/restart", async ({ request, params }) => {
      const claims = await requirePlayer(deps.auth, request);
      const room = await roomFrom(params);
      const r = await store.voteRestart(room, claims.sub, deps.clock.now());
      if (r.restarted) await publish({ type: "state", roomCode: room.code });
      return { votes: r.votes, seated: r.seated, restarted: r.restarted, state: r.restarted ? "waiting" : "ending" };
    })
    .post("/v1/rooms/:code/close", async ({ request, params }) => {
      const claims = await requirePlayer(deps.auth, request);
      const room = await roomFrom(params);
      const r = await store.transition(room, claims.sub, "close", deps.clock.now());
      await closed(room.code);
      return { state: r.state };
    });
}

/** The match result a host reports: `{results: {teams, scores, reason}}`. */
export interface MatchResults {
  /** Player ids per team. */
  teams: string[][];
  /** One score per team. */
  scores: number[];
  /** Why the match ended (e.g. "score_limit", "time_limit", "forfeit"). */
  reason: string;
}

function parseResults(o: Record<string, unknown>): MatchResults {
  const r = o.results;
  const bad = (msg: string) => badRequest("VALIDATION", `results.${msg}`, { field: "results" });
  if (typeof r !== "object" || r === null || Array.isArray(r)) throw badRequest("VALIDATION", "results must be an object {teams, scores, reason}", { field: "results" });
  const { teams, scores, reason } = r as Record<string, unknown>;
  if (!Array.isArray(teams) || teams.length < 1 || teams.length > 16) throw bad("teams must be 1-16 lists of player ids");
  for (const t of teams) if (!Array.isArray(t) || t.length > 1000 || !t.every((p) => typeof p === "string" && PLAYER_ID_RE.test(p))) throw bad("teams must be lists of player ids");
  if (!Array.isArray(scores) || scores.length !== teams.length || !scores.every((s) => typeof s === "number" && Number.isFinite(s))) throw bad("scores must be one number per team");
  if (typeof reason !== "string" || reason.length < 1 || reason.length > 200) throw bad("reason must be 1-200 characters");
  return { teams: teams as string[][], scores: scores as number[], reason };
}
