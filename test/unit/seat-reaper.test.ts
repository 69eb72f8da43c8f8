/** The seat reaper's pure decision: which recorded absences free a seat now (issue 6). */
import { describe, expect, test } from "bun:test";
import { FakeClock } from "../../core/clock.ts";
import type { RoomState } from "../../core/types.ts";
import { parseAbsenceMember } from "../../model/rooms/presence.ts";
import { planAbsentSeats, type Absence } from "../../model/rooms/seat-reaper.ts";
import { processReapSweep } from "../../scheduler/jobs/reap.ts";
import { memoryScheduler } from "../support/scheduler-harness.ts";

const GRACE = 60_000;

describe("planAbsentSeats", () => {
  const clock = new FakeClock();
  const t0 = clock.now();
  // [case, room state (null: no record), absent for (ms) at decision time, expected]
  const cases: [string, RoomState | null, number, "reap" | "drop" | "keep"][] = [
    ["waiting, just under the grace", "waiting", GRACE - 1, "keep"],
    ["waiting, exactly the grace", "waiting", GRACE, "reap"],
    ["waiting, long gone", "waiting", 10 * GRACE, "reap"],
    ["starting (a matched room nobody joined)", "starting", GRACE, "reap"],
    ["starting, inside the grace", "starting", 1_000, "keep"],
    ["active: kept for reconnection", "active", 100 * GRACE, "keep"],
    ["ending: the match is over, reaped", "ending", GRACE, "reap"],
    ["ending, inside the grace", "ending", 0, "keep"],
    ["completed: stale, dropped", "completed", 0, "drop"],
    ["no record: stale, dropped", null, 5 * GRACE, "drop"],
  ];

  for (const [name, state, absentFor, want] of cases) {
    test(name, () => {
      const c = new FakeClock(t0);
      const a: Absence = { code: "ROOM01", playerId: "p1", since: c.now() };
      c.advance(absentFor);
      const plan = planAbsentSeats([a], () => state, c.now(), GRACE);
      const got = plan.reap.length ? "reap" : plan.drop.length ? "drop" : "keep";
      expect(got).toBe(want);
      expect(plan.reap.length + plan.drop.length).toBeLessThanOrEqual(1);
    });
  }

  test("decides per room and per player, in input order", () => {
    const c = new FakeClock(t0);
    const states: Record<string, RoomState> = { AAAA: "waiting", BBBB: "active", CCCC: "completed" };
    const old: Absence[] = [
      { code: "AAAA", playerId: "x", since: c.now() },
      { code: "BBBB", playerId: "y", since: c.now() },
      { code: "CCCC", playerId: "z", since: c.now() },
    ];
    c.advance(GRACE / 2);
    const young: Absence = { code: "AAAA", playerId: "w", since: c.now() };
    c.advance(GRACE / 2);
    const plan = planAbsentSeats([...old, young], (code) => states[code] ?? null, c.now(), GRACE);
    expect(plan.reap).toEqual([old[0]!]);
    expect(plan.drop).toEqual([old[2]!]);
  });
});

describe("parseAbsenceMember", () => {
  test("splits at the first '|' (codes never contain one)", () => {
    expect(parseAbsenceMember("ABCD|p1")).toEqual({ code: "ABCD", playerId: "p1" });
    expect(parseAbsenceMember("ABCD|a|b")).toEqual({ code: "ABCD", playerId: "a|b" });
    expect(parseAbsenceMember("ABCD")).toBeUndefined();
    expect(parseAbsenceMember("|p")).toBeUndefined();
    expect(parseAbsenceMember("ABCD|")).toBeUndefined();
  });
});

describe("the scheduler's reap sweep runs the seat reaper", () => {
  test("each sweep calls it with the sweep's now; a failing one does not fail the sweep", async () => {
    const m = memoryScheduler();
    const calls: number[] = [];
    const ok = await processReapSweep({ ...m.ctx, sweepAbsentSeats: async (now) => void calls.push(now) });
    expect(calls).toEqual([m.clock.now()]);
    expect(ok.seatsSwept).toBe(true);
    const failing = await processReapSweep({
      ...m.ctx,
      sweepAbsentSeats: async () => {
        throw new Error("redis down");
      },
    });
    expect(failing.seatsSwept).toBe(true);
    expect((await processReapSweep({ ...m.ctx, sweepAbsentSeats: undefined })).seatsSwept).toBe(false);
  });
});
