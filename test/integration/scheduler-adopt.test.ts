/**
 * A scheduler PROCESS SIGKILLed in the middle of a scale-up, after its driver started the node and
 * while it waits for the node to answer (a node that takes 1.5 s to listen makes that window
 * certain). Another scheduler process adopts the running, healthy node within a health-check
 * interval — not after SCHEDULER_LOCK_DURATION (30 s, the default, kept here) — and never starts it
 * a second time: one node process, the same one, and the retried job later finds it ready.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { bullConnection } from "../../scheduler/start-scheduler.ts";
import { nodeIdFor } from "../../scheduler/fleet/node-lifecycle.ts";
import { createQueues, createSchedulerClient } from "../../model/jobs.ts";
import { REDIS_URL, captureOutput, need, waitFor } from "../support/services.ts";
import { fleetProcesses, processFleet } from "../support/process-fleet.ts";

const ROOT = resolve(import.meta.dir, "../..");


describe.skipIf(!need("redis"))("scale-up adoption after a scheduler dies mid-job", () => {
  const pf = processFleet("adopt", 48_000);
  const { t, dataDir, fleet, procs } = pf;
  // A node that takes 1.5 s before it listens: the scheduler is certainly waiting for it when killed.
  const slowNode = join(dataDir, "slow-node.sh");
  writeFileSync(slowNode, `sleep 1.5\nexec "${process.execPath}" "${join(ROOT, "node/main.ts")}"\n`);

  afterAll(() => pf.cleanup());

  function spawnScheduler(): { proc: Subprocess; output: () => string } {
    const proc = Bun.spawn([process.execPath, "scheduler/main.ts"], {
      cwd: ROOT,
      env: pf.schedulerEnv({
        NODE_COMMAND: `sh ${slowNode}`,
        HEALTH_CHECK_INTERVAL: "0.5",
      }),
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
