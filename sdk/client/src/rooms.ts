/** Rooms and lobbies (CONTRACT "Rooms and lobbies", plus the gateway's lifecycle routes). */
import type { RoomConnection } from "./connection.ts";
import { FleetgateError } from "./errors.ts";
import type { ConnectOptions, Requester } from "./requester.ts";
import type { CreatedRoom, CreateRoomOptions, JoinedRoom, LeaveRoomResult, MatchResults, Room, RoomState } from "./types.ts";

/** Room codes: 4–32 of `[A-Za-z0-9_-]` (CONTRACT); anything else is refused before a request. */
export const ROOM_CODE_RE = /^[A-Za-z0-9_-]{4,32}$/;

/** Throws FleetgateError(400, INVALID_ROOM_CODE) for a code the gateway would refuse. */
export function assertRoomCode(code: string): string {
  if (!ROOM_CODE_RE.test(code)) throw new FleetgateError(400, "INVALID_ROOM_CODE", "room codes are 4-32 characters of [A-Za-z0-9_-]");
  return code;
}

const path = (code: string, action?: string) => `/v1/rooms/${encodeURIComponent(assertRoomCode(code))}${action ? `/${action}` : ""}`;

export class Rooms {
  constructor(private readonly api: Requester) {}

  /** `POST /v1/rooms`: a new room with the caller as host (seated, with a seat token). */
  async create(opts: CreateRoomOptions): Promise<CreatedRoom> {
    return this.api.request<CreatedRoom>("POST", "/v1/rooms", this.api.withRegion(opts));
  }

  /** `GET /v1/rooms`: public rooms with open seats (the lobby browser). */
  async list(filter: { mode?: string; region?: string } = {}): Promise<Room[]> {
    const q = new URLSearchParams();
    if (filter.mode) q.set("mode", filter.mode);
    if (filter.region) q.set("region", filter.region);
    const qs = q.toString();
    return (await this.api.request<{ rooms: Room[] }>("GET", `/v1/rooms${qs ? `?${qs}` : ""}`)).rooms;
  }

  /** `GET /v1/rooms/:code` (a private room is 404 unless seated or invited). */
  async get(code: string): Promise<Room> {
    return this.api.request<Room>("GET", path(code));
  }

  /** `POST /v1/rooms/:code/join`: a seat (with the password for a room that has one). 403 WRONG_PASSWORD / KICKED, 409 ROOM_FULL. */
  async join(code: string, opts: { password?: string } = {}): Promise<JoinedRoom> {
    return this.api.request<JoinedRoom>("POST", path(code, "join"), opts.password === undefined ? {} : { password: opts.password });
  }

  /**
   * Joins (or re-joins: idempotent) and opens the room's socket. On every reconnect the seat token
   * is renewed by joining again, so a private room's socket outlives its seat token's TTL; a
   * refusal of the re-join (KICKED, ROOM_CLOSED...) ends the connection.
   */
  async connect(code: string, opts: { password?: string } & ConnectOptions = {}): Promise<RoomConnection> {
    const { password, ...connectOpts } = opts;
    const seat = await this.join(code, { password });
    return this.api.connectSeat(seat.connectUrl, async () => (await this.join(code, { password })).connectUrl, connectOpts);
  }

  /** `POST /v1/rooms/:code/leave` (the host's seat passes on; the last player closes the room). */
  async leave(code: string): Promise<LeaveRoomResult> {
    return this.api.request<LeaveRoomResult>("POST", path(code, "leave"), {});
  }

  /** `POST /v1/rooms/:code/invite {playerId}` (any seated player). */
  async invite(code: string, playerId: string): Promise<{ invited: string }> {
    return this.api.request("POST", path(code, "invite"), { playerId });
  }

  /** `POST /v1/rooms/:code/kick {playerId}` (host): the player's sockets close 4003 and the seat is banned. */
  async kick(code: string, playerId: string): Promise<{ kicked: string; wasSeated: boolean }> {
    return this.api.request("POST", path(code, "kick"), { playerId });
  }

  /** `POST /v1/rooms/:code/host {playerId}` (host). */
  async transferHost(code: string, playerId: string): Promise<{ hostId: string }> {
    return this.api.request("POST", path(code, "host"), { playerId });
  }

  /** `POST /v1/rooms/:code/start` (host, at least 2 players): waiting → starting. */
  async start(code: string): Promise<{ state: RoomState }> {
    return this.api.request("POST", path(code, "start"), {});
  }

  /** `POST /v1/rooms/:code/activate` (host): starting → active. */
  async activate(code: string): Promise<{ state: RoomState }> {
    return this.api.request("POST", path(code, "activate"), {});
  }

  /** `POST /v1/rooms/:code/end {results}` (host): active → ending; the result is recorded. */
  async end(code: string, results: MatchResults): Promise<{ state: RoomState; resultId: string; durationMs: number; results: MatchResults }> {
    return this.api.request("POST", path(code, "end"), { results });
  }

  /** `POST /v1/rooms/:code/restart`: a vote; the room goes back to `waiting` once every seated player (≥ 2) voted. */
  async voteRestart(code: string): Promise<{ votes: number; seated: number; restarted: boolean; state: RoomState }> {
    return this.api.request("POST", path(code, "restart"), {});
  }

  /** `POST /v1/rooms/:code/close` (host, not while active): → completed. */
  async close(code: string): Promise<{ state: RoomState }> {
    return this.api.request("POST", path(code, "close"), {});
  }
}
