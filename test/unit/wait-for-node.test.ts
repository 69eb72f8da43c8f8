/** The one wait-for-a-node loop and the one "do we need a node?" decision (model/placement/wait-for-node.ts). */
import { describe, expect, test } from "bun:test";
import { FakeClock } from "../../core/clock.ts";
import type { NodeState } from "../../core/types.ts";
import { decideCapacity, waitForNode, type CapacityAsk } from "../../model/placement/wait-for-node.ts";

const fleet = (...states: NodeState[]) => states.map((state) => ({ state }));

describe("decideCapacity", () => {
  const cases: { name: string; input: Parameters<typeof decideCapacity>[0]; want: CapacityAsk }[] = [
    { name: "the room's node stopped: wake it", input: { fleet: fleet("stopped", "ready"), roomNode: { id: "n1", state: "stopped" }, maxServers: 1, fallbacksLater: false }, want: { kind: "wake", nodeId: "n1" } },
    { name: "the room's node is being woken: wait", input: { fleet: fleet("starting"), roomNode: { id: "n1", state: "starting" }, maxServers: 1, fallbacksLater: false }, want: { kind: "wait" } },
    { name: "below MAX_SERVERS: start a node", input: { fleet: fleet("ready"), maxServers: 2, fallbacksLater: false }, want: { kind: "scale-up" } },
    { name: "stopped nodes do not count against MAX_SERVERS", input: { fleet: fleet("ready", "stopped"), maxServers: 2, fallbacksLater: false }, want: { kind: "scale-up" } },
    { name: "at MAX_SERVERS, one starting: wait for it", input: { fleet: fleet("ready", "starting"), maxServers: 2, fallbacksLater: false }, want: { kind: "wait" } },
    { name: "at MAX_SERVERS, a fallback region opens later: wait", input: { fleet: fleet("ready", "draining"), maxServers: 2, fallbacksLater: true }, want: { kind: "wait" } },
    { name: "at MAX_SERVERS, nothing on its way: give up", input: { fleet: fleet("ready", "draining"), maxServers: 2, fallbacksLater: false }, want: { kind: "give-up" } },
    { name: "the room's lost node does not block a new one", input: { fleet: fleet("unhealthy"), roomNode: { id: "n1", state: "unhealthy" }, maxServers: 2, fallbacksLater: false }, want: { kind: "scale-up" } },
  ];
  for (const c of cases) test(c.name, () => expect(decideCapacity(c.input)).toEqual(c.want));
});

describe("waitForNode", () => {
  /** Runs the loop on a fake clock: `nextChange` sleeps on it; the test advances it. */
  async function run<T>(clock: FakeClock, opts: Omit<Parameters<typeof waitForNode<T>>[0], "clock" | "nextChange">, stepMs = 50, maxMs = 20_000) {
    let done = false;
    const p = waitForNode<T>({ clock, nextChange: (ms) => clock.sleep(ms), ...opts }).finally(() => (done = true));
    for (let t = 0; t < maxMs && !done; t += stepMs) {
      // Let the loop run until it sleeps (a timer is pending) before moving time.
      for (let i = 0; i < 100 && !done && clock.pending === 0; i++) await new Promise((r) => setTimeout(r, 0));
      if (!done) await clock.advanceAsync(stepMs);
    }
    return p;
  }

  test("placed at once: no capacity asked", async () => {
    let asked = 0;
    const got = await run(new FakeClock(), { timeoutMs: 1000, attempt: async () => "node-a", askForCapacity: async () => (asked++, "wait") });
    expect(got).toBe("node-a");
    expect(asked).toBe(0);
  });

  test("no room: asks once, re-checks every RECHECK_MS, returns when a node has room", async () => {
    const clock = new FakeClock();
    const t0 = clock.now();
    const tries: number[] = [];
    let asked = 0;
    const got = await run(clock, {
      timeoutMs: 10_000,
      recheckMs: 500,
      attempt: async (elapsed) => (tries.push(elapsed), clock.now() - t0 >= 2_000 ? "node-b" : undefined),
      askForCapacity: async () => (asked++, "wait"),
    });
    expect(got).toBe("node-b");
    expect(asked).toBe(1);
    expect(tries).toEqual([0, 500, 1000, 1500, 2000]);
  });

  test("bounded: undefined at the deadline", async () => {
    const clock = new FakeClock();
    const t0 = clock.now();
    const got = await run(clock, { timeoutMs: 1_200, recheckMs: 500, attempt: async () => undefined, askForCapacity: async () => "wait" });
    expect(got).toBeUndefined();
    expect(clock.now() - t0).toBeGreaterThanOrEqual(1_200);
    expect(clock.now() - t0).toBeLessThan(1_300);
  });

  test("give-up ends the wait at once", async () => {
    const clock = new FakeClock();
    const t0 = clock.now();
    const got = await run(clock, { timeoutMs: 10_000, attempt: async () => undefined, askForCapacity: async () => "give-up" });
    expect(got).toBeUndefined();
    expect(clock.now() - t0).toBeLessThan(100);
  });

  test("wakes when the fallback regions open, not only on the re-check", async () => {
    const clock = new FakeClock();
    const tries: number[] = [];
    await run(clock, { timeoutMs: 3_000, recheckMs: 1_000, wakeAtElapsedMs: 1_500, attempt: async (e) => (tries.push(e), e >= 1_500 ? "fallback" : undefined), askForCapacity: async () => "wait" });
    expect(tries).toEqual([0, 1000, 1500]);
  });
});
