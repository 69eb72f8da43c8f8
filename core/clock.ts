/**
 * Time, injected. Code that waits, expires or schedules takes a Clock, so the 5 s / 10 s / 30 s
 * lifecycle can be tested with a FakeClock in milliseconds.
 */
export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  setInterval(fn: () => void, ms: number): TimerHandle;
  /** Resolves after `ms` of this clock's time. */
  sleep(ms: number): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
  setInterval(fn, ms) {
    const t = setInterval(fn, ms);
    return { cancel: () => clearInterval(t) };
  },
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

interface FakeTimer {
  id: number;
  at: number;
  fn: () => void;
  every: number | undefined;
}

/**
 * A clock that moves only when told. `advance(ms)` fires every timer due in that span in order of
 * due time (ties in order of creation), with `now()` equal to each timer's due time as it fires.
 */
export class FakeClock implements Clock {
  private current: number;
  private seq = 0;
  private timers: FakeTimer[] = [];

  constructor(start = 1_700_000_000_000) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    return this.add(fn, ms, undefined);
  }

  setInterval(fn: () => void, ms: number): TimerHandle {
    return this.add(fn, ms, Math.max(1, ms));
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.setTimeout(resolve, ms));
  }

  /** Number of timers still scheduled. */
  get pending(): number {
    return this.timers.length;
  }

  /** Moves time forward by `ms`, firing due timers in order. */
  advance(ms: number): void {
    if (ms < 0) throw new Error("FakeClock cannot go back in time");
    const target = this.current + ms;
    for (;;) {
      const next = this.nextDue();
      if (!next || next.at > target) break;
      this.current = next.at;
      if (next.every !== undefined) next.at += next.every;
      else this.timers = this.timers.filter((t) => t !== next);
      next.fn();
    }
    this.current = target;
  }

  /** Advances time and lets promise callbacks (e.g. after `sleep`) run between timers. */
  async advanceAsync(ms: number): Promise<void> {
    const target = this.current + ms;
    for (;;) {
      const next = this.nextDue();
      if (!next || next.at > target) break;
      this.advance(next.at - this.current);
      await flushMicrotasks();
    }
    this.current = target;
    await flushMicrotasks();
  }

  private add(fn: () => void, ms: number, every: number | undefined): TimerHandle {
    const timer: FakeTimer = { id: ++this.seq, at: this.current + Math.max(0, ms), fn, every };
    this.timers.push(timer);
    return { cancel: () => (this.timers = this.timers.filter((t) => t !== timer)) };
  }

  private nextDue(): FakeTimer | undefined {
    let best: FakeTimer | undefined;
    for (const t of this.timers) if (!best || t.at < best.at || (t.at === best.at && t.id < best.id)) best = t;
    return best;
  }
}

async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}
