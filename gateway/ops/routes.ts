/** `/health`, `/ready`, `/v1/servers`, `/v1/capacity`, `/metrics`, `/docs` (CONTRACT "Operations"); `/openapi.json` is the openapi plugin's (gateway/app.ts). */
import { Elysia } from "elysia";
import type { GatewayDeps } from "../deps.ts";
import { publicNode } from "../../core/types.ts";
import { capacitySnapshot, summarizeCapacity } from "./capacity.ts";
import { usedRooms } from "../../model/seat-budget.ts";
import { docsPage } from "./docs-page.ts";
import { RedisRolloutStore, defaultVersion, summarizeVersions } from "../../model/rollouts.ts";
import { fleetMetrics } from "../admin/fleet-metrics.ts";

/** How long /ready waits for Redis before calling the replica not ready. */
const READY_PING_MS = 1000;

export function opsRoutes(deps: GatewayDeps, hooks: { beforeMetrics?: () => void } = {}) {
  const rooms = deps.metrics.gauge("fleetgate_rooms", "Rooms placed on live nodes (fleet-wide)");
  const players = deps.metrics.gauge("fleetgate_players", "Players seated on live nodes (fleet-wide)");
  const docs = docsPage();
  // Fleet versions: per-version counts on /v1/capacity, per-version and rollout gauges on /metrics.
  const versions = new RedisRolloutStore(deps.redis, deps.keys, defaultVersion(deps.config.nodeImage));
  const versionGauges = fleetMetrics(deps.metrics, versions);
  return new Elysia({ name: "opsRoutes" })
    .get("/health", () => ({ status: "ok" }), { detail: { summary: "Liveness", tags: ["ops"] } })
    .get(
      "/ready",
      async ({ set }) => {
        const ok = await Promise.race([deps.redis.ping().then((r) => r === "PONG", () => false), Bun.sleep(READY_PING_MS).then(() => false)]);
        if (ok) return { status: "ready" };
        set.status = 503;
        return { error: { code: "NOT_READY", message: "Redis does not answer" } };
      },
      { detail: { summary: "Readiness: 200 only when Redis answers", tags: ["ops"] } },
    )
    .get("/v1/servers", async () => (await deps.nodes.list()).map(publicNode), { detail: { summary: "Game-server nodes", tags: ["ops"] } })
    .get(
      "/v1/capacity",
      async () => {
        const [snap, routing, nodes] = await Promise.all([capacitySnapshot(deps), versions.routing(), deps.nodes.list()]);
        const byVersion = Object.fromEntries(summarizeVersions(routing, nodes).map((v) => [v.version, { state: v.state, image: v.image, nodes: v.nodes, rooms: v.rooms, players: v.players }]));
        return { ...snap, versions: byVersion };
      },
      { detail: { summary: "Fleet capacity (with a per-version breakdown)", tags: ["ops"] } },
    )
    .get(
      "/metrics",
      async () => {
        hooks.beforeMetrics?.();
        const nodes = await deps.nodes.list().catch(() => []);
        // The seat budget's numbers, as /v1/capacity and the autoscaler count them.
        const live = nodes.filter((n) => n.state === "ready" || n.state === "draining" || n.state === "unhealthy");
        rooms.set(live.reduce((a, n) => a + usedRooms(n), 0));
        players.set(summarizeCapacity(nodes, {}).players);
        await versionGauges.refresh(nodes);
        return new Response(await deps.metrics.render(), { headers: { "content-type": deps.metrics.contentType } });
      },
      { detail: { summary: "Prometheus metrics", tags: ["ops"] } },
    )
    .get("/docs", () => new Response(docs, { headers: { "content-type": "text/html; charset=utf-8" } }), { detail: { hide: true } });
}
