/** Reconnect timing: pure helpers. */

export interface BackoffOptions {
  /** First retry delay. Default 250 ms. */
  initialMs: number;
  /** Largest delay. Default 10 s. */
  maxMs: number;
  /** Give up after this many attempts in a row without a successful open. Default 20. */
  maxAttempts: number;
}

/**
 * Close codes after which the SDK reconnects by itself (CONTRACT "WebSocket": 4009 reconnect,
 * 4013 / 1011 retry with backoff, plus the transport's 1006 / 1001 / 1012). 4001 is retried once
 * after a token refresh. 4003, 4004, 4008, 4029 and 1009 are left to the game (stop, another room,
 * slow down, fix the client).
 */
export const RETRYABLE_CLOSE_CODES: ReadonlySet<number> = new Set([4009, 4013, 1006, 1011, 1001, 1012]);

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
