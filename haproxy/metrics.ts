/** The templater's Prometheus metrics, registered on the process's registry. */
import type { Counter, Gauge, Histogram, MetricsRegistry } from "../core/metrics.ts";

export interface TemplaterMetrics {
  /** fleetgate_haproxy_reloads_total{outcome}: ok | invalid | failed | render_error. */
  reloads: Counter;
  reloadSeconds: Histogram;
  /** fleetgate_haproxy_runtime_commands_total{state,outcome}: runtime-API server state changes. */
  runtimeCommands: Counter;
  /** fleetgate_haproxy_servers{backend}: servers in the live config. */
  servers: Gauge;
  /** fleetgate_haproxy_skipped_entries: registry entries left out of the config (bad id/host/port). */
  skipped: Gauge;
  /** fleetgate_haproxy_last_reload_timestamp_seconds{outcome}. */
  lastReload: Gauge;
  /** fleetgate_templater_resyncs_total: periodic full re-renders. */
  resyncs: Counter;
}

export function templaterMetrics(m: MetricsRegistry): TemplaterMetrics {
  return {
    reloads: m.counter("fleetgate_haproxy_reloads_total", "HAProxy config swaps by outcome (ok, invalid, failed, render_error)", ["outcome"]),
    reloadSeconds: m.histogram("fleetgate_haproxy_reload_duration_seconds", "Validate + swap + confirmed reload time"),
    runtimeCommands: m.counter("fleetgate_haproxy_runtime_commands_total", "Runtime API server state changes by target state and outcome", ["state", "outcome"]),
    servers: m.gauge("fleetgate_haproxy_servers", "Servers in the live HAProxy config, by backend", ["backend"]),
    skipped: m.gauge("fleetgate_haproxy_skipped_entries", "Registry entries left out of the config because an id, host or port was unsafe"),
    lastReload: m.gauge("fleetgate_haproxy_last_reload_timestamp_seconds", "When the last reload attempt of each outcome finished", ["outcome"]),
    resyncs: m.counter("fleetgate_templater_resyncs_total", "Periodic full re-renders"),
  };
}
