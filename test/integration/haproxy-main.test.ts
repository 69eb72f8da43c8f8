/**
 * `npm run templater` (haproxy/main.ts) as a process: a clear message when haproxy is missing; a
 * generated stats password that is printed and kept under DATA_DIR; in daemon mode HAProxy
 * outlives the templater and the next one attaches to its master socket instead of starting
 * another; in child mode it stops with the templater.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join, relative } from "node:path";
import { realClock } from "../../core/clock.ts";
import { silentLogger } from "../../core/log.ts";
import { HaproxyControl } from "../../haproxy/control.ts";
import { edgePaths } from "../../haproxy/render.ts";
import { statsPasswordFile } from "../../haproxy/stats-password.ts";
import { fetchStats, pidAlive, testEdgeConfig, type TestEdgeConfig } from "../support/haproxy-edge.ts";
import { REDIS_URL, captureOutput, freePort, need, testRedis, waitFor, type TestRedis } from "../support/services.ts";

const ROOT = join(import.meta.dir, "..", "..");
const BUN = process.execPath;

interface Run {
  proc: ReturnType<typeof Bun.spawn>;
  output(): string;
}

function runTemplater(env: Record<string, string>): Run {
  const proc = Bun.spawn([BUN, "haproxy/main.ts"], { cwd: ROOT, env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env }, stdout: "pipe", stderr: "pipe" });
  return { proc, output: captureOutput(proc).output };
}

test("exits with a clear message when haproxy is not installed", async () => {
  const run = runTemplater({ HAPROXY_BIN: "/nonexistent/haproxy", REDIS_URL });
  expect(await run.proc.exited).toBe(1);
  await Bun.sleep(50);
  expect(run.output()).toContain("HAProxy is not installed");
});

test("exits with every configuration problem at once", async () => {
  const run = runTemplater({ HAPROXY_PORT: "nope", TEMPLATER_DEBOUNCE: "-1", REDIS_URL });
  expect(await run.proc.exited).toBe(1);
  await Bun.sleep(50);
  expect(run.output()).toContain("HAPROXY_PORT");
  expect(run.output()).toContain("TEMPLATER_DEBOUNCE");
});

describe.skipIf(!(need("haproxy") && need("redis")))("the templater process", () => {
  let t: TestRedis;
  let edge: TestEdgeConfig;
  let env: Record<string, string>;
  let control: HaproxyControl;
  const masters = new Set<number>();

  beforeAll(async () => {
    t = testRedis("hxmain");
    edge = await testEdgeConfig();
    env = {
      REDIS_URL,
      REDIS_PREFIX: t.prefix,
      HAPROXY_CONFIG: edge.config.haproxyConfig,
      HAPROXY_BIND: "127.0.0.1",
      HAPROXY_PORT: String(edge.config.haproxyPort),
      HAPROXY_STATS_PORT: String(edge.config.haproxyStatsPort),
      TEMPLATER_METRICS_PORT: String(freePort()),
      DATA_DIR: edge.dir,
      HAPROXY_MODE: "daemon",
      LOG_LEVEL: "info",
    };
    control = new HaproxyControl({ bin: "haproxy", paths: edgePaths(edge.config.haproxyConfig), clock: realClock, log: silentLogger, reloadTimeoutMs: 5000, mode: "daemon" });
  });

  afterAll(async () => {
    await control?.stop();
    for (const pid of masters) if (pidAlive(pid)) process.kill(pid, "SIGKILL");
    await t?.cleanup();
    await edge?.cleanup();
  });

  test("daemon mode: HAProxy outlives the templater, and the next templater attaches to it", async () => {
    const first = runTemplater(env);
    const proc = await waitFor(() => control.showProc(), 15_000, "HAProxy started by the templater");
    masters.add(proc.master.pid);
    await waitFor(() => first.output().includes("HAProxy edge on"), 10_000, "the templater ready");

    // The generated password: printed once, kept under DATA_DIR, and it opens the stats page.
    const password = (await Bun.file(statsPasswordFile(edge.dir)).text()).trim();
    expect(password.length).toBeGreaterThanOrEqual(16);
    expect(first.output()).toContain(password);
    expect((await fetchStats(edge.config.haproxyStatsPort, { user: "admin", password })).status).toBe(200);
    const metrics = await (await fetch(`http://127.0.0.1:${env.TEMPLATER_METRICS_PORT}/metrics`)).text();
    expect(metrics).toContain('fleetgate_haproxy_reloads_total{outcome="ok"} 1');

    first.proc.kill("SIGTERM");
    expect(await first.proc.exited).toBe(0);
    // HAProxy keeps serving without its templater.
    expect((await control.showProc())?.master.pid).toBe(proc.master.pid);
    expect((await fetchStats(edge.config.haproxyStatsPort, { user: "admin", password })).status).toBe(200);

    const second = runTemplater(env);
    try {
      await waitFor(() => second.output().includes("HAProxy edge on"), 15_000, "the second templater ready");
      const again = await control.showProc();
      expect(again?.master.pid).toBe(proc.master.pid); // attached, not a second HAProxy
      expect(second.output()).not.toContain("HAProxy started");
      expect(second.output()).not.toContain("generated password");
    } finally {
      second.proc.kill("SIGTERM");
      await second.proc.exited;
    }
    await control.stop();
    expect(pidAlive(proc.master.pid)).toBe(false);
  }, 45_000);

  test("child mode: HAProxy stops with the templater (and relative paths work, as `npm start` gives them)", async () => {
    // HAProxy takes a `stats socket` path without a leading "/" for host:port; the templater must
    // hand it absolute paths whatever it was given.
    const run = runTemplater({ ...env, HAPROXY_MODE: "child", HAPROXY_CONFIG: relative(ROOT, edge.config.haproxyConfig), DATA_DIR: relative(ROOT, edge.dir) });
    const proc = await waitFor(() => control.showProc(), 15_000, "HAProxy started");
    masters.add(proc.master.pid);
    await waitFor(() => run.output().includes("HAProxy edge on"), 10_000, "the templater ready");
    run.proc.kill("SIGTERM");
    expect(await run.proc.exited).toBe(0);
    await waitFor(() => !pidAlive(proc.master.pid) && proc.workers.every((w) => !pidAlive(w.pid)), 5000, "HAProxy gone");
  }, 30_000);
});
