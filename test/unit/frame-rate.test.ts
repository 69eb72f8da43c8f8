/**
 * The per-connection token bucket (gateway/ws/frame-rate.ts), table-driven with an injected clock
 * (core/clock.ts's fake): bursts are slowed, not closed; a sustained flood is closed after the grace.
 */
import { describe, expect, test } from "bun:test";
import { FakeClock } from "../../core/clock.ts";
import { ConfigError, loadConfig, wsRateBurstOf } from "../../core/config.ts";
import { admitFrame, frameRateLimits, newFrameBucket, queuedFrame, RateVerdict, releaseFrame, waitCheck, type FrameBucket, type FrameRateLimits } from "../../gateway/ws/frame-rate.ts";

/** `n` frames at once at `now`, as the relay sees them: once one waits, the rest queue behind it. */
function burst(b: FrameBucket, l: FrameRateLimits, now: number, n: number): { ok: number; wait: number; close: number } {
  const r = { ok: 0, wait: 0, close: 0 };
  for (let i = 0; i < n; i++) {
    const v = r.wait > 0 ? queuedFrame(b, l, now) : admitFrame(b, l, now);
    if (v === RateVerdict.Ok) r.ok++;
    else if (v === RateVerdict.Wait) r.wait++;
    else r.close++;
  }
  return r;
}

/**
 * The relay and a client, on a fake clock: the client sends `perSecond` frames evenly for
 * `seconds`, stops while paused (TCP pushback; when it resumes it sends what it owes at once, up to
 * `chunk` frames), and the relay releases waiting frames as tokens come back. Returns when the
 * client was closed (ms from the start, or -1) and how many frames reached the node.
 */
function simulate(l: FrameRateLimits, perSecond: number, seconds: number, opts: { startBurst?: number; chunk?: number } = {}): { closedAt: number; delivered: number } {
  const clock = new FakeClock(1_000_000);
  const t0 = clock.now();
  const b = newFrameBucket(l, t0);
  let waiting = 0;
  let delivered = 0;
  let owed = opts.startBurst ?? 0;
  const step = 1000 / perSecond;
  let nextAt = t0;
  const end = t0 + seconds * 1000;
  for (let now = t0; now < end; now = clock.now()) {
    // The client writes what it owes (up to a chunk) unless paused.
    while (now >= nextAt) {
      owed++;
      nextAt += step;
    }
    if (waiting === 0 && owed > 0) {
      const n = Math.min(owed, opts.chunk ?? 1_000_000);
      owed -= n;
      const r = burst(b, l, now, n);
      if (r.close > 0) return { closedAt: now - t0, delivered: delivered + r.ok };
      delivered += r.ok;
      waiting += r.wait;
    }
    if (waiting > 0) {
      while (waiting > 0 && releaseFrame(b, l, now)) {
        waiting--;
        delivered++;
      }
      if (waiting > 0) {
        const w = waitCheck(b, l, now);
        if (w === -1) return { closedAt: now - t0, delivered };
        clock.advance(w);
        continue;
      }
    }
    clock.advance(Math.max(1, Math.ceil(nextAt - now)));
  }
  return { closedAt: -1, delivered };
}

describe("frame-rate token bucket", () => {
  const l = frameRateLimits(200, 400, 5000);

  test.each([
    // [what, frames at once, go on at once, wait]
    ["within the burst", 400, 400, 0],
    ["one above the burst", 401, 400, 1],
    ["500 at once (a client catching up)", 500, 400, 100],
  ] as const)("%s: %i frames at once → %i go on, %i wait, none closed", (_what, n, ok, wait) => {
    const b = newFrameBucket(l, 0);
    expect(burst(b, l, 0, n)).toEqual({ ok, wait, close: 0 });
  });

  test("waiting frames go on one token at a time: 100 waiting at 200/s take 500 ms", () => {
    const b = newFrameBucket(l, 0);
    burst(b, l, 0, 500);
    expect(waitCheck(b, l, 0)).toBe(5);
    expect(releaseFrame(b, l, 4)).toBe(false);
    expect(releaseFrame(b, l, 5)).toBe(true);
    let released = 1;
    for (let t = 5; t <= 500; t++) while (releaseFrame(b, l, t)) released++;
    expect(released).toBe(100);
    expect(releaseFrame(b, l, 500)).toBe(false);
  });

  test("the bucket refills at the rate and never above the burst; a full bucket ends the episode", () => {
    const b = newFrameBucket(l, 0);
    burst(b, l, 0, 401);
    expect(b.overSince).toBe(0);
    // 10 s later: full again (400, not 2,000), and the episode is over.
    expect(burst(b, l, 10_000, 401)).toEqual({ ok: 400, wait: 1, close: 0 });
    expect(b.overSince).toBe(10_000);
  });

  test.each([
    // [what, limits, frames/s, seconds, initial burst, read chunk, closed?, close window (ms)]
    ["a client at 90% of the rate after a 500-frame burst", l, 180, 12, 500, 1_000_000, false, [0, 0]],
    ["a client exactly at the rate", l, 200, 12, 0, 1_000_000, false, [0, 0]],
    ["a client at 99% of the rate after a burst, in chunks of 3", l, 198, 15, 450, 3, false, [0, 0]],
    ["a burst of 500 then one frame a second", l, 1, 12, 500, 1_000_000, false, [0, 0]],
    ["a flood at 5× the rate", l, 1000, 12, 0, 1_000_000, true, [5000, 5500]],
    ["a flood at 2× the rate", l, 400, 20, 0, 1_000_000, true, [5000, 9000]],
    // A mild flood's visible backlog grows slowly: closed once it passes a burst.
    ["a flood at 1.5× the rate", l, 300, 30, 0, 1_000_000, true, [5000, 12000]],
    ["a flood read 2,000 frames at a time (a 512 KiB read of 256-byte frames)", l, 2000, 12, 0, 2000, true, [5000, 5500]],
    ["a flood with a 1 s grace", frameRateLimits(200, 400, 1000), 2000, 5, 0, 1_000_000, true, [1000, 1300]],
  ] as const)("%s", (_what, lim, rate, secs, first, chunk, closed, [from, to]) => {
    const r = simulate(lim, rate, secs, { startBurst: first, chunk });
    if (!closed) {
      expect(r.closedAt).toBe(-1);
      return;
    }
    // The grace counts from the first frame that had to wait: once the burst is spent.
    const firstWait = Math.floor((lim.burst / (rate - lim.rate)) * 1000);
    expect(r.closedAt).toBeGreaterThanOrEqual(from);
    expect(r.closedAt).toBeLessThanOrEqual(to + firstWait);
    // Slowed while it lasted: the node got at most the burst plus rate × time.
    expect(r.delivered).toBeLessThanOrEqual(lim.burst + 1 + (lim.rate * r.closedAt) / 1000);
  });

  test("the limit of what a paused client shows: a flood read 50 frames at a time is held to the rate, not closed", () => {
    // The relay sees at most one read's worth beyond the rate, so this flood looks like a client
    // at the rate with a backlog: slowed to 200/s (TCP pushes back on the rest), never closed.
    const r = simulate(l, 2000, 12, { chunk: 50 });
    expect(r.closedAt).toBe(-1);
    expect(r.delivered).toBeLessThanOrEqual(400 + 200 * 12 + 1);
    expect(r.delivered).toBeGreaterThanOrEqual(400 + 200 * 12 - 60);
  });

  test("a client whose backlog outlasts the grace is closed when the grace ends", () => {
    const b = newFrameBucket(l, 0);
    burst(b, l, 0, 400 + 10 * 200); // 10 s of frames at 200/s, at once: far more than a burst of slack
    expect(waitCheck(b, l, 0)).toBe(5);
    // Released as tokens come: at 4,999 ms still within the grace.
    for (let t = 5; t < 5000; t++) releaseFrame(b, l, t);
    expect(waitCheck(b, l, 4999)).toBeGreaterThan(0);
    expect(waitCheck(b, l, 5000)).toBe(-1);
  });

  test("past the grace, a backlog of at most a burst is only slowed; more than a burst is closed", () => {
    const b = newFrameBucket(l, 0);
    // An episode that began at 0 and, 6 s later, has an empty bucket and nothing waiting (a client
    // that kept sending at the rate)...
    Object.assign(b, { milliTokens: 0, refilledAt: 6000, overSince: 0, waiting: 0 });
    // ...400 waiting (one burst) is a catch-up: slowed.
    expect(burst(b, l, 6000, 400).close).toBe(0);
    // One more beyond the burst: closed.
    expect(queuedFrame(b, l, 6000)).toBe(RateVerdict.Close);
  });
});

describe("config of the relay's limits", () => {
  test("WS_RATE_BURST defaults to twice WS_RATE_LIMIT; WS_RATE_GRACE to 5 s", () => {
    const c = loadConfig({ WS_RATE_LIMIT: "50" });
    expect(wsRateBurstOf(c)).toBe(100);
    expect(c.wsRateGraceMs).toBe(5000);
    expect(wsRateBurstOf(loadConfig({ WS_RATE_LIMIT: "50", WS_RATE_BURST: "7" }))).toBe(7);
    expect(loadConfig({ WS_RATE_GRACE: "0.5" }).wsRateGraceMs).toBe(500);
  });

  test("a buffer that cannot hold one largest frame (with its header) is refused at start, naming both variables", () => {
    const bad = () => loadConfig({ MAX_FRAME_BYTES: String(16 * 1024 * 1024), WS_BUFFER_BYTES: String(4 * 1024 * 1024) });
    expect(bad).toThrow(ConfigError);
    try {
      bad();
    } catch (err) {
      const msg = (err as ConfigError).message;
      expect(msg).toContain("WS_BUFFER_BYTES=4194304 cannot hold one frame of MAX_FRAME_BYTES=16777216");
      expect(msg).toContain("at least 16777230");
    }
    // Exactly one frame and its 14-byte header fits; one byte less does not.
    expect(() => loadConfig({ MAX_FRAME_BYTES: "65536", WS_BUFFER_BYTES: String(65536 + 14) })).not.toThrow();
    expect(() => loadConfig({ MAX_FRAME_BYTES: "65536", WS_BUFFER_BYTES: String(65536 + 13) })).toThrow(ConfigError);
    expect(() => loadConfig({})).not.toThrow();
  });
});
