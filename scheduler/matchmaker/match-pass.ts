/**
 * One matchmaking pass: read the queues, decide with the pure `planMatches`, then expire and claim
 * in Redis. Safe to run in any number of workers at once: a claim is all-or-nothing in Lua, so a
 * ticket another worker took makes this worker's claim for that match write nothing.
 */
import type { MatchPolicy, PlannedMatch, QueuedTicket } from "../../model/tickets/match-plan.ts";
import { planMatches } from "../../model/tickets/match-plan.ts";
import type { TicketStore } from "../../model/tickets/ticket-store.ts";

export interface MatchPassResult {
  /** Rooms created by this pass. */
  rooms: number;
  /** Tickets matched by this pass. */
  matched: number;
  expired: number;
  /** Planned matches lost to another worker (or to a cancel) between read and claim. */
  lost: number;
}

export interface MatchPassOptions {
  /** Oldest tickets read per queue per pass. */
  batch: number;
  /** Shuffles the order of claims so concurrent workers mostly claim different matches. */
  random?: () => number;
  /** Called with each matched ticket's wait (ms), for metrics. */
  observeWait?: (ms: number) => void;
}

export async function runMatchPass(store: TicketStore, policy: MatchPolicy, now: number, opts: MatchPassOptions): Promise<MatchPassResult> {
  const out: MatchPassResult = { rooms: 0, matched: 0, expired: 0, lost: 0 };
  const byMode = new Map<string, string[]>();
  for (const [mode, region] of await store.queues()) byMode.set(mode, [...(byMode.get(mode) ?? []), region]);

  for (const [mode, regions] of byMode) {
    const tickets: QueuedTicket[] = [];
    for (const region of regions) {
      const q = await store.readQueue(mode, region, opts.batch);
      tickets.push(...q.tickets);
      await store.expireOrDrop(mode, region, q.dead, false, now, () => undefined);
    }
    const plan = planMatches(tickets, now, policy);

    const byId = new Map(tickets.map((t) => [t.id, t]));
    const expiredByRegion = new Map<string, string[]>();
    for (const id of plan.expired) {
      const t = byId.get(id)!;
      expiredByRegion.set(t.region, [...(expiredByRegion.get(t.region) ?? []), id]);
    }
    for (const [region, ids] of expiredByRegion) await store.expireOrDrop(mode, region, ids, true, now, (id) => byId.get(id)?.playerId);
    out.expired += plan.expired.length;

    const matches = shuffle([...plan.matches], opts.random ?? Math.random);
    const outcomes = await Promise.all(matches.map((m: PlannedMatch) => store.claim(m, now)));
    outcomes.forEach((o, i) => {
      if (o.ok) {
        out.rooms++;
        out.matched += matches[i]!.teams.reduce((s, t) => s + t.length, 0);
        if (opts.observeWait) for (const t of matches[i]!.teams.flat()) opts.observeWait(now - t.createdAt);
      } else out.lost++;
    });
  }
  return out;
}

function shuffle<T>(a: T[], random: () => number): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}
