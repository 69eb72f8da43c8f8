/**
 * `GET /v1/regions` and `GET /v1/ping` (CONTRACT "Regions").
 *
 * - `/v1/regions` → `{regions: [{name, pingUrl, nodes, capacity, players}]}`: every region the
 *   deployment runs (REGION, the DOCKER_HOSTS regions, the regions of its nodes and gateways). A
 *   region's `pingUrl` is `/v1/ping` on the public URL of a live gateway replica of that region
 *   (GATEWAY_REGION), so a client measures its round trip to that region; `null` when no gateway
 *   serves it (the round trip there cannot be measured, so it is never a fallback).
 * - `/v1/ping` → 204 at once, no body, no auth, CORS-open (a browser SDK measures other regions'
 *   gateways from its own origin).
 */
import { Elysia } from "elysia";
import type { Config } from "../../core/config.ts";
import type { GatewayRecord, NodeRecord } from "../../core/types.ts";
import { homeRegion, knownRegions, rankRegions, type RegionRanking } from "../../model/placement/region-choice.ts";
import type { GatewayDeps } from "../deps.ts";
import { summarizeCapacity } from "./capacity.ts";

export const PING_PATH = "/v1/ping";

/** One row of `GET /v1/regions`. */
export interface RegionSummary {
  name: string;
  /** GET answers 204 at once; null when no live gateway serves the region. */
  pingUrl: string | null;
  /** Nodes of the region that are not stopped. */
  nodes: number;
  /** Player capacity of its ready nodes. */
  capacity: number;
  /** Players on its live nodes. */
  players: number;
}

/**
 * The HTTP base URL clients reach a gateway at: PUBLIC_URL (a `ws(s)://` edge becomes `http(s)://`),
 * else its own listen address (a wildcard host as 127.0.0.1).
 */
export function gatewayHttpUrl(config: Pick<Config, "publicUrl" | "host">, port: number): string {
  if (config.publicUrl) return config.publicUrl.replace(/^ws(s?):\/\//, "http$1://").replace(/\/+$/, "");
  const host = config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host.includes(":") ? `[${config.host}]` : config.host;
  return `http://${host}:${port}`;
}

/**
 * Regions as `GET /v1/regions` shows them. Pure. `selfId` (this replica) is preferred as its
 * region's ping target, so a client that asks one gateway measures that one; others by id.
 */
export function regionSummaries(
  config: Pick<Config, "region" | "dockerHostRegions">,
  nodes: readonly NodeRecord[],
  gateways: readonly GatewayRecord[],
  selfId?: string,
): RegionSummary[] {
  const names = knownRegions(config, nodes.map((n) => n.region));
  for (const g of gateways) if (g.region) names.add(g.region);
  return [...names].sort().map((name) => {
    const mine = nodes.filter((n) => n.region === name);
    const cap = summarizeCapacity(mine, {});
    const serving = gateways.filter((g) => g.region === name && g.publicUrl).sort((a, b) => (a.id === selfId ? -1 : b.id === selfId ? 1 : a.id.localeCompare(b.id)));
    const gw = serving[0];
    return {
      name,
      pingUrl: gw ? `${gw.publicUrl!.replace(/\/+$/, "")}${PING_PATH}` : null,
      nodes: mine.filter((n) => n.state !== "stopped").length,
      capacity: cap.capacity,
      players: cap.players,
    };
  });
}

const PING_HEADERS = {
  "access-control-allow-origin": "*",
  "timing-allow-origin": "*",
  "cache-control": "no-store",
};

export function regionsRoutes(deps: Pick<GatewayDeps, "config" | "nodes" | "gateways" | "clock" | "gatewayId">) {
  return new Elysia({ name: "regionsRoutes" })
    .get(PING_PATH, () => new Response(null, { status: 204, headers: PING_HEADERS }), {
      detail: { summary: "Round-trip probe: 204 at once (a region's pingUrl)", tags: ["regions"] },
    })
    .options(PING_PATH, () => new Response(null, { status: 204, headers: { ...PING_HEADERS, "access-control-allow-methods": "GET" } }), { detail: { hide: true } })
    .get(
      "/v1/regions",
      async () => {
        const [nodes, gateways] = await Promise.all([deps.nodes.list(), deps.gateways.list(deps.clock.now())]);
        return { regions: regionSummaries(deps.config, nodes, gateways, deps.gatewayId) };
      },
      { detail: { summary: "Regions: name, ping URL, nodes, capacity, players", tags: ["regions"] } },
    );
}

/** How long a gateway reuses the list of regions its nodes are in, ms (a join must not list the fleet twice). */
const KNOWN_REGIONS_TTL_MS = 1000;

/** What a join, room or ticket request says about regions. */
export interface RegionRequest {
  /** `region` from the body. */
  requested?: string | undefined;
  /** The token's `region` claim. */
  claim?: string | undefined;
  /** `latencies` from the body (checked by the route's schema, gateway/http/schemas.ts). */
  latencies?: Readonly<Record<string, number>> | undefined;
}

/**
 * Ranks a request's regions against the regions the deployment runs (config + the nodes' regions,
 * cached for a second). One per gateway process.
 */
export class RegionRanker {
  private cached: { at: number; regions: Set<string> } | undefined;

  /** Without `nodes`, only the configured regions count (DOCKER_HOSTS, REGION). */
  constructor(private readonly deps: Pick<GatewayDeps, "config" | "clock"> & { nodes?: GatewayDeps["nodes"] | undefined }) {}

  async known(): Promise<Set<string>> {
    const now = this.deps.clock.now();
    if (!this.cached || now - this.cached.at > KNOWN_REGIONS_TTL_MS) {
      const nodes = this.deps.nodes ? await this.deps.nodes.list() : [];
      this.cached = { at: now, regions: knownRegions(this.deps.config, nodes.map((n) => n.region)) };
    }
    return this.cached.regions;
  }

  async rank(req: RegionRequest): Promise<RegionRanking> {
    const c = this.deps.config;
    return rankRegions({ ...req, known: await this.known(), home: homeRegion(c), maxRttMs: c.maxRegionRttMs });
  }
}
