/**
 * Chaos: Redis Sentinel failover. The test starts a primary, a replica and three sentinels
 * (Debian's redis-sentinel) on loopback ports; a gateway and a scheduler run with REDIS_SENTINELS /
 * REDIS_SENTINEL_NAME. The primary is SIGKILLed: once the sentinels promote the replica, fleetgate
 * carries on (figure: seconds from the kill until a join answers 201 again), and no job is lost —
 * every scale-up job queued before the kill and every one queued after it completes.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join as pathJoin } from "node:path";
import type { Subprocess } from "bun";
import IORedis from "ioredis";
import { testConfig, type Config } from "../../core/config.ts";
import { silentLogger } from "../../core/log.ts";
import { startScheduler, type RunningScheduler } from "../../scheduler/start-scheduler.ts";
import { FakeDriver } from "../support/fake-driver.ts";
import { startTestGateway, startTestNode, type TestGateway, type TestNode } from "../support/gateway-fixtures.ts";
import { IN_CI, freePort, need, waitFor } from "../support/services.ts";
import { reportChaos, startOwnRedis, type OwnRedis } from "../support/chaos.ts";

const hasSentinel = Bun.which("redis-sentinel") !== null;
if (!hasSentinel && IN_CI) throw new Error("redis-sentinel is required under CI (apt-get install redis-sentinel; .ci/run does it)");
const MASTER = `fgchaos${crypto.randomUUID().slice(0, 6)}`;
const JOBS_BEFORE = 10;
const JOBS_AFTER = 10;

/** A sentinel on its own port with a config file it may rewrite. */
function startSentinel(dir: string, port: number, primaryPort: number): Subprocess {
  const conf = pathJoin(dir, `sentinel-${port}.conf`);
  writeFileSync(
    conf,
    [
      `port ${port}`,
      "bind 127.0.0.1",
      "protected-mode no",
      `dir ${dir}`,
      `logfile ${pathJoin(dir, `sentinel-${port}.log`)}`,
      `sentinel monitor ${MASTER} 127.0.0.1 ${primaryPort} 2`,
      `sentinel down-after-milliseconds ${MASTER} 1000`,
      `sentinel failover-timeout ${MASTER} 6000`,
      `sentinel parallel-syncs ${MASTER} 1`,
      "",
    ].join("\n"),
  );
  return Bun.spawn(["redis-sentinel", conf], { stdout: "ignore", stderr: "ignore" });
}

async function sentinelCommand(port: number, ...args: string[]): Promise<unknown> {
  const r = new IORedis({ host: "127.0.0.1", port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 1, connectTimeout: 500 });
  r.on("error", () => {});
  try {
    await r.connect();
    return await r.call("SENTINEL", ...args);
  } finally {
    r.disconnect();
  }
}

describe.skipIf(!(hasSentinel && need("redis")))("chaos: Redis Sentinel failover", () => {
  let primary: OwnRedis;
  let replica: OwnRedis;
  const sentinels: Subprocess[] = [];
  const sentinelPorts = [freePort(), freePort(), freePort()];
  const dir = mkdtempSync(pathJoin(tmpdir(), "fg-sentinel-"));
  let config: Config;
  let gw: TestGateway;
  let node: TestNode;
  let sched: RunningScheduler;
  let driver: FakeDriver;
  const prefix = `fgchaos-sentinel-${crypto.randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    primary = await startOwnRedis({ label: "primary" });
    replica = await startOwnRedis({ label: "replica", extraArgs: ["--replicaof", "127.0.0.1", String(primary.port)] });
    const rep = new IORedis({ host: "127.0.0.1", port: replica.port, maxRetriesPerRequest: 1 });
    await waitFor(async () => (await rep.info("replication")).includes("master_link_status:up"), 15_000, "the replica in sync", 100).finally(() => rep.disconnect());
    for (const p of sentinelPorts) sentinels.push(startSentinel(dir, p, primary.port));
    // Ready when every sentinel knows the replica and the two other sentinels.
    await waitFor(
      async () => {
        for (const p of sentinelPorts) {
          const reps = (await sentinelCommand(p, "REPLICAS", MASTER)) as unknown[];
          const others = (await sentinelCommand(p, "SENTINELS", MASTER)) as unknown[];
          if (reps.length < 1 || others.length < 2) return false;
        }
        return true;
      },
      20_000,
      "sentinels to see the replica and each other",
      200,
    );
    const sentinelOverrides: Partial<Config> = {
      redisUrl: `redis://127.0.0.1:${primary.port}`,
      redisSentinels: sentinelPorts.map((port) => ({ host: "127.0.0.1", port })),
      redisSentinelName: MASTER,
    };
    gw = await startTestGateway(prefix, { ...sentinelOverrides, joinWaitTimeoutMs: 2_000 });
    node = await startTestNode(gw.deps, { roomMode: "echo" });
    config = testConfig({
      ...gw.deps.config,
      schedulerMetricsPort: 0,
      autoscaleIntervalMs: 500,
      healthCheckIntervalMs: 500,
      inactivityShutdownMs: 600_000,
      // Longer than a failover (~2.5 s here): a job lock that expires while the primary is gone
      // makes BullMQ count the job as stalled, and twice stalled is failed. (Default 30 s.)
      schedulerLockDurationMs: 10_000,
      serverPortStart: 43_000 + Math.floor(Math.random() * 50) * 100,
      maxServers: JOBS_BEFORE + JOBS_AFTER + 5,
    });
    config = testConfig({ ...config, serverPortEnd: config.serverPortStart + 99 });
    driver = new FakeDriver();
    sched = await startScheduler({ config, driver, log: silentLogger, matchmaker: false, sweepSessions: false, ticks: false });
  }, 60_000);

  afterAll(async () => {
    await gw?.stop().catch(() => {});
    await node?.stop().catch(() => {});
    await sched?.close().catch(() => {});
    await driver?.close().catch(() => {});
    for (const s of sentinels) s.kill("SIGKILL");
    await Promise.all(sentinels.map((s) => s.exited));
    await primary?.stop();
    await replica?.stop();
    rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  test(
    "kill the primary: fleetgate carries on after the promotion, 0 jobs lost",
    async () => {
      const players: string[] = [];
      let carriedOnMs: number | undefined;
      let ok = false;
      try {
        // A join works through the sentinels' primary.
        const tok = await gw.token("p_sentinel_before");
        const before = await fetch(`${gw.url}/v1/players/join`, { method: "POST", headers: { authorization: `Bearer ${tok}`, "content-type": "application/json" }, body: "{}" });
        expect(before.status).toBe(201);
        for (let i = 0; i < JOBS_BEFORE; i++) await gw.deps.scheduler.requestScaleUp({ count: 1, region: "local", reason: "chaos sentinel", requestId: `before-${i}` });
        // Replication is asynchronous: writes acknowledged just before a crash may not have reached
        // the replica. WAIT makes this run's queued jobs durable on it, as an operator's would be.
        const direct = new IORedis({ host: "127.0.0.1", port: primary.port, maxRetriesPerRequest: 1 });
        expect(Number(await direct.call("WAIT", "1", "2000"))).toBe(1);
        direct.disconnect();

        await primary.kill("SIGKILL");
        const killedAt = Date.now();
        // Carries on: a join answers 201 again (each attempt bounded, retried until the promotion).
        let promoted: number | undefined;
        let lastJoin = "";
        await waitFor(
          async () => {
            const res = await fetch(`${gw.url}/v1/players/join`, {
              method: "POST",
              headers: { authorization: `Bearer ${await gw.token()}`, "content-type": "application/json" },
              body: "{}",
              signal: AbortSignal.timeout(3_000),
            }).catch(() => undefined);
            if (promoted === undefined) {
              const addr = (await sentinelCommand(sentinelPorts[0]!, "GET-MASTER-ADDR-BY-NAME", MASTER).catch(() => undefined)) as string[] | undefined;
              if (addr && Number(addr[1]) === replica.port) promoted = Date.now() - killedAt;
            }
            lastJoin = res ? `${res.status} ${(await res.text()).slice(0, 200)}` : "no answer in 3 s";
            return res?.status === 201;
          },
          30_000,
          "a join to answer 201 after the failover",
          100,
        ).catch(async (e: unknown) => {
          const addrs = await Promise.all(sentinelPorts.map((p) => sentinelCommand(p, "GET-MASTER-ADDR-BY-NAME", MASTER).catch((x: unknown) => String(x))));
          const ready = await fetch(`${gw.url}/ready`).then((r) => r.status).catch(() => 0);
          throw new Error(`${String(e)}; last join: ${lastJoin}; /ready ${ready}; sentinels say the primary is ${JSON.stringify(addrs)} (replica ${replica.port}, old primary ${primary.port})`);
        });
        carriedOnMs = Date.now() - killedAt;
        players.push(`replica promoted after ${promoted === undefined ? "?" : (promoted / 1000).toFixed(1)} s; joins 201 again after ${(carriedOnMs / 1000).toFixed(1)} s`);
        for (let i = 0; i < JOBS_AFTER; i++) await gw.deps.scheduler.requestScaleUp({ count: 1, region: "local", reason: "chaos sentinel", requestId: `after-${i}` });
        await waitFor(
          async () => {
            const c = await sched.queues.scaleUp.getJobCounts("completed", "failed", "waiting", "active", "delayed");
            return c.completed === JOBS_BEFORE + JOBS_AFTER ? c : undefined;
          },
          30_000,
          "every scale-up job completed on the new primary",
          200,
        ).catch(async (e: unknown) => {
          const c = await sched.queues.scaleUp.getJobCounts("completed", "failed", "waiting", "active", "delayed", "prioritized");
          const ids = (await sched.queues.scaleUp.getJobs(["completed"], 0, 100)).map((j) => j.id);
          const failed = (await sched.queues.scaleUp.getJobs(["failed"], 0, 3)).map((j) => `${j.id}: ${j.failedReason}`);
          throw new Error(`${String(e)}; counts ${JSON.stringify(c)}; completed ${ids.join(",")}; failed e.g. ${failed.join(" | ")}`);
        });
        const counts = await sched.queues.scaleUp.getJobCounts("completed", "failed");
        expect(counts.failed).toBe(0);
        const nodes = (await sched.registry.list()).length;
        players.push(`${counts.completed}/${JOBS_BEFORE + JOBS_AFTER} jobs completed, 0 lost; ${nodes} nodes registered`);
        ok = true;
      } catch (e) {
        players.push(`FAILED: ${e instanceof Error ? e.message : String(e)}`);
        throw e;
      } finally {
        reportChaos({ scenario: "Redis Sentinel failover", done: "SIGKILL the primary (1 replica, 3 sentinels)", players: players.join("; "), recoveryMs: carriedOnMs, ok });
      }
    },
    60_000,
  );
});
