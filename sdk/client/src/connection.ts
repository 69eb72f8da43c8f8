/** One room socket that survives node drains and losses by reconnecting (CONTRACT close-code table). */
import { backoffDelay, reconnectDelayFromReason, RETRYABLE_CLOSE_CODES, type BackoffOptions } from "./backoff.ts";
import { Emitter } from "./emitter.ts";
import { asError, closeAction, FleetgateError, type CloseAction } from "./errors.ts";

export interface RoomEvents {
  /**
   * The socket opened. A refusal (4001, 4003, 4013...) also opens briefly before its close, since
   * the gateway upgrades so that browsers can read the close code.
   */
  open: { reconnect: boolean };
  message: string | ArrayBuffer;
  /** The socket closed; `willReconnect` says whether the SDK retries, `action` what the contract advises. */
  close: { code: number; reason: string; willReconnect: boolean; action: CloseAction };
  reconnecting: { attempt: number; delayMs: number; code: number };
  /**
   * (With `notices: true`.) The room's game server was lost; the gateway holds this socket open
   * and moves the room to another server within `timeoutMs`. Frames sent meanwhile are delivered.
   */
  paused: { reason: string; timeoutMs: number };
  /** (With `notices: true`.) The room is back, on a new server, after `pausedMs`. */
  resumed: { pausedMs: number };
  /** A seat renewal or token refresh before a reconnect failed. */
  error: Error;
}

export type WebSocketCtor = new (url: string, protocols?: string | string[]) => WebSocket;

/** What a connection needs from its client. */
export interface ConnectionHost {
  /** The token for a (re)connect; refreshed first when asked. */
  tokenForSocket(refreshFirst: boolean): Promise<string | undefined>;
}

/** How a gateway notice frame starts (`{"fleetgate":"paused",...}`, `{"fleetgate":"resumed",...}`). */
const NOTICE_PREFIX = '{"fleetgate":';

/** A socket open at least this long counts as a successful connection (resets the backoff). */
const STABLE_OPEN_MS = 1000;

export class RoomConnection extends Emitter<RoomEvents> {
  private ws: WebSocket | undefined;
  private attempt = 0;
  private closedByUser = false;
  private opened = false;
  private openedAt: number | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** Frames sent while (re)connecting, delivered on open. */
  private readonly outbox: (string | ArrayBuffer | ArrayBufferView)[] = [];
  private currentUrl: string;

  constructor(
    private readonly host: ConnectionHost,
    url: string,
    private readonly WS: WebSocketCtor,
    private readonly random: () => number,
    private readonly backoff: BackoffOptions,
    /** Renews the seat (a fresh connectUrl) before a reconnect; absent for ad-hoc and session rooms. */
    private readonly renew?: () => Promise<string>,
    /** Ask the gateway for resume notices (`?notices=1`) and turn them into paused/resumed events. */
    private readonly notices = false,
  ) {
    super();
    this.currentUrl = url;
    void this.open(false, false);
  }

  /** The URL of the current (or last) socket. */
  get url(): string {
    return this.currentUrl;
  }

  /** True while the socket is open. */
  get isOpen(): boolean {
    return this.ws?.readyState === 1;
  }

  /** Bytes queued in the socket but not yet sent (0 when closed). */
  get bufferedAmount(): number {
    return this.ws?.bufferedAmount ?? 0;
  }

  /**
   * Resolves once the socket is open (at once if it is); rejects with FleetgateError
   * `CLOSED_<code>` if it closes for good first, or `TIMEOUT` after `timeoutMs`. The gateway
   * refuses by upgrading and then closing (so browsers can read the code): a refused socket counts
   * as open for that moment — watch `close` for the refusal.
   */
  ready(timeoutMs?: number): Promise<void> {
    if (this.isOpen) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = () => {
        offOpen();
        offClose();
        if (timer) clearTimeout(timer);
      };
      const offOpen = this.on("open", () => {
        done();
        resolve();
      });
      const offClose = this.on("close", (e) => {
        if (e.willReconnect) return;
        done();
        reject(new FleetgateError(0, `CLOSED_${e.code}`, `the socket closed (${e.code} ${e.reason}) before it opened`));
      });
      if (timeoutMs !== undefined)
        timer = setTimeout(() => {
          done();
          reject(new FleetgateError(0, "TIMEOUT", `the socket did not open within ${timeoutMs} ms`));
        }, timeoutMs);
    });
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

  private async open(refreshFirst: boolean, renewSeat: boolean): Promise<void> {
    if (this.closedByUser) return;
    if (renewSeat && this.renew) {
      try {
        this.currentUrl = await this.renew();
      } catch (err) {
        // The seat is gone for good (kicked, room closed) or the API is down: a refused renewal
        // ends the connection, a retryable one counts as a failed attempt.
        this.emit("error", asError(err));
        const retry = err instanceof FleetgateError && err.retryable;
        this.onClose(retry ? 1011 : 4003, retry ? "seat renewal failed" : `seat renewal refused: ${asError(err).message}`, refreshFirst, false);
        return;
      }
    }
    const token = await this.host.tokenForSocket(refreshFirst);
    if (this.closedByUser) return;
    const url = this.notices && !/[?&]notices=1(&|$)/.test(this.currentUrl) ? `${this.currentUrl}${this.currentUrl.includes("?") ? "&" : "?"}notices=1` : this.currentUrl;
    let ws: WebSocket;
    try {
      ws = token ? new this.WS(url, ["bearer", token]) : new this.WS(url);
    } catch (err) {
      // A URL the WebSocket class refuses (not ws:// or wss://, malformed): no retry can fix it.
      this.closedByUser = true;
      this.emit("error", asError(err));
      this.emit("close", { code: 1006, reason: `could not open ${url}: ${asError(err).message}`, willReconnect: false, action: "fix-client" });
      return;
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = () => {
      const reconnect = this.opened;
      this.opened = true;
      this.openedAt = Date.now();
      for (const f of this.outbox.splice(0)) ws.send(f as string);
      this.emit("open", { reconnect });
    };
    ws.onmessage = (ev: MessageEvent) => {
      const data = ev.data as string | ArrayBuffer;
      if (this.notices && typeof data === "string" && data.startsWith(NOTICE_PREFIX) && this.notice(data)) return;
      this.emit("message", data);
    };
    ws.onclose = (ev: CloseEvent) => this.onClose(ev.code, ev.reason, refreshFirst, renewSeat);
  }

  /** A gateway notice (README "Session resume"): emitted as its event; false when the frame is not one. */
  private notice(data: string): boolean {
    let n: { fleetgate?: unknown; reason?: unknown; timeoutMs?: unknown; pausedMs?: unknown };
    try {
      n = JSON.parse(data) as typeof n;
    } catch {
      return false;
    }
    if (n.fleetgate === "paused") this.emit("paused", { reason: String(n.reason ?? "node lost"), timeoutMs: Number(n.timeoutMs) || 0 });
    else if (n.fleetgate === "resumed") this.emit("resumed", { pausedMs: Number(n.pausedMs) || 0 });
    else return false;
    return true;
  }

  private onClose(code: number, reason: string, afterRefresh: boolean, afterRenew: boolean): void {
    const action = closeAction(code);
    if (this.closedByUser) {
      this.emit("close", { code, reason, willReconnect: false, action });
      return;
    }
    // 4001: the token expired or was refused — refresh once and try again. 4003 on a seat we can
    // renew (a private room's seat token expired): renew once and try again; a kicked player's
    // renewal is refused (403 KICKED), which ends it.
    const tokenRetry = code === 4001 && !afterRefresh;
    const seatRetry = code === 4003 && !!this.renew && !afterRenew && !/kick|seat renewal refused/i.test(reason);
    const retryable = RETRYABLE_CLOSE_CODES.has(code) || tokenRetry || seatRetry;
    // The gateway refuses by upgrading and closing at once (so browsers see the code): an open
    // followed by a close is not a success. Only a socket that stayed open resets the backoff.
    if (this.openedAt !== undefined && Date.now() - this.openedAt >= STABLE_OPEN_MS) this.attempt = 0;
    this.openedAt = undefined;
    this.attempt++;
    const willReconnect = retryable && this.attempt <= this.backoff.maxAttempts;
    this.emit("close", { code, reason, willReconnect, action });
    if (!willReconnect) return;
    const asked = code === 4009 ? reconnectDelayFromReason(reason) : undefined;
    const delayMs = tokenRetry || seatRetry ? 0 : (asked ?? backoffDelay(this.attempt, this.backoff, this.random));
    this.emit("reconnecting", { attempt: this.attempt, delayMs, code });
    // Every reconnect renews the seat first (when it can), so a seat token past its TTL never
    // stands between a player and the room after a node loss.
    this.retryTimer = setTimeout(() => void this.open(tokenRetry, !tokenRetry), delayMs);
  }
}
