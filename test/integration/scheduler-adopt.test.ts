/**
 * A scheduler PROCESS SIGKILLed in the middle of a scale-up, after its driver started the node and
 * while it waits for the node to answer (a node that takes 1.5 s to listen makes that window
 * certain). Another scheduler process adopts the running, healthy node within a health-check
 * interval — not after SCHEDULER_LOCK_DURATION (30 s, the default, kept here) — and never starts it
 * a second time: one node process, the same one, and the retried job later finds it ready.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { ProcessDriver } from "../../scheduler/drivers/process-driver.ts";
import { fleetName } from "../../scheduler/drivers/create-driver.ts";
import { bullConnection } from "../../scheduler/start-scheduler.ts";
import { nodeIdFor } from "../../scheduler/fleet/node-lifecycle.ts";
import { createQueues, createSchedulerClient } from "../../model/jobs.ts";
import { REDIS_URL, captureOutput, need, testRedis, waitFor } from "../support/services.ts";

const ROOT = resolve(import.meta.dir, "../..");

/** Live node processes of `fleet` (ProcessDriver marks each with FLEETGATE_NODE=<fleet>/<nodeId>). */
function fleetProcesses(fleet: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      if (stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) === "Z") continue;
      if (readFileSync(`/proc/${d}/environ`, "utf8").split("\0").some((e) => e.startsWith(`FLEETGATE_NODE=${fleet}/`))) out.push(Number(d));
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

describe.skipIf(!need("redis"))("scale-up adoption after a scheduler dies mid-job", () => {
  const t = testRedis("adopt");
  const dataDir = mkdtempSync(join(tmpdir(), "fg-adopt-"));
  const fleet = fleetName(t.prefix);
  const driver = new ProcessDriver({ fleet, stateDir: join(dataDir, "process-nodes") });
  const procs: Subprocess[] = [];
  const portStart = 48_000 + Math.floor(Math.random() * 50) * 100;
  // A node that takes 1.5 s before it listens: the scheduler is certainly waiting for it when killed.
  const slowNode = join(dataDir, "slow-node.sh");
  writeFileSync(slowNode, `sleep 1.5\nexec "${process.execPath}" "${join(ROOT, "node/main.ts")}"\n`);

  afterAll(async () => {
    for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
    for (const i of await driver.list().catch(() => [])) await driver.remove(i.nodeId).catch(() => {});
    for (const pid of fleetProcesses(fleet)) process.kill(pid, "SIGKILL");
    await driver.close();
    await t.cleanup();
    rmSync(dataDir, { recursive: true, force: true });
  });

  function spawnScheduler(): { proc: Subprocess; output: () => string } {
    const proc = Bun.spawn([process.execPath, "scheduler/main.ts"], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? "",
        REDIS_URL,
        REDIS_PREFIX: t.prefix,
        NODE_DRIVER: "process",
        NODE_COMMAND: `sh ${slowNode}`,
        DATA_DIR: dataDir,
        SERVER_PORT_START: String(portStart),
        SERVER_PORT_END: String(portStart + 99),
        SCHEDULER_METRICS_PORT: "0",
        HEALTH_CHECK_INTERVAL: "0.5",
        INACTIVITY_SHUTDOWN: "600",
        NODE_START_TIMEOUT: "20",
        LOG_LEVEL: "info",
      },
      stdout: "pipe",
      stderr: "pipe",
    });
    procs.push(proc);
    return { proc, output: captureOutput(proc).output };
  }

  test("the other replica adopts the started node within seconds, no second start", async () => {
    const queues = createQueues(bullConnection(REDIS_URL), t.keys);
    const client = createSchedulerClient(queues);
    try {
      const a = spawnScheduler();
      await waitFor(() => a.output().includes("scheduler started"), 20_000, `scheduler A to start: ${a.output()}`, 50);
      await client.requestScaleUp({ count: 1, region: "local", reason: "adopt test", requestId: "adopt-1" });
      const id = nodeIdFor("adopt-1", 0);
      // The driver has started the node (its record carries the instance), and it is not ready yet.
      await waitFor(async () => (await t.redis.hget(t.keys.node(id), "ref")) || undefined, 15_000, "the node's instance to start", 5);
      expect(await t.redis.hget(t.keys.node(id), "state")).toBe("starting");
      const ref = await t.redis.hget(t.keys.node(id), "ref");
      a.proc.kill("SIGKILL");
      await a.proc.exited;
      const killedAt = performance.now();

      const b = spawnScheduler();
      await waitFor(async () => (await t.redis.hget(t.keys.node(id), "state")) === "ready", 15_000, `the node adopted (B: ${b.output().slice(-800)})`, 50);
      const secs = (performance.now() - killedAt) / 1000;
      console.log(`scheduler SIGKILLed mid-scale-up → node ready (adopted by the other replica) ${secs.toFixed(1)} s later (lock: 30 s)`);
      expect(secs).toBeLessThan(10);
      expect(b.output()).toContain("node adopted");
      // The same instance, started once.
      expect(await t.redis.hget(t.keys.node(id), "ref")).toBe(ref);
      expect(fleetProcesses(fleet).length).toBe(1);
    } finally {
      await queues.close();
    }
  }, 60_000);
});
