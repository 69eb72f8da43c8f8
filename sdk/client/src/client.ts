/** The client: auth, dedicated sessions, and the rooms / matchmaking / regions namespaces. */
import type { BackoffOptions } from "./backoff.ts";
import { RoomConnection, type ConnectionHost, type WebSocketCtor } from "./connection.ts";
import { Emitter } from "./emitter.ts";
import { asError, FleetgateError } from "./errors.ts";
import { Matchmaking } from "./matchmaking.ts";
import { Regions } from "./regions.ts";
import type { ConnectOptions, Requester } from "./requester.ts";
import { Rooms } from "./rooms.ts";
import type { GuestResult, JoinOptions, JoinResult, RefreshResult } from "./types.ts";

type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export interface FleetgateClientOptions {
  /** Gateway (or edge) base URL, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  /** An existing access token (e.g. from your own sign-in), and optionally its refresh token. */
  token?: string;
  refreshToken?: string;
  /** Refresh the access token this long before it expires. Default 60 s (or half its life if shorter). */
  refreshLeadMs?: number;
  backoff?: Partial<BackoffOptions>;
  /** One HTTP call's timeout (FleetgateError TIMEOUT). Default 30 s (a join may wait for a new node). */
  requestTimeoutMs?: number;
  fetch?: FetchLike;
  /** The WebSocket class: the global one in browsers, Bun and Node ≥ 22; pass one (e.g. the `ws` package's) on Node 20. */
  WebSocket?: WebSocketCtor;
  /** Jitter source (tests). */
  random?: () => number;
}

export interface ClientEvents {
  /** A new access token (sign-in or refresh). */
  token: { token: string; expiresAt: number };
  /** The session ended on the server (heartbeat answered 404). */
  sessionLost: { sessionId: string };
  error: Error;
}

export class FleetgateClient extends Emitter<ClientEvents> implements Requester, ConnectionHost {
  readonly baseUrl: string;
  readonly fetchImpl: FetchLike;
  private readonly WS: WebSocketCtor | undefined;
  private readonly random: () => number;
  readonly backoff: BackoffOptions;
  private readonly refreshLeadMs: number;
  private readonly requestTimeoutMs: number;
  private token: string | undefined;
  private refreshToken: string | undefined;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  private refreshing: Promise<void> | undefined;
  private readonly connections = new Set<RoomConnection>();
  /** The signed-in player's id (after `signInAsGuest`). */
  playerId: string | undefined;
  /** The current player session, after `join`. */
  session: JoinResult | undefined;
  /** The current session's room connection, after `connect`. */
  room: RoomConnection | undefined;
  /** Rooms and lobbies: create, list, get, join, connect, leave, invite, kick, host transfer, lifecycle. */
  readonly rooms: Rooms;
  /** Matchmaking tickets: create, wait for a match with progress, cancel, connect. */
  readonly matchmaking: Matchmaking;
  /** Regions: list, measure round trips, choose the best. */
  readonly regions: Regions;

  constructor(opts: FleetgateClientOptions) {
    super();
    this.baseUrl = opts.baseUrl.replace(/\/+$/, "");
    this.fetchImpl = opts.fetch ?? ((input, init) => fetch(input, init));
    this.WS = opts.WebSocket ?? (typeof WebSocket === "undefined" ? undefined : WebSocket);
    this.random = opts.random ?? Math.random;
    this.backoff = { initialMs: 250, maxMs: 10_000, maxAttempts: 20, ...opts.backoff };
    this.refreshLeadMs = opts.refreshLeadMs ?? 60_000;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 30_000;
    this.token = opts.token;
    this.refreshToken = opts.refreshToken;
    this.rooms = new Rooms(this);
    this.matchmaking = new Matchmaking(this);
    this.regions = new Regions(this);
  }

  /** The current access token. */
  get accessToken(): string | undefined {
    return this.token;
  }

  /** `POST /v1/auth/guest`; keeps the token fresh until `close()`. */
  async signInAsGuest(body: { displayName?: string; region?: string } = {}): Promise<GuestResult> {
    const r = await this.request<GuestResult>("POST", "/v1/auth/guest", body, false);
    this.playerId = r.playerId;
    this.setToken(r.token, r.refreshToken, r.expiresAt);
    return r;
  }

  /** `POST /v1/auth/refresh` with the stored refresh token (single use: the new one replaces it). */
  async refresh(): Promise<void> {
    // One refresh at a time: a refresh token works once, so two concurrent ones would fail one.
    this.refreshing ??= (async () => {
      try {
        if (!this.refreshToken) throw new FleetgateError(0, "NO_REFRESH_TOKEN", "no refresh token to refresh with");
        const r = await this.request<RefreshResult>("POST", "/v1/auth/refresh", { refreshToken: this.refreshToken }, false);
        this.setToken(r.token, r.refreshToken, r.expiresAt);
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  /** `POST /v1/players/join` (a dedicated or packed session); starts heartbeats at the interval the server gives. */
  async join(body: JoinOptions = {}): Promise<JoinResult> {
    const s = await this.request<JoinResult>("POST", "/v1/players/join", this.withRegion(body));
    this.session = s;
    this.startHeartbeats(s);
    return s;
  }

  /** `POST /v1/players/heartbeat` now (they also run by themselves after `join`). */
  heartbeat(sessionId = this.session?.sessionId): Promise<void> {
    if (!sessionId) return Promise.reject(new FleetgateError(0, "SESSION_NOT_FOUND", "no session to beat for"));
    return this.request<void>("POST", "/v1/players/heartbeat", { sessionId });
  }

  /**
   * Opens a room socket (default: the session's connectUrl). Reconnects by itself; see RoomEvents.
   * For rooms and matches prefer `rooms.connect()` / `matchmaking.connect()`, which renew the seat.
   */
  connect(connectUrl?: string, opts: { seatToken?: string } & ConnectOptions = {}): RoomConnection {
    const url = connectUrl ?? this.session?.connectUrl;
    if (!url) throw new Error("connect() needs a connectUrl or a joined session");
    this.room?.close();
    const full = opts.seatToken ? `${url}${url.includes("?") ? "&" : "?"}seat=${encodeURIComponent(opts.seatToken)}` : url;
    this.room = this.connectSeat(full, undefined, opts);
    return this.room;
  }

  /** @internal (Requester) Opens a socket whose seat `renew()` refreshes before each reconnect. */
  connectSeat(connectUrl: string, renew: (() => Promise<string>) | undefined, opts: ConnectOptions = {}): RoomConnection {
    if (!this.WS) throw new Error("no WebSocket class: pass one in FleetgateClientOptions.WebSocket (Node 20 has no global WebSocket)");
    const c = new RoomConnection(this, connectUrl, this.WS, this.random, { ...this.backoff, ...opts.backoff }, renew, opts.notices ?? false);
    this.connections.add(c);
    c.on("close", (e) => {
      if (!e.willReconnect) this.connections.delete(c);
    });
    return c;
  }

  /** Ends the session: stops heartbeats, closes the room socket (1000), `POST /v1/players/leave`. */
  async leave(): Promise<void> {
    this.stopHeartbeats();
    this.room?.close();
    this.room = undefined;
    const s = this.session;
    this.session = undefined;
    if (s) await this.request<void>("POST", "/v1/players/leave", { sessionId: s.sessionId });
  }

  /** Stops every timer and socket (does not leave the session or rooms; call `leave()` for that). */
  close(): void {
    this.stopHeartbeats();
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
    this.room = undefined;
    for (const c of this.connections) c.close();
    this.connections.clear();
  }

  /** @internal The token for a (re)connect; refreshed first when the last one was refused. */
  async tokenForSocket(refreshFirst: boolean): Promise<string | undefined> {
    if (refreshFirst && this.refreshToken) await this.refresh().catch((err: unknown) => this.emit("error", asError(err)));
    return this.token;
  }

  /** @internal (Requester) `body` with the chosen region when it names none. */
  withRegion<T extends { region?: string }>(body: T): T {
    const preferred = this.regions.preferred;
    return body.region === undefined && preferred !== undefined ? { ...body, region: preferred } : body;
  }

  /** An API call with the bearer token; one refresh-and-retry on 401. Throws FleetgateError. */
  async request<T>(method: string, path: string, body?: unknown, auth = true, retried = false): Promise<T> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (auth && this.token) headers.authorization = `Bearer ${this.token}`;
    let res: Response;
    try {
      res = await this.fetchImpl(`${this.baseUrl}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.requestTimeoutMs),
      });
    } catch (err) {
      const e = asError(err);
      if (e.name === "TimeoutError") throw new FleetgateError(0, "TIMEOUT", `${method} ${path}: no answer within ${this.requestTimeoutMs} ms`);
      throw new FleetgateError(0, "NETWORK_ERROR", `${method} ${path}: ${e.message}`);
    }
    if (res.status === 401 && auth && !retried && this.refreshToken) {
      await res.arrayBuffer().catch(() => undefined);
      await this.refresh();
      return this.request<T>(method, path, body, auth, true);
    }
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const e = (json as { error?: { code?: string; message?: string; details?: Record<string, unknown> } } | undefined)?.error;
      throw new FleetgateError(res.status, e?.code ?? "HTTP_ERROR", e?.message ?? `HTTP ${res.status}`, e?.details);
    }
    return json as T;
  }

  private setToken(token: string, refreshToken: string | undefined, expiresAt: number): void {
    this.token = token;
    if (refreshToken) this.refreshToken = refreshToken;
    this.emit("token", { token, expiresAt });
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    const life = expiresAt - Date.now();
    const lead = Math.min(this.refreshLeadMs, life / 2);
    this.refreshTimer = setTimeout(() => {
      this.refresh().catch((err: unknown) => this.emit("error", asError(err)));
    }, Math.max(1000, life - lead));
  }

  private startHeartbeats(s: JoinResult): void {
    this.stopHeartbeats();
    this.heartbeatTimer = setInterval(() => {
      this.heartbeat(s.sessionId).catch((err: unknown) => {
        if (err instanceof FleetgateError && err.status === 404) {
          this.stopHeartbeats();
          if (this.session?.sessionId === s.sessionId) this.session = undefined;
          this.emit("sessionLost", { sessionId: s.sessionId });
        } else this.emit("error", asError(err));
      });
    }, s.heartbeatIntervalMs);
  }

  private stopHeartbeats(): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }
}
