/**
 * The scheduler's Prometheus metrics: jobs by queue and outcome, job durations, nodes by state,
 * scaling decisions and health checks. Served on SCHEDULER_METRICS_PORT by startScheduler.
 */
import type { Counter, Gauge, Histogram, MetricsRegistry } from "../core/metrics.ts";
import { NODE_STATES, type NodeRecord } from "../core/types.ts";

export interface SchedulerMetrics {
  registry: MetricsRegistry;
  /** type (job name: scale-up, drain, wake, reap-node, reap-sweep, autoscale, health), outcome: completed | failed | retried */
  jobs: Counter;
  /** type; seconds from processing start to finish. */
  jobDuration: Histogram;
  /** state */
  nodes: Gauge;
  /** action: up | down | none */
  decisions: Counter;
  /** outcome: ok | failed */
  healthChecks: Counter;
  /** Seats on ready nodes (the capacity /v1/capacity reports), as last listed by this scheduler. */
  capacity: Gauge;
  /** version ("" shown as "active"): live nodes (not stopped) by fleet version, for rollouts. */
  nodesByVersion: Gauge;
  /** Sets the nodes-by-state gauge from a registry listing. */
  observeNodes(nodes: readonly NodeRecord[]): void;
}

export function createSchedulerMetrics(registry: MetricsRegistry): SchedulerMetrics {
  const nodes = registry.gauge("fleetgate_scheduler_nodes", "Nodes in the registry by state, as last listed by this scheduler.", ["state"]);
  const capacity = registry.gauge("fleetgate_scheduler_capacity", "Seats on ready nodes (the fleet's capacity), as last listed by this scheduler.");
  const nodesByVersion = registry.gauge("fleetgate_scheduler_nodes_by_version", "Live (not stopped) nodes by fleet version, as last listed by this scheduler.", ["version"]);
  return {
    registry,
    jobs: registry.counter("fleetgate_scheduler_jobs_total", "Scheduler jobs processed by this replica, by type and outcome.", ["type", "outcome"]),
    jobDuration: registry.histogram("fleetgate_scheduler_job_duration_seconds", "Time a job spent processing, by type.", [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1200], ["type"]),
    nodes,
    decisions: registry.counter("fleetgate_scheduler_scale_decisions_total", "Autoscaler decisions, by action.", ["action"]),
    healthChecks: registry.counter("fleetgate_scheduler_health_checks_total", "Node health probes, by outcome.", ["outcome"]),
    capacity,
    nodesByVersion,
    observeNodes(list) {
      const counts = Object.fromEntries(NODE_STATES.map((s) => [s, 0])) as Record<string, number>;
      for (const n of list) counts[n.state] = (counts[n.state] ?? 0) + 1;
      for (const [state, v] of Object.entries(counts)) nodes.set(v, { state });
      capacity.set(list.reduce((a, n) => a + (n.state === "ready" ? n.capacity : 0), 0));
      // Versions come and go: clear the old label sets before setting the current ones.
      nodesByVersion.reset();
      for (const n of list) if (n.state !== "stopped") nodesByVersion.inc({ version: n.version || "active" });
    },
  };
}
