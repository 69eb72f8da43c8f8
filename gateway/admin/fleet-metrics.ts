/**
 * Per-version and rollout gauges on the gateway's /metrics (CONTRACT "Fleet versions and
 * rollouts", issue 11 "fleetgate_rollout_*"), refreshed from Redis at each scrape — so any gateway
 * replica shows the same fleet, and a rollout's timeline can be drawn from the scraped series:
 *
 * - `fleetgate_version_nodes{version,state}`, `fleetgate_version_rooms{version}`,
 *   `fleetgate_version_players{version}` — every version on the fleet;
 * - `fleetgate_rollout_running` (0/1), `fleetgate_rollout_info{rollout,version,from,state}` (1, the
 *   latest rollout), `fleetgate_rollout_nodes{side="old"|"new"}`, `fleetgate_rollout_rooms_old`,
 *   `fleetgate_rollout_failures`, `fleetgate_rollout_canary_percent`,
 *   `fleetgate_rollout_started_seconds`, `fleetgate_rollout_finished_seconds` (unix time; 0 while running).
 */
import type { MetricsRegistry } from "../../core/metrics.ts";
import type { NodeRecord } from "../../core/types.ts";
import { summarizeVersions, type RolloutStore } from "../../model/rollouts.ts";

export interface FleetMetrics {
  /** Sets every gauge from the store and this node listing. Never throws. */
  refresh(nodes: readonly NodeRecord[]): Promise<void>;
}

export function fleetMetrics(metrics: MetricsRegistry, store: RolloutStore): FleetMetrics {
  const vNodes = metrics.gauge("fleetgate_version_nodes", "Nodes per fleet version and state.", ["version", "state"]);
  const vRooms = metrics.gauge("fleetgate_version_rooms", "Rooms on the nodes of each fleet version (not stopped).", ["version"]);
  const vPlayers = metrics.gauge("fleetgate_version_players", "Players on the nodes of each fleet version (as the nodes report).", ["version"]);
  const running = metrics.gauge("fleetgate_rollout_running", "1 while a rollout runs.");
  const info = metrics.gauge("fleetgate_rollout_info", "The latest rollout (value 1), with its id, versions and state.", ["rollout", "version", "from", "state"]);
  const sides = metrics.gauge("fleetgate_rollout_nodes", "Nodes of the latest rollout's old and new version that are not stopped.", ["side"]);
  const roomsOld = metrics.gauge("fleetgate_rollout_rooms_old", "Rooms still on old-version nodes during the latest rollout.");
  const failures = metrics.gauge("fleetgate_rollout_failures", "New nodes of the latest rollout that failed to get ready.");
  const canary = metrics.gauge("fleetgate_rollout_canary_percent", "Share of new rooms the latest rollout's version gets.");
  const started = metrics.gauge("fleetgate_rollout_started_seconds", "When the latest rollout started (unix seconds).");
  const finished = metrics.gauge("fleetgate_rollout_finished_seconds", "When the latest rollout finished (unix seconds; 0 while running).");

  return {
    async refresh(nodes) {
      try {
        const routing = await store.routing();
        vNodes.reset();
        vRooms.reset();
        vPlayers.reset();
        for (const v of summarizeVersions(routing, nodes)) {
          for (const [state, n] of Object.entries(v.byState)) vNodes.set(n, { version: v.version, state });
          vRooms.set(v.rooms, { version: v.version });
          vPlayers.set(v.players, { version: v.version });
        }
        const id = routing.rolloutId ?? (await store.list(1))[0]?.id;
        const r = id ? await store.get(id) : undefined;
        running.set(routing.rolloutId ? 1 : 0);
        if (!r) return;
        info.reset();
        info.set(1, { rollout: r.id, version: r.version, from: r.fromVersion, state: r.state });
        const active = r.state === "running" ? r.fromVersion : routing.active.version;
        const live = nodes.filter((n) => n.state !== "stopped");
        const fresh = live.filter((n) => (n.version || active) === r.version);
        const old = live.filter((n) => (n.version || active) !== r.version);
        sides.set(old.length, { side: "old" });
        sides.set(fresh.length, { side: "new" });
        roomsOld.set(old.reduce((a, n) => a + Math.max(n.rooms, n.reservedRooms), 0));
        failures.set(r.failures);
        canary.set(r.canaryPercent);
        started.set(r.startedAt / 1000);
        finished.set(r.finishedAt / 1000);
      } catch {
        /* Redis trouble: the scrape shows the last values rather than failing */
      }
    },
  };
}
