/**
 * Which region a room, session or matched room goes to (CONTRACT "Regions"). Pure: no I/O, `now`
 * and the waits come in as arguments.
 *
 * A player names a region (`region` in the body, else the token's `region` claim) and may send the
 * round trips the client measured to each region's ping URL (`latencies: {<region>: <ms>}`):
 *
 * - the first choice is the region the body names, else the one with the lowest measured round
 *   trip, else the token's region, else the deployment's REGION;
 * - the fallbacks are the other measured regions with a round trip ≤ MAX_REGION_RTT, nearest first;
 *   a region the player did not measure is never a fallback (its round trip is unknown, so it
 *   cannot be shown to be within MAX_REGION_RTT);
 * - the fallbacks are open only once the room has waited REGION_FALLBACK_WAIT for the first choice.
 *
 * Regions nobody runs (not a DOCKER_HOSTS region, not REGION, no node there) are ignored, so a
 * client sending a stale or made-up name is placed at home rather than waiting for a region that
 * can never get a node.
 */

import type { NodeRecord } from "../../core/types.ts";
import { usedSeats } from "../seat-budget.ts";

/** Largest round trip a client may report, ms: anything above is a typo or a dead link. */
export const MAX_REPORTED_RTT_MS = 60_000;

/** The most regions a client may report round trips for. */
export const MAX_REPORTED_REGIONS = 32;

const NAME_RE = /^[A-Za-z0-9_.-]{1,32}$/;

/** A player's ranked regions: the first choice, then the fallbacks in order. */
export interface RegionRanking {
  /** First choice. */
  readonly best: string;
  /** Fallback regions (never `best`), nearest first, each within MAX_REGION_RTT. */
  readonly fallbacks: readonly string[];
}

export interface RankInput {
  /** `region` from the request body (a choice the player made), if any. */
  readonly requested?: string | undefined;
  /** The token's `region` claim ("" = none). */
  readonly claim?: string | undefined;
  /** Measured round trips, ms, by region. */
  readonly latencies?: Readonly<Record<string, number>> | undefined;
  /** Regions the deployment runs (DOCKER_HOSTS regions, REGION, regions of registered nodes). */
  readonly known: ReadonlySet<string>;
  /** REGION: the home of players who name none the deployment runs. */
  readonly home: string;
  /** MAX_REGION_RTT, ms. */
  readonly maxRttMs: number;
}

/** Ranks a player's regions (see the module comment). */
export function rankRegions(input: RankInput): RegionRanking {
  const known = (r: string | undefined): r is string => r !== undefined && r !== "" && input.known.has(r);
  const measured = Object.entries(input.latencies ?? {})
    .filter(([r, ms]) => known(r) && Number.isFinite(ms) && ms >= 0)
    .sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const best = known(input.requested) ? input.requested : measured[0]?.[0] ?? (known(input.claim) ? input.claim : input.home);
  const fallbacks = measured.filter(([r, ms]) => r !== best && ms <= input.maxRttMs).map(([r]) => r);
  return { best, fallbacks };
}

/** The regions a room may be placed in now, in order: the first choice, then (after the wait) the fallbacks. */
export function openRegions(ranking: RegionRanking, waitedMs: number, fallbackWaitMs: number): string[] {
  return waitedMs >= fallbackWaitMs ? [ranking.best, ...ranking.fallbacks] : [ranking.best];
}

/**
 * The region to place a room in now: the first open region with room for it (`hasRoom`), or
 * undefined — then the caller asks for a node in `ranking.best` and waits.
 */
export function chooseRegion(ranking: RegionRanking, hasRoom: (region: string) => boolean, waitedMs: number, fallbackWaitMs: number): string | undefined {
  return openRegions(ranking, waitedMs, fallbackWaitMs).find(hasRoom);
}

/** A ranking as one string for a Redis hash field or job payload: `best,fallback1,fallback2`. */
export function encodeRanking(r: RegionRanking): string {
  return [r.best, ...r.fallbacks].join(",");
}

/** The inverse of {@link encodeRanking}; undefined for "" or a malformed value. */
export function decodeRanking(s: string | undefined | null): RegionRanking | undefined {
  if (!s) return undefined;
  const parts = s.split(",").filter((p) => NAME_RE.test(p));
  const [best, ...fallbacks] = parts;
  return best ? { best, fallbacks } : undefined;
}

/**
 * Checks a client's `latencies` field: an object of at most MAX_REPORTED_REGIONS region names to
 * round trips in ms (0..MAX_REPORTED_RTT_MS). Returns the problem, or undefined when valid.
 */
export function latenciesProblem(v: unknown): string | undefined {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return "latencies must be an object {<region>: <ms>}";
  const entries = Object.entries(v as Record<string, unknown>);
  if (entries.length > MAX_REPORTED_REGIONS) return `latencies may name at most ${MAX_REPORTED_REGIONS} regions`;
  for (const [k, ms] of entries) {
    if (!NAME_RE.test(k)) return `latencies: region ${JSON.stringify(k.slice(0, 40))} must be 1-32 of [A-Za-z0-9_.-]`;
    if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0 || ms > MAX_REPORTED_RTT_MS) return `latencies.${k} must be a number of ms in 0..${MAX_REPORTED_RTT_MS}`;
  }
  return undefined;
}

/**
 * The regions a deployment can start nodes in and has nodes in: the DOCKER_HOSTS regions (an entry
 * without one is in REGION, so by default just REGION) and the regions of its registered nodes.
 */
export function knownRegions(config: { region: string; dockerHostRegions: readonly string[] }, nodeRegions: Iterable<string> = []): Set<string> {
  const out = new Set<string>(config.dockerHostRegions.length > 0 ? config.dockerHostRegions : [config.region]);
  for (const r of nodeRegions) if (r) out.add(r);
  return out;
}

/**
 * Where players who name no region the deployment runs go: REGION when nodes can be started there,
 * else the first DOCKER_HOSTS region (every host named a region and none is REGION).
 */
export function homeRegion(config: { region: string; dockerHostRegions: readonly string[] }): string {
  return config.dockerHostRegions.length === 0 || config.dockerHostRegions.includes(config.region) ? config.region : config.dockerHostRegions[0]!;
}

/**
 * The region an autoscaler scale-up goes to: of the regions nodes can be started in (the DOCKER_HOSTS
 * regions, else REGION), the one whose ready nodes are the most used (used seats ÷ capacity); ties
 * go to the home region, then by name. Joins and room connects ask for their own region themselves.
 */
export function scaleUpRegion(
  nodes: readonly Pick<NodeRecord, "state" | "region" | "capacity" | "players" | "reservedSeats">[],
  config: { region: string; dockerHostRegions: readonly string[] },
): string {
  const home = homeRegion(config);
  const regions = [...new Set(config.dockerHostRegions.length > 0 ? config.dockerHostRegions : [config.region])];
  if (regions.length <= 1) return regions[0] ?? home;
  const load = (r: string) => {
    let cap = 0;
    let used = 0;
    for (const n of nodes) {
      if (n.region !== r || n.state !== "ready") continue;
      cap += n.capacity;
      used += usedSeats(n);
    }
    return cap > 0 ? used / cap : 0;
  };
  return regions
    .map((r) => ({ r, u: load(r) }))
    .sort((a, b) => b.u - a.u || (a.r === home ? -1 : b.r === home ? 1 : a.r < b.r ? -1 : 1))[0]!.r;
}
