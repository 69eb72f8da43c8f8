/** What the API namespaces (rooms, matchmaking, regions) need from the client. */
import type { BackoffOptions } from "./backoff.ts";
import type { RoomConnection } from "./connection.ts";

export interface ConnectOptions {
  /** Overrides the client's backoff for this connection. */
  backoff?: Partial<BackoffOptions>;
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
