/**
 * The fleetgate client SDK. Plain `fetch` + `WebSocket` (no Bun or Node APIs), so the same code
 * runs in browsers, Bun and Node 22+.
 *
 * ```ts
 * const fg = new FleetgateClient({ baseUrl: "https://play.example.com" });
 * await fg.signInAsGuest({ displayName: "Ann" });
 * const session = await fg.join();            // heartbeats start at the server's interval
 * const room = fg.connect(session.connectUrl); // reconnects on 4009 / 1006 / 1011 / 4013
 * room.on("message", (data) => ...);
 * room.send("hello");
 * await fg.leave();                            // stops heartbeats, closes, frees the seat
 * ```
 */
import { Emitter } from "./emitter.ts";

export { Emitter } from "./emitter.ts";

export interface GuestResult {
  token: string;
  refreshToken: string;
  playerId: string;
  expiresAt: number;
}

export interface JoinResult {
  sessionId: string;
  playerId: string;
  roomCode: string;
  nodeId: string;
  connectUrl: string;
  heartbeatIntervalMs: number;
}

/** An error answer of the API (CONTRACT error shape). */
export class FleetgateError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "FleetgateError";
  }
}

export interface BackoffOptions {
  /** First retry delay. Default 250 ms. */
  initialMs: number;
  /** Largest delay. Default 10 s. */
  maxMs: number;
  /** Give up after this many attempts in a row without a successful open. Default 20. */
  maxAttempts: number;
}

type WebSocketLike = WebSocket;
type WebSocketCtor = new (url: string, protocols?: string | string[]) => WebSocketLike;
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
  fetch?: FetchLike;
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

export interface RoomEvents {
  /**
   * The socket opened. A refusal (4001, 4003, 4013...) also opens briefly before its close, since
   * the gateway upgrades so that browsers can read the close code.
   */
  open: { reconnect: boolean };
  message: string | ArrayBuffer;
  /** The socket closed; `willReconnect` says whether the SDK retries. */
  close: { code: number; reason: string; willReconnect: boolean };
  reconnecting: { attempt: number; delayMs: number; code: number };
}

/** Close codes after which a retry can succeed (CONTRACT "WebSocket"). */
export const RETRYABLE_CLOSE_CODES: ReadonlySet<number> = new Set([4009, 4013, 1006, 1011, 1001, 1012]);

/** A socket open at least this long counts as a successful connection (resets the backoff). */
const STABLE_OPEN_MS = 1000;

/** The delay a 4009 close asks for ("... reconnect after 1200 ms"), if any. */
export function reconnectDelayFromReason(reason: string): number | undefined {
  const m = /reconnect after (\d+) ms/.exec(reason);
  return m ? Number(m[1]) : undefined;
}

/** Exponential backoff with full jitter in [delay/2, delay]. Pure. */
export function backoffDelay(attempt: number, o: Pick<BackoffOptions, "initialMs" | "maxMs">, random: () => number): number {
  const base = Math.min(o.maxMs, o.initialMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(base / 2 + (random() * base) / 2);
}

export class FleetgateClient extends Emitter<ClientEvents> {
  private readonly baseUrl: string;
  private readonly fetchImpl: FetchLike;
  private readonly WS: WebSocketCtor;
  private readonly random: () => number;
  readonly backoff: BackoffOptions;
  private readonly refreshLeadMs: number;
  private token: string | undefined;
  private refreshToken: string | undefined;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  private refreshing: Promise<void> | undefined;
  /** The current player session, after `join`. */
  session: JoinResult | undefined;
  /** The current room connection, after `connect`. */
  room: RoomConnection | undefined;

  constructor(opts: FleetgateClientOptions) {
    super();
    this.baseUrl = opts.baseUrl.replace(/\/+$/, "");
    this.fetchImpl = opts.fetch ?? ((input, init) => fetch(input, init));
    this.WS = opts.WebSocket ?? WebSocket;
    this.random = opts.random ?? Math.random;
    this.backoff = { initialMs: 250, maxMs: 10_000, maxAttempts: 20, ...opts.backoff };
    this.refreshLeadMs = opts.refreshLeadMs ?? 60_000;
    this.token = opts.token;
    this.refreshToken = opts.refreshToken;
  }

  /** The current access token. */
  get accessToken(): string | undefined {
    return this.token;
  }

  /** `POST /v1/auth/guest`; keeps the token fresh until `close()`. */
  async signInAsGuest(body: { displayName?: string; region?: string } = {}): Promise<GuestResult> {
    const r = await this.request<GuestResult>("POST", "/v1/auth/guest", body, false);
    this.setToken(r.token, r.refreshToken, r.expiresAt);
    return r;
  }

  /** `POST /v1/auth/refresh` with the stored refresh token (single use: the new one replaces it). */
  async refresh(): Promise<void> {
    // One refresh at a time: a refresh token works once, so two concurrent ones would fail one.
    this.refreshing ??= (async () => {
      try {
        if (!this.refreshToken) throw new FleetgateError(401, "NO_REFRESH_TOKEN", "no refresh token to refresh with");
        const r = await this.request<{ token: string; refreshToken: string; expiresAt: number }>("POST", "/v1/auth/refresh", { refreshToken: this.refreshToken }, false);
        this.setToken(r.token, r.refreshToken, r.expiresAt);
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  /** `POST /v1/players/join`; starts heartbeats at the interval the server gives. */
  async join(body: { region?: string; mode?: string } = {}): Promise<JoinResult> {
    const s = await this.request<JoinResult>("POST", "/v1/players/join", body);
    this.session = s;
    this.startHeartbeats(s);
    return s;
  }

  /** Opens the room socket (default: the session's connectUrl). Reconnects by itself; see RoomEvents. */
  connect(connectUrl?: string, opts: { seatToken?: string } = {}): RoomConnection {
    const url = connectUrl ?? this.session?.connectUrl;
    if (!url) throw new Error("connect() needs a connectUrl or a joined session");
    this.room?.close();
    const full = opts.seatToken ? `${url}${url.includes("?") ? "&" : "?"}seat=${encodeURIComponent(opts.seatToken)}` : url;
    this.room = new RoomConnection(this, full, this.WS, this.random);
    return this.room;
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

  /** Stops every timer and socket (does not leave the session; call `leave()` for that). */
  close(): void {
    this.stopHeartbeats();
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
    this.room?.close();
    this.room = undefined;
  }

  /** @internal The token for a (re)connect; refreshed first when the last one was refused. */
  async tokenForSocket(refreshFirst: boolean): Promise<string | undefined> {
    if (refreshFirst && this.refreshToken) await this.refresh().catch((err: unknown) => this.emit("error", asError(err)));
    return this.token;
  }

  /** An API call with the bearer token; one refresh-and-retry on 401. */
  async request<T>(method: string, path: string, body?: unknown, auth = true, retried = false): Promise<T> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (auth && this.token) headers.authorization = `Bearer ${this.token}`;
    const res = await this.fetchImpl(`${this.baseUrl}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if (res.status === 401 && auth && !retried && this.refreshToken) {
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
      const e = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new FleetgateError(res.status, e?.code ?? "HTTP_ERROR", e?.message ?? `HTTP ${res.status}`);
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
      this.request<void>("POST", "/v1/players/heartbeat", { sessionId: s.sessionId }).catch((err: unknown) => {
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

/** One room socket that survives node drains and losses by reconnecting. */
export class RoomConnection extends Emitter<RoomEvents> {
  private ws: WebSocketLike | undefined;
  private attempt = 0;
  private closedByUser = false;
  private opened = false;
  private openedAt: number | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** Frames sent while (re)connecting, delivered on open. */
  private readonly outbox: (string | ArrayBuffer | ArrayBufferView)[] = [];

  constructor(
    private readonly client: FleetgateClient,
    readonly url: string,
    private readonly WS: WebSocketCtor,
    private readonly random: () => number,
  ) {
    super();
    void this.open(false);
  }

  /** True while the socket is open. */
  get isOpen(): boolean {
    return this.ws?.readyState === 1;
  }

  /** Sends now when open, else on the next open (in order). */
  send(data: string | ArrayBuffer | ArrayBufferView): void {
    if (this.ws && this.ws.readyState === 1) this.ws.send(data as string);
    else this.outbox.push(data);
  }

  /** Closes for good (1000); no reconnect. */
  close(code = 1000, reason = "client closed"): void {
    this.closedByUser = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    try {
      this.ws?.close(code, reason);
    } catch {
      /* not open yet */
    }
  }

  private async open(refreshFirst: boolean): Promise<void> {
    if (this.closedByUser) return;
    const token = await this.client.tokenForSocket(refreshFirst);
    if (this.closedByUser) return;
    const ws = token ? new this.WS(this.url, ["bearer", token]) : new this.WS(this.url);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = () => {
      const reconnect = this.opened;
      this.opened = true;
      this.openedAt = Date.now();
      for (const f of this.outbox.splice(0)) ws.send(f as string);
      this.emit("open", { reconnect });
    };
    ws.onmessage = (ev: MessageEvent) => this.emit("message", ev.data as string | ArrayBuffer);
    ws.onclose = (ev: CloseEvent) => this.onClose(ev.code, ev.reason, refreshFirst);
  }

  private onClose(code: number, reason: string, afterRefresh: boolean): void {
    if (this.closedByUser) {
      this.emit("close", { code, reason, willReconnect: false });
      return;
    }
    // 4001: the token expired or was refused — refresh once and try again.
    const tokenRetry = code === 4001 && !afterRefresh;
    const retryable = RETRYABLE_CLOSE_CODES.has(code) || tokenRetry;
    // The gateway refuses by upgrading and closing at once (so browsers see the code): an open
    // followed by a close is not a success. Only a socket that stayed open resets the backoff.
    if (this.openedAt !== undefined && Date.now() - this.openedAt >= STABLE_OPEN_MS) this.attempt = 0;
    this.openedAt = undefined;
    this.attempt++;
    const willReconnect = retryable && this.attempt <= this.client.backoff.maxAttempts;
    this.emit("close", { code, reason, willReconnect });
    if (!willReconnect) return;
    const asked = code === 4009 ? reconnectDelayFromReason(reason) : undefined;
    const delayMs = tokenRetry ? 0 : (asked ?? backoffDelay(this.attempt, this.client.backoff, this.random));
    this.emit("reconnecting", { attempt: this.attempt, delayMs, code });
    this.retryTimer = setTimeout(() => void this.open(tokenRetry), delayMs);
  }
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
