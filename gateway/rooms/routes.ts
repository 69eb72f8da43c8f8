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
import { Elysia, t } from "elysia";
import { badRequest, notFound } from "../../core/errors.ts";
import type { RoomEvent } from "../../core/types.ts";
import type { Claims } from "../contracts.ts";
import type { GatewayDeps } from "../deps.ts";
import { requirePlayer } from "../http/player.ts";
import { connectUrl } from "../http/connect-url.ts";
import { renderError } from "../http/errors.ts";
import { strictJson } from "../http/body.ts";
import { Latencies, Name, PlayerId } from "../http/schemas.ts";
import { RegionRanker } from "../ops/regions.ts";
import { encodeRanking } from "../../model/placement/region-choice.ts";
import { NAME_RE } from "../../core/names.ts";
import { assertRoomCode, RoomStore, roomView, type PasswordCheck, type RoomRecord } from "../../model/rooms/room-store.ts";

export type RoomsDeps = Pick<GatewayDeps, "redis" | "keys" | "clock" | "config" | "auth" | "placement" | "log">;

/** Lobby browser page size. */
const LOBBY_LIMIT = 100;
const Password = t.String({ minLength: 1, maxLength: 128 });
/** Largest `settings` object, as JSON. */
const SETTINGS_MAX_BYTES = 8 * 1024;
const TargetBody = t.Object({ playerId: PlayerId });
/** `POST /v1/rooms/:code/end` body. */
const EndBody = t.Object({
  results: t.Object({
    teams: t.Array(t.Array(PlayerId, { maxItems: 1000 }), { minItems: 1, maxItems: 16, description: "player ids per team" }),
    scores: t.Array(t.Number(), { description: "one score per team" }),
    reason: t.String({ minLength: 1, maxLength: 200, description: 'why the match ended, e.g. "score_limit"' }),
  }),
});

export function roomsRoutes(deps: RoomsDeps, regions: RegionRanker = new RegionRanker(deps)) {
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
    // The room's snapshot (session resume) ends with it.
    await deps.redis.del(deps.keys.roomSnapshot(code)).catch((err: unknown) => log.warn("room snapshot not deleted", { room: code, err }));
    try {
      await deps.placement.releaseRoom(code);
    } catch (err) {
      log.warn("placement not released", { room: code, err });
    }
  };

  /** The room from the path; 400 for a bad code before any lookup, 404 for an unknown one. */
  const roomFrom = async (params: Record<string, string>) => store.require(assertRoomCode(params.code));
  const CreateBody = t.Object({
    mode: t.Optional(Name),
    region: t.Optional(Name),
    latencies: t.Optional(Latencies),
    visibility: t.Union([t.Literal("public"), t.Literal("private")]),
    password: t.Optional(Password),
    maxPlayers: t.Optional(t.Integer({ minimum: 1, maximum: Math.max(deps.config.nodeMaxPlayers, deps.config.maxPlayersPerServer) })),
    settings: t.Optional(t.Object({}, { additionalProperties: true, description: "free-form game settings (at most 8 KiB of JSON)" })),
  });
  const jsonBody = strictJson();
  const createBody = strictJson({ objects: ["settings"] });
  const optionalBody = strictJson({ optional: true });
  const canSee = async (room: RoomRecord, claims: Claims) =>
    room.visibility === "public" || claims.roles.includes("admin") || room.players.includes(claims.sub) || (await store.isInvited(room.code, claims.sub));

  return new Elysia({ name: "roomsRoutes" })
    .onError(({ code, error }) => renderError(code, error, log))
    .post(
      "/v1/rooms",
      async ({ request, body: o, set }) => {
        const claims = await requirePlayer(deps.auth, request);
        if (o.settings && JSON.stringify(o.settings).length > SETTINGS_MAX_BYTES) throw badRequest("VALIDATION", `settings is over ${SETTINGS_MAX_BYTES} bytes`, { field: "settings" });
        const now = deps.clock.now();
        // Where the room is placed on its first connect: the creator's best region, fallbacks after REGION_FALLBACK_WAIT.
        const ranking = await regions.rank({ requested: o.region, claim: claims.region, latencies: o.latencies });
        const room = await store.create(
          {
            hostId: claims.sub,
            mode: o.mode ?? "default",
            region: o.region ?? (o.latencies ? ranking.best : NAME_RE.test(claims.region) ? claims.region : deps.config.region),
            regions: encodeRanking(ranking),
            visibility: o.visibility,
            maxPlayers: o.maxPlayers ?? deps.config.roomMaxPlayers,
            settings: o.settings ?? {},
            ...(o.password ? { passwordHash: await Bun.password.hash(o.password) } : {}),
          },
          now,
        );
        const seatToken = await store.issueSeatToken(room.code, claims.sub, now);
        set.status = 201;
        return { ...roomView(room), seatToken, connectUrl: connectUrl(deps.config.publicUrl, request, room.code, seatToken) };
      },
      { parse: createBody, body: CreateBody, detail: { summary: "Create a room (the caller is host)", tags: ["rooms"] } },
    )
    .get(
      "/v1/rooms",
      async ({ request, query }) => {
        await requirePlayer(deps.auth, request);
        return { rooms: (await store.listLobby({ mode: query.mode, region: query.region }, LOBBY_LIMIT)).map(roomView) };
      },
      { query: t.Object({ mode: t.Optional(Name), region: t.Optional(Name) }), detail: { summary: "The lobby browser: public rooms with open seats", tags: ["rooms"] } },
    )
    .get(
      "/v1/rooms/:code",
      async ({ request, params }) => {
        const claims = await requirePlayer(deps.auth, request);
        const room = await roomFrom(params);
        if (!(await canSee(room, claims))) throw notFound("ROOM_NOT_FOUND", "no such room");
        return roomView(room);
      },
      { detail: { summary: "A room", tags: ["rooms"] } },
    )
    .post(
      "/v1/rooms/:code/join",
      async ({ request, params, body }) => {
        const claims = await requirePlayer(deps.auth, request);
        const room = await roomFrom(params);
        const password = body.password;
        // Bun.password.verify is deliberately slow: skip it for players who do not need it.
        let check: PasswordCheck = "none";
        if (room.passwordHash && !room.players.includes(claims.sub)) {
          if (password === undefined) check = "missing";
          else check = (await Bun.password.verify(password, room.passwordHash)) ? "ok" : "bad";
        }
        const { seatToken, alreadySeated } = await store.join(room, claims.sub, check, deps.clock.now());
        return { roomCode: room.code, seatToken, connectUrl: connectUrl(deps.config.publicUrl, request, room.code, seatToken), alreadySeated };
      },
      { parse: optionalBody, body: t.Object({ password: t.Optional(Password) }), detail: { summary: "Join a room: a seat token and the WebSocket URL", tags: ["rooms"] } },
    )
    .post(
      "/v1/rooms/:code/leave",
      async ({ request, params }) => {
        const claims = await requirePlayer(deps.auth, request);
        const room = await roomFrom(params);
        const r = await store.leave(room, claims.sub, deps.clock.now());
        if (r.closed) await closed(room.code);
        else if (r.newHostId) await publish({ type: "host", roomCode: room.code, playerId: r.newHostId });
        if (r.restarted) await publish({ type: "state", roomCode: room.code });
        return { left: true, closed: r.closed, hostId: r.closed ? null : (r.newHostId ?? room.hostId), restarted: r.restarted };
      },
      { detail: { summary: "Leave a room", tags: ["rooms"] } },
    )
    .post(
      "/v1/rooms/:code/invite",
      async ({ request, params, body }) => {
        const claims = await requirePlayer(deps.auth, request);
        const room = await roomFrom(params);
        const target = body.playerId;
        await store.invite(room, claims.sub, target, deps.clock.now());
        return { invited: target };
      },
      { parse: jsonBody, body: TargetBody, detail: { summary: "Invite a player (any seated player)", tags: ["rooms"] } },
    )
    .post(
      "/v1/rooms/:code/kick",
      async ({ request, params, body }) => {
        const claims = await requirePlayer(deps.auth, request);
        const room = await roomFrom(params);
        const target = body.playerId;
        const r = await store.kick(room, claims.sub, target, deps.clock.now());
        // Every gateway closes the kicked player's sockets in this room with 4003.
        await publish({ type: "kick", roomCode: room.code, playerId: target });
        if (r.restarted) await publish({ type: "state", roomCode: room.code });
        return { kicked: target, wasSeated: r.wasSeated };
      },
      { parse: jsonBody, body: TargetBody, detail: { summary: "Kick a player (host): banned from the room", tags: ["rooms"] } },
    )
    .post(
      "/v1/rooms/:code/host",
      async ({ request, params, body }) => {
        const claims = await requirePlayer(deps.auth, request);
        const room = await roomFrom(params);
        const target = body.playerId;
        await store.transferHost(room, claims.sub, target, deps.clock.now());
        await publish({ type: "host", roomCode: room.code, playerId: target });
        return { hostId: target };
      },
      { parse: jsonBody, body: TargetBody, detail: { summary: "Transfer host (host)", tags: ["rooms"] } },
    )
    .post(
      "/v1/rooms/:code/start",
      async ({ request, params }) => {
        const claims = await requirePlayer(deps.auth, request);
        const room = await roomFrom(params);
        const r = await store.transition(room, claims.sub, "start", deps.clock.now());
        // With the state: a lobby's next match on a retiring node moves to the new version (hub.ts).
        await publish({ type: "state", roomCode: room.code, state: r.state });
        return { state: r.state };
      },
      { detail: { summary: "Start: waiting → starting (host)", tags: ["rooms"] } },
    )
    .post(
      "/v1/rooms/:code/activate",
      async ({ request, params }) => {
        const claims = await requirePlayer(deps.auth, request);
        const room = await roomFrom(params);
        const r = await store.transition(room, claims.sub, "activate", deps.clock.now());
        await publish({ type: "state", roomCode: room.code });
        return { state: r.state };
      },
      { detail: { summary: "Activate: starting → active (host)", tags: ["rooms"] } },
    )
    .post(
      "/v1/rooms/:code/end",
      async ({ request, params, body }) => {
        const claims = await requirePlayer(deps.auth, request);
        const room = await roomFrom(params);
        const results = checkResults(body.results);
        const r = await store.transition(room, claims.sub, "end", deps.clock.now(), results);
        await publish({ type: "state", roomCode: room.code });
        return { state: r.state, resultId: r.resultId, durationMs: r.durationMs, results };
      },
      { parse: jsonBody, body: EndBody, detail: { summary: "End the match (host): results are recorded", tags: ["rooms"] } },
    )
    .post(
      "/v1/rooms/:code/restart",
      async ({ request, params }) => {
        const claims = await requirePlayer(deps.auth, request);
        const room = await roomFrom(params);
        const r = await store.voteRestart(room, claims.sub, deps.clock.now());
        if (r.restarted) await publish({ type: "state", roomCode: room.code });
        return { votes: r.votes, seated: r.seated, restarted: r.restarted, state: r.restarted ? "waiting" : "ending" };
      },
      { detail: { summary: "Vote to play again (state ending)", tags: ["rooms"] } },
    )
    .post(
      "/v1/rooms/:code/close",
      async ({ request, params }) => {
        const claims = await requirePlayer(deps.auth, request);
        const room = await roomFrom(params);
        const r = await store.transition(room, claims.sub, "close", deps.clock.now());
        await closed(room.code);
        return { state: r.state };
      },
      { detail: { summary: "Close the room (host, not while active)", tags: ["rooms"] } },
    );
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

/** What the schema cannot say: one finite score per team. */
function checkResults(r: MatchResults): MatchResults {
  if (r.scores.length !== r.teams.length || !r.scores.every((x) => Number.isFinite(x))) throw badRequest("VALIDATION", "results.scores must be one number per team", { field: "results" });
  return r;
}
