import { describe, expect, test } from "bun:test";
import { FakeClock } from "../../core/clock.ts";

describe("FakeClock", () => {
  test("fires timers in due order with now() at each due time", () => {
    const c = new FakeClock(1000);
    const seen: Array<[string, number]> = [];
    c.setTimeout(() => seen.push(["b", c.now()]), 20);
    c.setTimeout(() => seen.push(["a", c.now()]), 10);
    c.setTimeout(() => seen.push(["c", c.now()]), 20);
    c.advance(25);
    expect(seen).toEqual([
      ["a", 1010],
      ["b", 1020],
      ["c", 1020],
    ]);
    expect(c.now()).toBe(1025);
    expect(c.pending).toBe(0);
  });

  test("intervals repeat and can be cancelled; timers set inside timers fire in the same advance", () => {
    const c = new FakeClock(0);
    const ticks: number[] = [];
    const h = c.setInterval(() => ticks.push(c.now()), 5);
    c.setTimeout(() => c.setTimeout(() => ticks.push(-c.now()), 1), 7);
    c.advance(16);
    expect(ticks).toEqual([5, 10, -8, 15].sort((a, b) => Math.abs(a) - Math.abs(b)));
    h.cancel();
    c.advance(100);
    expect(ticks.length).toBe(4);
  });

  test("cancelled timeouts never fire; time never goes back", () => {
    const c = new FakeClock(0);
    let fired = false;
    c.setTimeout(() => (fired = true), 5).cancel();
    c.advance(10);
    expect(fired).toBe(false);
    expect(() => c.advance(-1)).toThrow();
  });

  test("sleep resolves with advanceAsync", async () => {
    const c = new FakeClock(0);
    let done = false;
    void c.sleep(1000).then(() => (done = true));
    await c.advanceAsync(999);
    expect(done).toBe(false);
    await c.advanceAsync(1);
    expect(done).toBe(true);
  });
});
