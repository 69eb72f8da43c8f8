/**
 * @fleetgate/client — the fleetgate client SDK (issue 13). Plain `fetch` + `WebSocket`: runs in
 * browsers, Bun and Node ≥ 20 (on Node 20 pass a `WebSocket` class; Node 22 has one).
 *
 * ```ts
 * const fg = new FleetgateClient({ baseUrl: "http://127.0.0.1:8080" });
 * await fg.signInAsGuest({ displayName: "ada" });      // token kept fresh until fg.close()
 * const lobby = await fg.rooms.create({ visibility: "public", maxPlayers: 4 });
 * const room = await fg.rooms.connect(lobby.code);     // reconnects on 4009 / 1006 / 1011 / 4013
 * room.on("message", (data) => ...);
 * room.send("hello");
 * ```
 * See README.md for sessions, matchmaking, regions and errors.
 */
export { FleetgateClient, type ClientEvents, type FleetgateClientOptions } from "./client.ts";
export { RoomConnection, type RoomEvents, type WebSocketCtor } from "./connection.ts";
export { Emitter } from "./emitter.ts";
export { closeAction, CloseCodes, FleetgateError, type CloseAction, type ErrorCode } from "./errors.ts";
export { backoffDelay, reconnectDelayFromReason, RETRYABLE_CLOSE_CODES, type BackoffOptions } from "./backoff.ts";
export { assertRoomCode, Rooms, ROOM_CODE_RE } from "./rooms.ts";
export { Matchmaking, type WaitOptions } from "./matchmaking.ts";
export { latencyMap, rankRegions, Regions, type MeasureOptions } from "./regions.ts";
export type { ConnectOptions } from "./requester.ts";
export type * from "./types.ts";
