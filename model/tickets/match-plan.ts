/**
 * The matching decision, pure: queued tickets and `now` in, matches and expiries out. No I/O and no
 * clock of its own, so it is table-tested with fixed times (test/unit/matchmaking-match.test.ts);
 * the worker (./worker.ts) reads the queues, calls this, and claims each match atomically in Redis.
 *
 * Order of decisions in one pass, per mode:
 *  1. tickets older than TICKET_TTL expire;
 *  2. full rooms of SESSION_SIZE inside each region, oldest tickets first;
 *  3. tickets that have waited REGION_FALLBACK_WAIT accept their fallback regions (the measured ones
 *     within MAX_REGION_RTT; a ticket sent without latencies accepts any region): full rooms in
 *     each region from its own tickets and the tickets that accept it, regions in the order of
 *     their oldest waiting ticket;
 *  4. a region whose oldest ticket has waited FLUSH_WAIT forms a partial room of all its tickets
 *     (at least MIN_PARTIAL_SESSION_SIZE);
 *  5. the same across regions for what is left of the tickets that accept fallbacks.
 * Every room is split into two teams whose sizes differ by at most one, balanced by rating when
 * every ticket has one, else alternating by arrival.
 */

/** A ticket as the matcher sees it. */
export interface QueuedTicket {
  readonly id: string;
  readonly playerId: string;
  readonly mode: string;
  readonly region: string;
  /** Enqueue time, ms since the epoch. */
  readonly createdAt: number;
  /** Optional skill rating used to balance teams. */
  readonly rating?: number | undefined;
  /**
   * Regions the ticket accepts after REGION_FALLBACK_WAIT besides its own (region-choice.ts: the
   * measured ones within MAX_REGION_RTT, nearest first). Undefined: sent without latencies, any region.
   */
  readonly fallbacks?: readonly string[] | undefined;
}

/** The timings and sizes that drive matching (from Config). */
export interface MatchPolicy {
  /** Players in a full room (SESSION_SIZE). */
  readonly sessionSize: number;
  /** Smallest partial room (MIN_PARTIAL_SESSION_SIZE). */
  readonly minPartialSessionSize: number;
  /** Wait before a partial room is formed, ms (FLUSH_WAIT). */
  readonly flushWaitMs: number;
  /** Wait before a ticket accepts other regions, ms (REGION_FALLBACK_WAIT). */
  readonly regionFallbackWaitMs: number;
  /** Wait before an unmatched ticket expires, ms (TICKET_TTL). */
  readonly ticketTtlMs: number;
}

/** One room to create: its tickets split into teams (team 0 and team 1). */
export interface PlannedMatch {
  readonly mode: string;
  /** Region the room is placed in: its tickets' own region, or the fallback region they share. */
  readonly region: string;
  /**
   * Other regions every ticket of the room accepts (in the first ticket's order): where the room may
   * go when `region` has no node for it. Undefined when no ticket sent latencies.
   */
  readonly fallbacks?: readonly string[] | undefined;
  readonly kind: "full" | "partial";
  /** True when the room holds tickets of more than one region. */
  readonly crossRegion: boolean;
  /** The teams, each a list of tickets (oldest first). */
  readonly teams: readonly (readonly QueuedTicket[])[];
}

export interface MatchPlan {
  readonly matches: readonly PlannedMatch[];
  /** Ids of tickets that reached TICKET_TTL unmatched. */
  readonly expired: readonly string[];
}

/** Sorts oldest first; ties by id so the result never depends on input order. */
function byArrival(a: QueuedTicket, b: QueuedTicket): number {
  return a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/**
 * Plans every match that can be made from `tickets` at `now`. Tickets of several modes may be
 * given; modes never mix. A player with more than one ticket is matched at most once (later
 * tickets are left queued).
 */
export function planMatches(tickets: readonly QueuedTicket[], now: number, policy: MatchPolicy): MatchPlan {
  const expired: string[] = [];
  const live: QueuedTicket[] = [];
  const seenPlayers = new Set<string>();
  for (const t of [...tickets].sort(byArrival)) {
    if (now - t.createdAt >= policy.ticketTtlMs) expired.push(t.id);
    else if (!seenPlayers.has(t.playerId)) {
      seenPlayers.add(t.playerId);
      live.push(t);
    }
  }

  const matches: PlannedMatch[] = [];
  const byMode = groupBy(live, (t) => t.mode);
  for (const mode of [...byMode.keys()].sort()) matches.push(...planMode(byMode.get(mode)!, now, policy));
  return { matches, expired };
}

function planMode(tickets: QueuedTicket[], now: number, policy: MatchPolicy): PlannedMatch[] {
  const size = policy.sessionSize;
  const out: PlannedMatch[] = [];
  const taken = new Set<string>();
  const left = (list: readonly QueuedTicket[]) => list.filter((t) => !taken.has(t.id));
  const emit = (group: readonly QueuedTicket[], kind: "full" | "partial", region?: string) => {
    for (const t of group) taken.add(t.id);
    out.push(makeMatch(group, kind, region));
  };

  const byRegion = groupBy(tickets, (t) => t.region);
  const regions = [...byRegion.keys()].sort();

  // 2. Full rooms inside each region.
  for (const r of regions) {
    const list = byRegion.get(r)!;
    for (let i = 0; i + size <= list.length; i += size) emit(list.slice(i, i + size), "full");
  }

  // 3. Full rooms across regions from tickets that have waited long enough to accept their fallbacks.
  const fallbackReady = (t: QueuedTicket) => now - t.createdAt >= policy.regionFallbackWaitMs;
  const ready = tickets.filter(fallbackReady);
  const accepts = (t: QueuedTicket, r: string) => t.region === r || t.fallbacks === undefined || t.fallbacks.includes(r);
  // Regions in the order of their oldest waiting ticket (its own region first, then its fallbacks).
  const crossRegions = [...new Set(ready.flatMap((t) => [t.region, ...(t.fallbacks ?? [])]))];
  // A region's pool: its own tickets (waiting or not: it is their first choice) and the tickets that
  // have waited and accept it.
  const poolOf = (r: string) => left(tickets).filter((t) => t.region === r || (fallbackReady(t) && accepts(t, r)));
  for (const r of crossRegions) {
    let pool = poolOf(r);
    while (pool.length >= size) {
      emit(pool.slice(0, size), "full", r);
      pool = pool.slice(size);
    }
  }

  // 4. Partial rooms inside a region once its oldest ticket has waited FLUSH_WAIT.
  for (const r of regions) {
    const list = left(byRegion.get(r)!);
    if (list.length >= policy.minPartialSessionSize && now - list[0]!.createdAt >= policy.flushWaitMs) emit(list, "partial");
  }

  // 5. Partial rooms across regions from what remains of the tickets that accept fallbacks.
  for (const r of crossRegions) {
    const pool = poolOf(r);
    if (pool.length >= policy.minPartialSessionSize && now - pool[0]!.createdAt >= policy.flushWaitMs) emit(pool, "partial", r);
  }
  return out;
}

function makeMatch(group: readonly QueuedTicket[], kind: "full" | "partial", region?: string): PlannedMatch {
  const first = group[0]!;
  const where = region ?? first.region;
  // Regions every ticket that sent latencies accepts (its own or a fallback), besides `where`.
  const measured = group.filter((t) => t.fallbacks !== undefined);
  const fallbacks =
    measured.length === 0
      ? undefined
      : [measured[0]!.region, ...measured[0]!.fallbacks!].filter((r) => r !== where && measured.every((t) => t.region === r || t.fallbacks!.includes(r)));
  return {
    mode: first.mode,
    region: where,
    kind,
    crossRegion: group.some((t) => t.region !== where),
    teams: balanceTeams(group),
    ...(fallbacks ? { fallbacks } : {}),
  };
}

/** Beyond this many players the exhaustive split (2^(n-1) subsets) gives way to a snake draft. */
const EXHAUSTIVE_LIMIT = 16;

/**
 * Splits players into two teams whose sizes differ by at most one. With a rating on every ticket
 * the split minimises the difference of rating sums (exhaustive up to 16 players, snake draft
 * above); otherwise players alternate by arrival (1st, 3rd, 5th... vs 2nd, 4th, 6th...).
 * Each team is returned oldest first; team 0 holds the oldest ticket.
 */
export function balanceTeams(group: readonly QueuedTicket[]): QueuedTicket[][] {
  const sorted = [...group].sort(byArrival);
  const rated = sorted.length > 0 && sorted.every((t) => typeof t.rating === "number" && Number.isFinite(t.rating));
  if (!rated) return [sorted.filter((_, i) => i % 2 === 0), sorted.filter((_, i) => i % 2 === 1)];

  const rating = (t: QueuedTicket) => t.rating as number;
  const n = sorted.length;
  if (n > EXHAUSTIVE_LIMIT) {
    // Snake draft over ratings: A B B A A B B A ...
    const teams: QueuedTicket[][] = [[], []];
    [...sorted].sort((a, b) => rating(b) - rating(a) || byArrival(a, b)).forEach((t, i) => teams[i % 4 === 0 || i % 4 === 3 ? 0 : 1]!.push(t));
    return teams.map((team) => team.sort(byArrival));
  }

  // Team 0 always holds sorted[0] (halves the search). With an odd count it may be the larger or
  // the smaller team: requiring the oldest player in the larger one would miss the best split.
  const sizes = new Set([Math.ceil(n / 2), Math.floor(n / 2)]);
  const total = sorted.reduce((s, t) => s + rating(t), 0);
  let best = -1;
  let bestDiff = Infinity;
  for (let mask = 1; mask < 1 << n; mask += 2) {
    if (!sizes.has(popcount(mask))) continue;
    let sumA = 0;
    for (let i = 0; i < n; i++) if (mask & (1 << i)) sumA += rating(sorted[i]!);
    const diff = Math.abs(total - 2 * sumA);
    if (diff < bestDiff) {
      bestDiff = diff;
      best = mask;
    }
  }
  return [sorted.filter((_, i) => best & (1 << i)), sorted.filter((_, i) => !(best & (1 << i)))];
}

function popcount(x: number): number {
  let c = 0;
  for (let v = x; v; v &= v - 1) c++;
  return c;
}

function groupBy<T>(list: readonly T[], key: (t: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const t of list) {
    const k = key(t);
    const arr = m.get(k);
    if (arr) arr.push(t);
    else m.set(k, [t]);
  }
  return m;
}
