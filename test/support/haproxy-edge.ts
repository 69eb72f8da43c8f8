/**
 * Helpers for tests that run a real HAProxy: a temp dir and random ports per edge, a config that
 * points there, and readers for the stats page. Every HAProxy started through `testEdgeConfig`
 * lives under its own temp dir; `HaproxyControl.stop()` ends its master and every worker.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { testConfig, type Config } from "../../core/config.ts";
import { realClock } from "../../core/clock.ts";
import type { GatewayRegistry } from "../../model/gateway-registry.ts";
import { silentLogger } from "../../core/log.ts";
import { MetricsRegistry } from "../../core/metrics.ts";
import { RedisNodeRegistry } from "../../model/node-registry.ts";
import { HaproxyControl } from "../../haproxy/control.ts";
import { startTemplater, type Templater } from "../../haproxy/sync.ts";
import { freePort, type TestRedis } from "./services.ts";

export const STATS_USER = "ops";
export const STATS_PASSWORD = "stats-test-pass";

export interface TestEdgeConfig {
  dir: string;
  config: Config;
  /** Removes the temp dir (stop HAProxy first). */
  cleanup(): Promise<void>;
}

/** A config whose HAProxy lives in a fresh temp dir on random 127.0.0.1 ports. */
export async function testEdgeConfig(overrides: Partial<Config> = {}): Promise<TestEdgeConfig> {
  // Short path: unix socket paths are limited to 108 bytes.
  const dir = await mkdtemp(join(tmpdir(), "fg-hx-"));
  const config = testConfig({
    haproxyConfig: join(dir, "haproxy.cfg"),
    haproxyBind: "127.0.0.1",
    haproxyPort: freePort(),
    haproxyStatsPort: freePort(),
    haproxyStatsUser: STATS_USER,
    haproxyStatsPassword: STATS_PASSWORD,
    haproxyConnRate: 100_000,
    haproxyMode: "child",
    haproxyReloadTimeoutMs: 10_000,
    templaterMetricsPort: 0,
    templaterDebounceMs: 50,
    templaterResyncMs: 60_000,
    healthCheckIntervalMs: 200,
    gatewayHeartbeatMs: 200,
    dataDir: dir,
    ...overrides,
  });
  return { dir, config, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** One row of the stats page's CSV export. */
export interface StatsRow {
  pxname: string;
  svname: string;
  status: string;
  weight: string;
  [column: string]: string;
}

export function basicAuth(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
}

/** GET /stats;csv with the given credentials (none: no Authorization header). */
export async function fetchStats(port: number, auth?: { user: string; password: string }, format: "csv" | "html" = "csv"): Promise<Response> {
  return fetch(`http://127.0.0.1:${port}/stats${format === "csv" ? ";csv" : ""}`, {
    headers: auth ? { authorization: basicAuth(auth.user, auth.password) } : {},
    signal: AbortSignal.timeout(2000),
  });
}

export function parseStatsCsv(text: string): StatsRow[] {
  const lines = text.split("\n").filter((l) => l.trim());
  const header = lines.shift()?.replace(/^#\s*/, "").split(",") ?? [];
  return lines.map((l) => {
    const f = l.split(",");
    return Object.fromEntries(header.map((h, i) => [h, f[i] ?? ""])) as StatsRow;
  });
}

/** Servers of one backend on the stats page (no FRONTEND/BACKEND summary rows). */
export async function statsServers(port: number, backend: string, auth = { user: STATS_USER, password: STATS_PASSWORD }): Promise<StatsRow[]> {
  const res = await fetchStats(port, auth);
  if (!res.ok) throw new Error(`stats page answered ${res.status}`);
  return parseStatsCsv(await res.text()).filter((r) => r.pxname === backend && r.svname !== "FRONTEND" && r.svname !== "BACKEND");
}

/** Whether a process is alive. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * A templater on a test edge with HAProxy as its child, following `gateways` and the prefix's
 * node registry. Stop it with {@link stopEdgeTemplater}.
 */
export function startEdgeTemplater(t: TestRedis, edge: TestEdgeConfig, gateways: GatewayRegistry): Promise<Templater> {
  return startTemplater({
    config: edge.config,
    keys: t.keys,
    redis: t.redis,
    newRedis: () => t.connect(),
    nodes: new RedisNodeRegistry(t.redis, t.keys, () => t.connect()),
    gateways,
    clock: realClock,
    log: silentLogger,
    metrics: new MetricsRegistry(),
    haproxyMode: "child",
  });
}

/** Stops a templater and the HAProxy it started. */
export async function stopEdgeTemplater(templater: Templater | undefined): Promise<void> {
  await templater?.stop();
  if (templater?.control instanceof HaproxyControl) await templater.control.stop();
}
