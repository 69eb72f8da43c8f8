/** The reload debouncer on a fake clock: bursts coalesce, runs never overlap, the window is not extended. */
import { describe, expect, test } from "bun:test";
import { FakeClock } from "../../core/clock.ts";
import { ReloadDebouncer } from "../../haproxy/reload-debouncer.ts";

function setup(windowMs = 250) {
  const clock = new FakeClock();
  const runs: { at: number; reasons: readonly string[] }[] = [];
  let release: (() => void) | undefined;
  let hold = false;
  const d = new ReloadDebouncer(clock, windowMs, async (reasons) => {
    runs.push({ at: clock.now(), reasons });
    if (hold) await new Promise<void>((r) => (release = r));
  });
  return {
    clock,
    runs,
    d,
    holdRuns: () => (hold = true),
    finishRun: async () => {
      hold = false;
      release?.();
      await Promise.resolve();
      await Promise.resolve();
    },
  };
}

describe("ReloadDebouncer", () => {
  test("a burst inside the window is one run, with every reason once", async () => {
    const { clock, runs, d } = setup();
    d.request("a");
    clock.advance(100);
    d.request("b");
    d.request("a");
    clock.advance(149);
    expect(runs).toHaveLength(0);
    await clock.advanceAsync(1);
    expect(runs).toEqual([{ at: clock.now(), reasons: ["a", "b"] }]);
    await d.idle();
    expect(d.busy).toBe(false);
  });

  test("the window is not extended by later requests: a steady stream still runs every window", async () => {
    const { clock, runs, d } = setup(250);
    for (let t = 0; t < 1000; t += 50) {
      d.request(`r${t}`);
      await clock.advanceAsync(50);
    }
    expect(runs.length).toBeGreaterThanOrEqual(3);
    expect(runs.length).toBeLessThanOrEqual(4);
  });

  test("requests during a run are collected into exactly one next run, after it ends", async () => {
    const { clock, runs, d, holdRuns, finishRun } = setup(100);
    holdRuns();
    d.request("first");
    await clock.advanceAsync(100);
    expect(runs).toHaveLength(1);
    d.request("x");
    d.request("y");
    await clock.advanceAsync(500);
    expect(runs).toHaveLength(1); // no overlap while the first is in flight
    await finishRun();
    await clock.advanceAsync(100);
    expect(runs).toHaveLength(2);
    expect(runs[1]!.reasons).toEqual(["x", "y"]);
  });

  test("a zero window runs on the next timer turn", async () => {
    const { clock, runs, d } = setup(0);
    d.request("now");
    await clock.advanceAsync(0);
    expect(runs).toHaveLength(1);
  });

  test("stop cancels a waiting run and settles idle()", async () => {
    const { clock, runs, d } = setup();
    d.request("a");
    const idle = d.idle();
    d.stop();
    await idle;
    await clock.advanceAsync(1000);
    expect(runs).toHaveLength(0);
    d.request("after stop");
    await clock.advanceAsync(1000);
    expect(runs).toHaveLength(0);
  });

  test("a run that throws does not stop later runs", async () => {
    const clock = new FakeClock();
    let calls = 0;
    const d = new ReloadDebouncer(clock, 10, async () => {
      calls++;
      throw new Error("boom");
    });
    d.request("a");
    await clock.advanceAsync(10);
    d.request("b");
    await clock.advanceAsync(10);
    expect(calls).toBe(2);
  });
});
