/** What the API namespaces (rooms, matchmaking, regions) need from the client. */
import type { BackoffOptions } from "./backoff.ts";
import type { RoomConnection } from "./connection.ts";

export interface ConnectOptions {
  /** Overrides the client's backoff for this connection. */
  backoff?: Partial<BackoffOptions>;
  /**
   * Session resume notices (off by default): the gateway tells this socket when its room's game
   * server was lost and the room is moving ("paused") and when it is back ("resumed"), as events;
   * the socket stays open through it. Without it a resume is only a pause in the frames.
   */
  notices?: boolean;
}

export interface Requester {
  /** An API call with the bearer token; one refresh-and-retry on 401. Throws FleetgateError. */
  request<T>(method: string, path: string, body?: unknown, auth?: boolean): Promise<T>;
  /** `body` with the client's chosen region when it names none (see `Regions.choose()`). */
  withRegion<T extends { region?: string }>(body: T): T;
  /** Opens a room socket whose seat is renewed with `renew()` before every reconnect. */
  connectSeat(connectUrl: string, renew: (() => Promise<string>) | undefined, opts?: ConnectOptions): RoomConnection;
  /** Gateway base URL (no trailing slash). */
  readonly baseUrl: string;
  /** The fetch the client uses. */
  readonly fetchImpl: (input: string, init?: RequestInit) => Promise<Response>;
}
