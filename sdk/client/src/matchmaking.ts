/** Matchmaking tickets (CONTRACT "Rooms and lobbies": tickets). */
import type { RoomConnection } from "./connection.ts";
import { FleetgateError } from "./errors.ts";
import type { ConnectOptions, Requester } from "./requester.ts";
import type { MatchedTicket, MatchProgress, Ticket, TicketOptions } from "./types.ts";

export interface WaitOptions {
  /** Poll interval. Default 500 ms. */
  intervalMs?: number;
  /** Give up (FleetgateError TIMEOUT) after this long; the ticket is cancelled. Default: no limit (the gateway expires tickets after TICKET_TTL). */
  timeoutMs?: number;
  /** Abort the wait (FleetgateError ABORTED); the ticket is cancelled. */
  signal?: AbortSignal;
  /** Called after every poll. */
  onProgress?: (p: MatchProgress) => void;
}

/** Failed polls in a row (retryable ones) before `waitForMatch` gives up. */
const MAX_POLL_FAILURES = 5;

const ticketPath = (id: string) => `/v1/matchmaking/tickets/${encodeURIComponent(id)}`;

export class Matchmaking {
  constructor(private readonly api: Requester) {}

  /** `POST /v1/matchmaking/tickets`. 409 ALREADY_QUEUED (with `details.ticketId`) while the player has a live ticket. */
  createTicket(opts: TicketOptions): Promise<{ ticketId: string; status: "queued" }> {
    return this.api.request("POST", "/v1/matchmaking/tickets", this.api.withRegion(opts));
  }

  /** `GET /v1/matchmaking/tickets/:id` (a matched ticket carries roomCode, seatToken and connectUrl). */
  getTicket(ticketId: string): Promise<Ticket> {
    return this.api.request<Ticket>("GET", ticketPath(ticketId));
  }

  /** `DELETE /v1/matchmaking/tickets/:id`. 409 TICKET_NOT_QUEUED once matched, expired or cancelled. */
  cancel(ticketId: string): Promise<{ ticketId: string; status: "cancelled" }> {
    return this.api.request("DELETE", ticketPath(ticketId));
  }

  /**
   * Polls the ticket until it is matched. Throws FleetgateError TICKET_CANCELLED / TICKET_EXPIRED
   * when it ends otherwise; on timeout or abort it cancels the ticket (best effort) and throws
   * TIMEOUT / ABORTED.
   */
  async waitForMatch(ticketId: string, opts: WaitOptions = {}): Promise<MatchedTicket> {
    const interval = opts.intervalMs ?? 500;
    const started = Date.now();
    let polls = 0;
    let failures = 0;
    for (;;) {
      this.checkStop(ticketId, started, opts);
      let t: Ticket;
      try {
        t = await this.getTicket(ticketId);
        failures = 0;
      } catch (err) {
        // A blip (network, 429, 5xx) is waited out, a few polls in a row at most; anything else
        // (the ticket is not ours, not found) ends the wait.
        if (!(err instanceof FleetgateError) || !err.retryable || ++failures >= MAX_POLL_FAILURES) throw err;
        await sleep(interval * failures, opts.signal);
        continue;
      }
      polls++;
      opts.onProgress?.({ ticketId, status: t.status, waitedMs: Date.now() - started, polls });
      if (t.status === "matched" && t.roomCode && t.seatToken && t.connectUrl) return t as MatchedTicket;
      if (t.status === "cancelled") throw new FleetgateError(0, "TICKET_CANCELLED", `ticket ${ticketId} was cancelled`);
      if (t.status === "expired") throw new FleetgateError(0, "TICKET_EXPIRED", `ticket ${ticketId} expired before a match`);
      await sleep(interval, opts.signal);
    }
  }

  /** Creates a ticket (or adopts the player's live one) and waits for its match. */
  async findMatch(opts: TicketOptions & WaitOptions): Promise<MatchedTicket> {
    const { intervalMs, timeoutMs, signal, onProgress, ...ticket } = opts;
    let ticketId: string;
    try {
      ticketId = (await this.createTicket(ticket)).ticketId;
    } catch (err) {
      const existing = err instanceof FleetgateError && err.code === "ALREADY_QUEUED" ? err.details?.ticketId : undefined;
      if (typeof existing !== "string") throw err;
      ticketId = existing;
    }
    return this.waitForMatch(ticketId, { intervalMs, timeoutMs, signal, onProgress });
  }

  /** Opens the matched room's socket; before a reconnect the seat token is renewed by reading the ticket again. */
  connect(match: MatchedTicket, opts: ConnectOptions = {}): RoomConnection {
    return this.api.connectSeat(
      match.connectUrl,
      async () => {
        const t = await this.getTicket(match.ticketId);
        if (!t.connectUrl) throw new FleetgateError(403, "NOT_SEATED", "the match's seat is gone");
        return t.connectUrl;
      },
      opts,
    );
  }

  private checkStop(ticketId: string, started: number, opts: WaitOptions): void {
    const aborted = opts.signal?.aborted;
    const timedOut = opts.timeoutMs !== undefined && Date.now() - started >= opts.timeoutMs;
    if (!aborted && !timedOut) return;
    this.cancel(ticketId).catch(() => {});
    throw aborted ? new FleetgateError(0, "ABORTED", "wait for a match aborted") : new FleetgateError(0, "TIMEOUT", `no match within ${opts.timeoutMs} ms`);
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
