import { describe, expect, test } from "bun:test";
import { FakeClock } from "../../core/clock.ts";
import { balanceTeams, planMatches, type MatchPolicy, type QueuedTicket } from "../../model/tickets/match-plan.ts";

const policy: MatchPolicy = { sessionSize: 8, minPartialSessionSize: 2, flushWaitMs: 10_000, regionFallbackWaitMs: 5_000, ticketTtlMs: 60_000 };

/** n tickets in `region`, created `agoMs` before `now`, one ms apart (t0 oldest). */
function tickets(n: number, now: number, agoMs: number, region = "eu", mode = "ctf", tag = region, rating?: (i: number) => number): QueuedTicket[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `${tag}-${String(i).padStart(3, "0")}`,
    playerId: `p-${tag}-${i}`,
    mode,
    region,
    createdAt: now - agoMs + i,
    ...(rating ? { rating: rating(i) } : {}),
  }));
}

const sizes = (plan: ReturnType<typeof planMatches>) => plan.matches.map((m) => m.teams.map((t) => t.length));

describe("planMatches", () => {
  const clock = new FakeClock();
  const now = clock.now();

  const cases: { name: string; input: QueuedTicket[]; want: { full: number; partial: number; expired: number; teamSizes: number[][]; cross?: boolean[] } }[] = [
    { name: "7 fresh tickets: nothing yet", input: tickets(7, now, 100), want: { full: 0, partial: 0, expired: 0, teamSizes: [] } },
    { name: "8 fresh tickets: one full 4v4 room", input: tickets(8, now, 100), want: { full: 1, partial: 0, expired: 0, teamSizes: [[4, 4]] } },
    { name: "17 fresh tickets: two full rooms, one left", input: tickets(17, now, 100), want: { full: 2, partial: 0, expired: 0, teamSizes: [[4, 4], [4, 4]] } },
    { name: "3 tickets past FLUSH_WAIT: partial 2v1", input: tickets(3, now, 10_000), want: { full: 0, partial: 1, expired: 0, teamSizes: [[2, 1]] } },
    { name: "3 tickets just before FLUSH_WAIT: nothing", input: tickets(3, now, 9_999), want: { full: 0, partial: 0, expired: 0, teamSizes: [] } },
    { name: "1 ticket past FLUSH_WAIT: below the partial minimum", input: tickets(1, now, 20_000), want: { full: 0, partial: 0, expired: 0, teamSizes: [] } },
    { name: "ticket at TICKET_TTL expires", input: tickets(1, now, 60_000), want: { full: 0, partial: 0, expired: 1, teamSizes: [] } },
    {
      name: "4 eu + 4 us fresh: region affinity keeps them apart",
      input: [...tickets(4, now, 100, "eu"), ...tickets(4, now, 100, "us")],
      want: { full: 0, partial: 0, expired: 0, teamSizes: [] },
    },
    {
      name: "4 eu + 4 us after REGION_FALLBACK_WAIT: one cross-region full room",
      input: [...tickets(4, now, 5_010, "eu"), ...tickets(4, now, 6_000, "us")],
      want: { full: 1, partial: 0, expired: 0, teamSizes: [[4, 4]], cross: [true] },
    },
    {
      name: "4 eu waited + 4 us fresh: the fresh ones do not accept eu yet",
      input: [...tickets(4, now, 5_000, "eu"), ...tickets(4, now, 100, "us")],
      want: { full: 0, partial: 0, expired: 0, teamSizes: [] },
    },
    {
      name: "8 eu + 3 us past FLUSH_WAIT: full eu room and a partial us room",
      input: [...tickets(8, now, 100, "eu"), ...tickets(3, now, 10_500, "us")],
      want: { full: 1, partial: 1, expired: 0, teamSizes: [[4, 4], [2, 1]], cross: [false, false] },
    },
    {
      name: "1 eu + 1 us past FLUSH_WAIT: a cross-region partial room",
      input: [...tickets(1, now, 11_000, "eu"), ...tickets(1, now, 12_000, "us")],
      want: { full: 0, partial: 1, expired: 0, teamSizes: [[1, 1]], cross: [true] },
    },
    {
      name: "modes never mix",
      input: [...tickets(4, now, 6_000, "eu", "ctf"), ...tickets(4, now, 6_000, "eu", "dm", "eu2")],
      want: { full: 0, partial: 0, expired: 0, teamSizes: [] },
    },
  ];

  for (const c of cases) {
    test(c.name, () => {
      const plan = planMatches(c.input, now, policy);
      expect(plan.matches.filter((m) => m.kind === "full").length).toBe(c.want.full);
      expect(plan.matches.filter((m) => m.kind === "partial").length).toBe(c.want.partial);
      expect(plan.expired.length).toBe(c.want.expired);
      expect(sizes(plan)).toEqual(c.want.teamSizes);
      if (c.want.cross) expect(plan.matches.map((m) => m.crossRegion)).toEqual(c.want.cross);
      // Never a ticket twice, never over capacity.
      const ids = plan.matches.flatMap((m) => m.teams.flat().map((t) => t.id));
      expect(new Set(ids).size).toBe(ids.length);
      for (const m of plan.matches) expect(m.teams.flat().length).toBeLessThanOrEqual(policy.sessionSize);
    });
  }

  test("oldest tickets go first and the input order does not matter", () => {
    const input = tickets(12, now, 100);
    const plan = planMatches([...input].reverse(), now, policy);
    expect(plan.matches[0]!.teams.flat().map((t) => t.id).sort()).toEqual(input.slice(0, 8).map((t) => t.id));
  });

  test("a player with two tickets is matched once", () => {
    const input = tickets(8, now, 100);
    const dup = { ...input[0]!, id: "dup" };
    const plan = planMatches([...input, dup], now, policy);
    const players = plan.matches.flatMap((m) => m.teams.flat().map((t) => t.playerId));
    expect(new Set(players).size).toBe(players.length);
  });

  test("time moving on a FakeClock turns waiting tickets into a partial room, then expiry", () => {
    const c = new FakeClock();
    const input = tickets(3, c.now(), 0);
    expect(planMatches(input, c.now(), policy).matches).toHaveLength(0);
    c.advance(10_002);
    expect(planMatches(input, c.now(), policy).matches.map((m) => m.kind)).toEqual(["partial"]);
    c.advance(50_000);
    expect(planMatches(input, c.now(), policy).expired).toHaveLength(3);
  });
});

describe("balanceTeams", () => {
  const now = 1_700_000_000_000;
  const sum = (ts: readonly QueuedTicket[]) => ts.reduce((s, t) => s + (t.rating ?? 0), 0);

  const rated: { name: string; ratings: number[]; maxDiff: number }[] = [
    { name: "one strong player is balanced by weaker ones", ratings: [3000, 1000, 1000, 1000, 1000, 1000, 1000, 1000], maxDiff: 2000 },
    { name: "sorted ratings split evenly", ratings: [1800, 1700, 1600, 1500, 1400, 1300, 1200, 1100], maxDiff: 0 },
    { name: "pairs of equal ratings", ratings: [1500, 1500, 1200, 1200, 900, 900, 600, 600], maxDiff: 0 },
    { name: "odd partial room", ratings: [1000, 1200, 1400], maxDiff: 800 },
    // The oldest is the strongest: the best split puts them alone, in the smaller team.
    { name: "odd partial room, oldest strongest", ratings: [2218, 1935, 1652], maxDiff: 1369 },
    { name: "odd room of 7, oldest strongest", ratings: [3000, 1000, 1000, 1000, 1000, 500, 500], maxDiff: 0 },
  ];
  for (const c of rated) {
    test(c.name, () => {
      const group = tickets(c.ratings.length, now, 100, "eu", "ctf", "r", (i) => c.ratings[i]!);
      const [a, b] = balanceTeams(group);
      expect(Math.abs(a!.length - b!.length)).toBeLessThanOrEqual(1);
      expect(Math.abs(sum(a!) - sum(b!))).toBeLessThanOrEqual(c.maxDiff);
    });
  }

  test("without ratings players alternate by arrival", () => {
    const group = tickets(8, now, 100);
    const [a, b] = balanceTeams(group);
    expect(a!.map((t) => t.id)).toEqual(["eu-000", "eu-002", "eu-004", "eu-006"]);
    expect(b!.map((t) => t.id)).toEqual(["eu-001", "eu-003", "eu-005", "eu-007"]);
  });

  test("more than 16 rated players use a snake draft and stay balanced", () => {
    const group = tickets(20, now, 100, "eu", "ctf", "s", (i) => 1000 + i * 10);
    const [a, b] = balanceTeams(group);
    expect(a!.length).toBe(10);
    expect(b!.length).toBe(10);
    expect(Math.abs(sum(a!) - sum(b!))).toBeLessThanOrEqual(100);
  });
});
