/**
 * Waiting for the fleet to change: joins that found no free seat park here until a node event
 * arrives (a node became ready, a node was created) or a fallback delay passes. One registry
 * subscription per gateway, opened on first use, shared by every waiter.
 */
import type { Clock } from "../../core/clock.ts";
import type { NodeRegistry } from "../../model/node-registry.ts";
import type { NodeEvent } from "../../core/types.ts";

export class NodeChangeWaiter {
  private readonly waiters = new Set<() => void>();
  private subscribing: Promise<() => Promise<void>> | undefined;

  constructor(
    private readonly nodes: NodeRegistry,
    private readonly clock: Clock,
  ) {}

  /** Resolves on the next node event that may free a seat, or after `ms`, whichever comes first. */
  async next(ms: number): Promise<void> {
    // Without the subscription the wait still ends at `ms`: slower to notice, never stuck.
    await this.ensureSubscribed().catch(() => {
      this.subscribing = undefined;
    });
    await new Promise<void>((resolve) => {
      const done = () => {
        timer.cancel();
        this.waiters.delete(done);
        resolve();
      };
      const timer = this.clock.setTimeout(done, Math.max(0, ms));
      this.waiters.add(done);
    });
  }

  private onEvent(_e: NodeEvent): void {
    // A node turning ready is what waiters hope for; any other change is cheap to re-check.
    for (const w of [...this.waiters]) w();
  }

  private ensureSubscribed(): Promise<() => Promise<void>> {
    this.subscribing ??= this.nodes.subscribe((e) => this.onEvent(e));
    return this.subscribing;
  }

  async close(): Promise<void> {
    const s = this.subscribing;
    this.subscribing = undefined;
    for (const w of [...this.waiters]) w();
    if (s) await s.then((unsubscribe) => unsubscribe(), () => {});
  }
}
