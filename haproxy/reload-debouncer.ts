/**
 * Coalesces bursts of registry changes into one reload. The first request opens a window of
 * `windowMs`; requests inside it join the same run (the window is not extended, so a steady
 * stream of changes still reloads every `windowMs`, never starves). Runs never overlap: requests
 * that arrive during a run are collected and open the next window when it ends.
 */
import type { Clock, TimerHandle } from "../core/clock.ts";

export class ReloadDebouncer {
  private timer: TimerHandle | undefined;
  private running = false;
  private stopped = false;
  private reasons: string[] = [];
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly clock: Clock,
    private readonly windowMs: number,
    /** Does the work; its errors are the caller's to log (they do not stop later runs). */
    private readonly run: (reasons: readonly string[]) => Promise<void>,
  ) {}

  /** Asks for a run; `reason` is passed along (deduplicated) for logs. */
  request(reason: string): void {
    if (this.stopped) return;
    if (!this.reasons.includes(reason)) this.reasons.push(reason);
    if (!this.timer && !this.running) this.arm();
  }

  /** Whether a run is waiting for its window or in flight. */
  get busy(): boolean {
    return this.timer !== undefined || this.running;
  }

  /** Resolves once nothing is waiting or running. */
  idle(): Promise<void> {
    if (!this.busy) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Cancels a waiting run; a run in flight finishes. */
  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = undefined;
    this.reasons = [];
    if (!this.running) this.settle();
  }

  private arm(): void {
    this.timer = this.clock.setTimeout(() => void this.fire(), this.windowMs);
  }

  private async fire(): Promise<void> {
    this.timer = undefined;
    const reasons = this.reasons;
    this.reasons = [];
    this.running = true;
    try {
      await this.run(reasons);
    } catch {
      /* the run reports its own failures */
    } finally {
      this.running = false;
    }
    if (!this.stopped && this.reasons.length > 0) this.arm();
    else this.settle();
  }

  private settle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
