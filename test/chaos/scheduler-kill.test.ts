/**
 * Chaos: a scheduler process SIGKILLed right after `POST /v1/admin/scale` (real Docker). Replica A
 * alone takes the scale-up; the moment its first container exists it is SIGKILLed and replica B
 * starts: B finishes the job (stalled-job recovery after SCHEDULER_LOCK_DURATION, adopting what A
 * left running): exactly the asked number of nodes ready, and not one container of the fleet
 * that the registry does not know.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LABEL_FLEET, LABEL_NODE } from "../../scheduler/drivers/docker-driver.ts";
import { fleetName } from "../../scheduler/drivers/create-driver.ts";
import { ensureNodeImage } from "../../node/image.ts";
import { startTestGateway, type TestGateway } from "../support/gateway-fixtures.ts";
import { NODE_IMAGE, docker, removeFleetContainers } from "../support/scheduler-stack.ts";
import { REDIS_URL, need, waitFor } from "../support/services.ts";
import { reportChaos, schedulerUp, spawnStackProcess, type StackProcess } from "../support/chaos.ts";

const NODES = 3;
const LOCK_S = 2;

describe.skipIf(!(need("docker") && need("redis")))("chaos: a scheduler SIGKILLed right after POST /v1/admin/scale", () => {
  let gw: TestGateway;
  const procs: StackProcess[] = [];
  const prefix = `fgchaos-sched-${crypto.randomUUID().slice(0, 8)}`;
  const fleet = fleetName(prefix);
  const dataDir = mkdtempSync(join(tmpdir(), "fg-chaos-sched-"));
  const portStart = 44_000 + Math.floor(Math.random() * 50) * 100;

  const env = (name: string): Record<string, string> => ({
    REDIS_URL,
    REDIS_PREFIX: prefix,
    NODE_DRIVER: "docker",
    NODE_IMAGE,
    NODE_ROOM_MODE: "echo",
    NODE_MEMORY_MB: "128",
    NODE_CPUS: "0.5",
    DATA_DIR: join(dataDir, name),
    MAX_SERVERS: "10",
    SERVER_PORT_START: String(portStart),
    SERVER_PORT_END: String(portStart + 99),
    SCHEDULER_METRICS_PORT: "0",
    SCHEDULER_LOCK_DURATION: String(LOCK_S),
    AUTOSCALE_INTERVAL: "0.3",
    HEALTH_CHECK_INTERVAL: "0.5",
    INACTIVITY_SHUTDOWN: "600",
    NODE_START_TIMEOUT: "15",
    STOP_NODES_ON_EXIT: "true",
    LOG_LEVEL: "info",
  });

  beforeAll(async () => {
    await ensureNodeImage({ image: NODE_IMAGE });
    gw = await startTestGateway(prefix, { maxServers: 10 });
  }, 120_000);

  afterAll(async () => {
    for (const p of procs) await p.stop(15_000);
    await gw?.stop();
    await removeFleetContainers(fleet);
    const { createRedis, deletePrefix } = await import("../../core/redis.ts");
    const r = createRedis(REDIS_URL);
    await deletePrefix(r, prefix);
    r.disconnect();
    rmSync(dataDir, { recursive: true, force: true });
  }, 60_000);

  test(
    "the other replica finishes: exactly the asked number of nodes, 0 containers unknown to the registry",
    async () => {
      const a = spawnStackProcess("scheduler-a", "scheduler/main.ts", env("a"));
      procs.push(a);
      await schedulerUp(a);
      const admin = await gw.token("p_admin_chaos", ["admin"]);
      const res = await fetch(`${gw.url}/v1/admin/scale`, { method: "POST", headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" }, body: JSON.stringify({ nodes: NODES }) });
      expect(res.status).toBe(202);
      const fleetContainers = () => docker.listContainers({ all: true, filters: { label: [`${LABEL_FLEET}=${fleet}`] } });
      await waitFor(async () => (await fleetContainers()).length > 0, 20_000, "A's first container", 25);
      a.proc.kill("SIGKILL");
      await a.proc.exited;
      const killedAt = Date.now();
      const atKill = (await fleetContainers()).length;
      const b = spawnStackProcess("scheduler-b", "scheduler/main.ts", env("b"));
      procs.push(b);
      const players: string[] = [`A killed with ${atKill} container(s) created`];
      let recoveryMs: number | undefined;
      let ok = false;
      try {
        await schedulerUp(b);
        const readyIds = async () => {
          const ids = await gw.deps.redis.smembers(gw.deps.keys.nodes);
          const states = await Promise.all(ids.map((id) => gw.deps.redis.hget(gw.deps.keys.node(id), "state")));
          return ids.filter((_, i) => states[i] === "ready");
        };
        await waitFor(async () => (await readyIds()).length >= NODES, 30_000, `${NODES} ready nodes`, 100);
        recoveryMs = Date.now() - killedAt;
        // Settle: B must not start more than asked, and A's leftovers must be adopted or removed.
        await Bun.sleep(LOCK_S * 1000 + 1_000);
        const ids = await gw.deps.redis.smembers(gw.deps.keys.nodes);
        const ready = await readyIds();
        const containers = await fleetContainers();
        const unknown = containers.filter((c) => !ids.includes(c.Labels[LABEL_NODE] ?? ""));
        const running = containers.filter((c) => c.State === "running");
        players.push(`B: ${ready.length} ready of ${ids.length} registered; ${containers.length} containers (${running.length} running), ${unknown.length} unknown to the registry`);
        ok = ready.length === NODES && ids.length === NODES && unknown.length === 0 && running.length === NODES;
        expect(ready.length).toBe(NODES);
        expect(ids.length).toBe(NODES);
        expect(unknown.map((c) => c.Names[0])).toEqual([]);
        expect(running.length).toBe(NODES);
      } catch (e) {
        players.push(`FAILED: ${e instanceof Error ? e.message : String(e)}`);
        if (!ok) console.log(b.output().slice(-3_000));
        throw e;
      } finally {
        reportChaos({ scenario: "scheduler SIGKILLed mid-scale", done: `POST /v1/admin/scale {nodes: ${NODES}}, SIGKILL the scheduler doing it, another replica starts`, players: players.join("; "), recoveryMs, ok });
      }
    },
    90_000,
  );
});
