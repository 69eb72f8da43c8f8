/**
 * The per-connection frame rate of CONTRACT "WebSocket": a token bucket of `burst` frames refilled
 * at `rate` per second. Pure: the state is a few numbers kept in the connection (no allocation per
 * frame), time is the `now` the caller passes (milliseconds), and each answer is a small number the
 * relay acts on.
 *
 * - A frame that finds a token goes on at once. One that finds none **waits** in the relay (in
 *   order, with every frame behind it) and the client's socket is paused, so TCP pushes back on it;
 *   waiting frames go on as tokens come back (`releaseFrame`, timed by `waitCheck`). Bun may still
 *   hand over frames it had read before the pause: they wait too. A burst is slowed, never dropped.
 * - An **episode above the rate** begins with the first frame that has to wait and ends when the
 *   bucket is full again. Once an episode has lasted `graceMs`, a client with more than a burst of
 *   frames waiting is closed 4029 (at its next frame, or by the relay's timer): its backlog is not
 *   clearing. A client catching up after a hiccup (a backlog of up to a burst beyond the bucket), or
 *   hovering at the rate with an empty bucket, is only slowed. While paused, a client shows the
 *   relay at most what Bun had read: a flood of small frames shows a large backlog at once; one of
 *   frames so large that a read holds less than a burst of them stays paused, slowed to the rate.
 */
/** The bucket's state, kept in the connection (plain fields, no object of its own). */
export interface FrameBucket {
  /**
   * Tokens left, in thousandths of a frame (whole numbers while `now` is in whole milliseconds, so
   * refills add up exactly).
   */
  milliTokens: number;
  /** When `milliTokens` was last brought up to date (ms). */
  refilledAt: number;
  /** Start of the current episode above the rate (ms), or -1 when none. */
  overSince: number;
  /** Frames waiting for a token now. */
  waiting: number;
}

/** The limits, from config (WS_RATE_LIMIT, WS_RATE_BURST, WS_RATE_GRACE). */
export interface FrameRateLimits {
  /** Frames per second refilled. */
  readonly rate: number;
  /** Bucket size: frames that may come at once. */
  readonly burst: number;
  /** Milliseconds a client may stay above the rate before it is closed. */
  readonly graceMs: number;
}

/** What a frame means: go on now, wait (pause the client), or close 4029. */
export const RateVerdict = { Ok: 0, Wait: 1, Close: 2 } as const;
export type RateVerdict = (typeof RateVerdict)[keyof typeof RateVerdict];

export function frameRateLimits(rate: number, burst: number, graceMs: number): FrameRateLimits {
  return { rate, burst, graceMs };
}

/** A full bucket at `now`. */
export function newFrameBucket(limits: FrameRateLimits, now: number): FrameBucket {
  return { milliTokens: limits.burst * 1000, refilledAt: now, overSince: -1, waiting: 0 };
}

function refill(b: FrameBucket, limits: FrameRateLimits, now: number): void {
  const dt = now - b.refilledAt;
  if (dt > 0) {
    const t = b.milliTokens + dt * limits.rate;
    const full = limits.burst * 1000;
    if (t >= full) {
      b.milliTokens = full;
      b.overSince = -1; // a full bucket ends any episode
    } else b.milliTokens = t;
    b.refilledAt = now;
  }
}

/** Past the grace in an episode with more than a burst waiting: Close. */
function graceCheck(b: FrameBucket, limits: FrameRateLimits, now: number): RateVerdict {
  if (b.overSince < 0 || now - b.overSince < limits.graceMs) return RateVerdict.Wait;
  return b.waiting * 1000 - b.milliTokens > limits.burst * 1000 ? RateVerdict.Close : RateVerdict.Wait;
}

/** A frame from the client at `now`, with no frame waiting before it. */
export function admitFrame(b: FrameBucket, limits: FrameRateLimits, now: number): RateVerdict {
  refill(b, limits, now);
  if (b.milliTokens >= 1000) {
    b.milliTokens -= 1000;
    return RateVerdict.Ok;
  }
  if (b.overSince < 0) b.overSince = now;
  b.waiting++;
  return graceCheck(b, limits, now);
}

/** A frame from the client at `now` while others wait (it waits behind them): Wait or Close. */
export function queuedFrame(b: FrameBucket, limits: FrameRateLimits, now: number): RateVerdict {
  refill(b, limits, now);
  if (b.overSince < 0) b.overSince = now;
  b.waiting++;
  return graceCheck(b, limits, now);
}

/** Takes a token for the oldest waiting frame when there is one. */
export function releaseFrame(b: FrameBucket, limits: FrameRateLimits, now: number): boolean {
  refill(b, limits, now);
  if (b.milliTokens < 1000 || b.waiting === 0) return false;
  b.milliTokens -= 1000;
  b.waiting--;
  return true;
}

/**
 * While frames wait, at `now`: -1 to close (above the rate for the whole grace), else the
 * milliseconds until the next token (0: release now).
 */
export function waitCheck(b: FrameBucket, limits: FrameRateLimits, now: number): number {
  refill(b, limits, now);
  if (graceCheck(b, limits, now) === RateVerdict.Close) return -1;
  const t = b.milliTokens;
  if (t >= 1000) return 0;
  const untilToken = Math.ceil((1000 - t) / limits.rate);
  if (b.overSince < 0) return untilToken;
  // Wake at the grace's end too, to close a client whose backlog outlasts it.
  const untilGraceEnd = b.overSince + limits.graceMs - now;
  return Math.max(1, Math.min(untilToken, untilGraceEnd));
}
