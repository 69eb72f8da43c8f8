/** Region choice by measured round trip (CONTRACT "Regions": `GET /v1/regions` → pingUrl per region). */
import { FleetgateError } from "./errors.ts";
import type { Requester } from "./requester.ts";
import type { Latencies, RegionInfo, RegionLatency } from "./types.ts";

export interface MeasureOptions {
  /** Round trips per region; the best one counts (the first also opens the connection). Default 3. */
  samples?: number;
  /** One sample's timeout. Default 2000 ms. */
  timeoutMs?: number;
}

/** Sorts measured regions best first; unreachable ones (Infinity) last, ties by name. Pure. */
export function rankRegions(measured: RegionLatency[]): RegionLatency[] {
  return [...measured].sort((a, b) => a.rttMs - b.rttMs || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The `latencies` map joins, rooms and tickets take: reachable regions only, whole ms. Pure. */
export function latencyMap(measured: RegionLatency[]): Latencies {
  const out: Latencies = {};
  for (const m of measured) if (Number.isFinite(m.rttMs)) out[m.name] = Math.max(0, Math.round(m.rttMs));
  return out;
}

export class Regions {
  /** Set by `choose()`: the best region, used by joins, rooms and tickets that name none. */
  preferred: string | undefined;
  /** Set by `choose()`. */
  latencies: Latencies | undefined;

  constructor(private readonly api: Requester) {}

  /** `GET /v1/regions`. */
  async list(): Promise<RegionInfo[]> {
    return (await this.api.request<{ regions: RegionInfo[] }>("GET", "/v1/regions")).regions;
  }

  /** Measures the round trip to every region's pingUrl, best first. */
  async measure(opts: MeasureOptions = {}): Promise<RegionLatency[]> {
    const regions = await this.list();
    const samples = Math.max(1, opts.samples ?? 3);
    const timeoutMs = opts.timeoutMs ?? 2000;
    const measured = await Promise.all(
      regions.map(async (r) => {
        const got: number[] = [];
        if (!r.pingUrl) return { name: r.name, rttMs: Infinity, samples: got };
        const url = new URL(r.pingUrl, `${this.api.baseUrl}/`).toString();
        for (let i = 0; i < samples; i++) {
          const rtt = await this.ping(url, timeoutMs);
          if (rtt !== undefined) got.push(rtt);
        }
        return { name: r.name, rttMs: got.length ? Math.min(...got) : Infinity, samples: got };
      }),
    );
    return rankRegions(measured);
  }

  /** Measures, remembers and returns the best reachable region (FleetgateError NO_REGIONS when none answers). */
  async choose(opts: MeasureOptions = {}): Promise<{ region: string; latencies: Latencies; measured: RegionLatency[] }> {
    const measured = await this.measure(opts);
    const best = measured.find((m) => Number.isFinite(m.rttMs));
    if (!best) throw new FleetgateError(0, "NO_REGIONS", "no region answered its ping");
    this.preferred = best.name;
    this.latencies = latencyMap(measured);
    return { region: best.name, latencies: this.latencies, measured };
  }

  private async ping(url: string, timeoutMs: number): Promise<number | undefined> {
    // A fresh query string defeats caches without the `cache` option (not every fetch has it).
    const u = `${url}${url.includes("?") ? "&" : "?"}t=${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
    const t0 = performance.now();
    try {
      const res = await this.api.fetchImpl(u, { method: "GET", signal: AbortSignal.timeout(timeoutMs) });
      await res.arrayBuffer().catch(() => undefined);
      return res.ok ? performance.now() - t0 : undefined;
    } catch {
      return undefined;
    }
  }
}
