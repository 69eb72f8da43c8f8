import { describe, expect, test } from "bun:test";
import { planMatches, type MatchPolicy, type QueuedTicket } from "../../model/tickets/match-plan.ts";

const T0 = 1_700_000_000_000;
const policy: MatchPolicy = { sessionSize: 8, minPartialSessionSize: 2, flushWaitMs: 10_000, regionFallbackWaitMs: 5_000, ticketTtlMs: 60_000 };

let n = 0;
function tickets(count: number, region: string, at: number, fallbacks?: string[]): QueuedTicket[] {
  return Array.from({ length: count }, () => {
    const id = `t${String(++n).padStart(4, "0")}`;
    return { id, playerId: `p-${id}`, mode: "ctf", region, createdAt: at, ...(fallbacks ? { fallbacks } : {}) };
  });
}
const members = (m: { teams: readonly (readonly QueuedTicket[])[] }) => m.teams.flat().map((t) => t.id).sort();

describe("matchmaking by region", () => {
  test("full rooms inside a region first, at once", () => {
    const us = tickets(8, "us", T0, ["eu"]);
    const plan = planMatches([...us, ...tickets(3, "eu", T0, [])], T0, policy);
    expect(plan.matches.map((m) => [m.region, m.crossRegion])).toEqual([["us", false]]);
    expect(members(plan.matches[0]!)).toEqual(us.map((t) => t.id).sort());
  });

  test("a ticket joins a fallback region's players only after REGION_FALLBACK_WAIT, and the room is in that region", () => {
    const us = tickets(1, "us", T0, ["eu"]);
    const eu = tickets(7, "eu", T0 + 4_000, []);
    expect(planMatches([...us, ...eu], T0 + 4_999, policy).matches).toEqual([]);
    // At the wait the us ticket accepts eu; the eu tickets (no fallbacks, and waiting only 1 s) are
    // in eu's pool as it is their own region.
    const late = planMatches([...us, ...eu], T0 + 5_000, policy);
    expect(late.matches.length).toBe(1);
    expect(late.matches[0]!.region).toBe("eu");
    expect(late.matches[0]!.crossRegion).toBe(true);
    expect(members(late.matches[0]!)).toEqual([...us, ...eu].map((t) => t.id).sort());
  });

  test("never a region beyond MAX_REGION_RTT: a ticket whose fallbacks exclude eu never joins eu's players", () => {
    const us = tickets(1, "us", T0, []);
    const eu = tickets(7, "eu", T0, []);
    const plan = planMatches([...us, ...eu], T0 + 20_000, policy);
    // eu forms its own partial room after FLUSH_WAIT; the us ticket stays queued.
    expect(plan.matches.map((m) => [m.region, m.kind, m.teams.flat().length])).toEqual([["eu", "partial", 7]]);
    expect(members(plan.matches[0]!)).not.toContain(us[0]!.id);
  });

  test("two regions' tickets meet in a third region both accept", () => {
    const a = tickets(4, "us", T0, ["ca"]);
    const b = tickets(4, "sa", T0, ["ca", "us"]);
    const plan = planMatches([...a, ...b], T0 + 5_000, policy);
    expect(plan.matches.length).toBe(1);
    // us is listed first (its oldest ticket is first): sa accepts us too, so the room is in us.
    expect(plan.matches[0]!.region).toBe("us");
    expect(plan.matches[0]!.fallbacks).toEqual(["ca"]);
  });

  test("tickets sent without latencies accept any region after the wait (as before regions were measured)", () => {
    const us = tickets(5, "us", T0);
    const eu = tickets(3, "eu", T0 + 1);
    const plan = planMatches([...us, ...eu], T0 + 5_001, policy);
    expect(plan.matches.map((m) => [m.region, m.kind, m.crossRegion])).toEqual([["us", "full", true]]);
    expect(plan.matches[0]!.fallbacks).toBeUndefined();
  });

  test("a matched room's fallbacks are the regions all its measured tickets accept", () => {
    const x = tickets(4, "us", T0, ["eu", "ap"]);
    const y = tickets(4, "us", T0, ["ap"]);
    const plan = planMatches([...x, ...y], T0, policy);
    expect(plan.matches[0]!.region).toBe("us");
    expect(plan.matches[0]!.fallbacks).toEqual(["ap"]);
  });
});
