/**
 * startScheduler against real Redis and BullMQ, with FakeDriver nodes that are real in-process node
 * servers (real /health over HTTP): jobs, ticks, lifecycle timings scaled down, metrics.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { testConfig, type Config } from "../../core/config.ts";
import { silentLogger } from "../../core/log.ts";
import { FakeDriver } from "../support/fake-driver.ts";
import { ScaleStateStore } from "../../model/scale-state.ts";
import { startScheduler, type RunningScheduler } from "../../scheduler/start-scheduler.ts";

import type { Redis } from "../../core/redis.ts";
import { REDIS_URL, freePort, need, testRedis, waitFor, type TestRedis } from "../support/services.ts";

/**
 * Ports still reserved for nodes. Ports the allocator found taken by another program are parked
 * in the same hash as `-busy-|<until>`; those are not leaks (another test's process may hold one).
 */
async function nodePorts(redis: Redis, key: string): Promise<string[]> {
  const all = await redis.hgetall(key);
  return Object.entries(all)
    .filter(([, v]) => !v.startsWith("-busy-"))
    .map(([port, v]) => `${port}=${v}`);
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

interface Started {
  s: RunningScheduler;
  driver: FakeDriver;
  t: TestRedis;
  config: Config;
}

async function start(over: Partial<Config> = {}, t: TestRedis = testRedis("sched")): Promise<Started> {
  const config = testConfig({
    redisUrl: REDIS_URL,
    redisPrefix: t.prefix,
    schedulerMetricsPort: 0,
    autoscaleIntervalMs: 200,
    healthCheckIntervalMs: 200,
    healthCheckTimeoutMs: 300,
    inactivityShutdownMs: 60_000,
    cleanupDeleteMs: 60_000,
    nodeStartTimeoutMs: 3_000,
    nodeDrainMs: 200,
    schedulerLockDurationMs: 2_000,
    serverPortStart: 41_000,
    serverPortEnd: 41_099,
    maxServers: 10,
    ...over,
  });
  const driver = new FakeDriver();
  const s = await startScheduler({ config, driver, log: silentLogger, matchmaker: false, sweepSessions: false });
  cleanups.push(async () => {
    await s.close();
    await driver.close();
    await t.cleanup();
  });
  return { s, driver, t, config };
}

const ready = async (s: RunningScheduler) => (await s.registry.list()).filter((n) => n.state === "ready");

describe.skipIf(!need("redis"))("scheduler on BullMQ", () => {
  test("duplicated scale-up requests start each request's nodes once", async () => {
    const { s, driver } = await start();
    const ids = ["a", "b", "c"];
    await Promise.all(Array.from({ length: 30 }, (_, i) => s.client.requestScaleUp({ count: 1, region: "local", reason: "test", requestId: ids[i % 3]! })));
    await waitFor(async () => (await ready(s)).length === 3, 5_000, "3 ready nodes");
    await Bun.sleep(300);
    expect((await s.registry.list()).length).toBe(3);
    expect(driver.calls.filter((c) => c.op === "start").length).toBe(3);
    const ports = (await s.registry.list()).map((n) => n.port);
    expect(new Set(ports).size).toBe(3);
  });

  test("an idle node is shut down after INACTIVITY_SHUTDOWN and deleted CLEANUP_DELETE later", async () => {
    const { s, driver } = await start({ inactivityShutdownMs: 600, cleanupDeleteMs: 800 });
    await s.client.requestScaleUp({ count: 1, region: "local", reason: "test", requestId: "idle" });
    const [node] = await waitFor(async () => {
      const r = await ready(s);
      return r.length === 1 ? r : undefined;
    }, 5_000, "a ready node");
    const readyAt = node!.stateChangedAt;
    const stopped = await waitFor(async () => {
      const n = await s.registry.get(node!.id);
      return n?.state === "stopped" ? n : undefined;
    }, 5_000, "stopped");
    // Shut down within the window + one tick (+ the stop itself and scheduling slack).
    expect(stopped.stoppedAt - readyAt).toBeGreaterThanOrEqual(600);
    expect(stopped.stoppedAt - readyAt).toBeLessThan(600 + 200 + 700);
    expect((await driver.inspect(node!.id))?.running).toBe(false);
    await waitFor(async () => !(await s.registry.get(node!.id)), 5_000, "deleted");
    const deletedAfter = Date.now() - stopped.stoppedAt;
    expect(deletedAfter).toBeGreaterThanOrEqual(800);
    expect(deletedAfter).toBeLessThan(800 + 200 + 700);
    expect(await driver.inspect(node!.id)).toBeUndefined();
    expect(await nodePorts(s.redis, s.keys.ports)).toEqual([]);
  });

  test("wake: a stopped node comes back for a returning player with its id, port and token", async () => {
    const { s, driver } = await start({ inactivityShutdownMs: 300, cleanupDeleteMs: 60_000 });
    await s.client.requestScaleUp({ count: 1, region: "local", reason: "test", requestId: "sleeper" });
    const [before] = await waitFor(async () => {
      const r = await ready(s);
      return r.length === 1 ? r : undefined;
    }, 5_000, "ready");
    const reservedPort = driver.specOf(before!.id)!.port;
    await waitFor(async () => (await s.registry.get(before!.id))?.state === "stopped", 5_000, "stopped");
    expect((await driver.inspect(before!.id))?.running).toBe(false);
    await s.client.requestWake({ nodeId: before!.id, requestId: "player-back" });
    const after = await waitFor(async () => {
      const n = await s.registry.get(before!.id);
      return n?.state === "ready" ? n : undefined;
    }, 5_000, "woken");
    expect(after.token).toBe(before!.token);
    expect(driver.specOf(before!.id)?.port).toBe(reservedPort); // started again on the port it kept
    expect((await driver.inspect(before!.id))?.running).toBe(true);
    expect(driver.calls.filter((c) => c.op === "start" && c.nodeId === before!.id).length).toBe(2);
  });

  test("the admin floor keeps nodes up, and lowering it lets the reaper take them", async () => {
    const { s, t } = await start({ inactivityShutdownMs: 300, cleanupDeleteMs: 300, scaleDownCooldownMs: 0 });
    await new ScaleStateStore(t.redis, t.keys).setFloor(2, Date.now(), "admin-test");
    await waitFor(async () => (await ready(s)).length === 2, 5_000, "2 ready nodes");
    await Bun.sleep(800); // well past INACTIVITY_SHUTDOWN: the floor protects them
    expect((await ready(s)).length).toBe(2);
    await new ScaleStateStore(t.redis, t.keys).setFloor(0, Date.now(), "admin-test");
    await waitFor(async () => (await s.registry.list()).length === 0, 5_000, "fleet gone");
    const events = await new ScaleStateStore(t.redis, t.keys).events();
    expect(events.some((e) => e.action === "floor" && e.count === 2)).toBe(true);
    expect(events.some((e) => e.action === "up" && /floor 2/.test(e.reason))).toBe(true);
  });

  test("a crashed node becomes unhealthy and is replaced", async () => {
    const { s, driver } = await start({ healthCheckFailures: 2 });
    await s.client.requestScaleUp({ count: 1, region: "local", reason: "test", requestId: "victim" });
    const [victim] = await waitFor(async () => {
      const r = await ready(s);
      return r.length === 1 ? r : undefined;
    }, 5_000, "a ready node");
    await driver.crash(victim!.id);
    await waitFor(async () => (await s.registry.get(victim!.id))?.state === "unhealthy", 5_000, "unhealthy");
    await waitFor(async () => (await ready(s)).some((n) => n.id !== victim!.id), 5_000, "a replacement");
  });

  test("drain through the client stops and deletes a node; metrics count jobs by type and outcome", async () => {
    const port = freePort();
    const { s, config } = await start({ schedulerMetricsPort: port });
    await s.client.requestScaleUp({ count: 1, region: "local", reason: "test", requestId: "d" });
    const [n] = await waitFor(async () => {
      const r = await ready(s);
      return r.length === 1 ? r : undefined;
    }, 5_000, "ready");
    await s.client.requestDrain({ nodeId: n!.id, deadlineMs: 5_000, reason: "test" });
    // Drain as a contract: stopped, then deleted (a drained node is retired, never woken).
    await waitFor(async () => (await s.registry.get(n!.id)) === undefined, 5_000, "stopped and deleted");
    expect(s.metricsUrl).toBe(`http://${config.host}:${port}/metrics`);
    const text = await waitFor(async () => {
      const body = await (await fetch(s.metricsUrl!)).text();
      return body.includes('type="drain"') ? body : undefined;
    }, 3_000, "drain metric");
    expect(text).toMatch(/fleetgate_scheduler_jobs_total\{outcome="completed",type="scale-up"\} 1/);
    expect(text).toMatch(/fleetgate_scheduler_jobs_total\{outcome="completed",type="drain"\} 1/);
    expect(text).toMatch(/fleetgate_scheduler_job_duration_seconds_count\{type="scale-up"\} 1/);
    expect(text).toMatch(/fleetgate_scheduler_nodes\{state="stopped"\} 0/);
    expect(text).toMatch(/fleetgate_scheduler_nodes\{state="ready"\} 0/);
  });

  test("STOP_NODES_ON_EXIT: closing leaves no node, instance or port behind", async () => {
    const t = testRedis("sched");
    const { s, driver } = await start({ stopNodesOnExit: true }, t);
    await s.client.requestScaleUp({ count: 2, region: "local", reason: "test", requestId: "exit" });
    await waitFor(async () => (await ready(s)).length === 2, 5_000, "2 ready");
    await s.close();
    expect(await driver.list()).toEqual([]);
    expect(await t.redis.smembers(t.keys.nodes)).toEqual([]);
    expect(await nodePorts(t.redis, t.keys.ports)).toEqual([]);
  });
});
