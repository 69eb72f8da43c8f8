/**
 * What tests that run real scheduler processes with the ProcessDriver share: a Redis prefix, a
 * data dir, the fleet's driver, the scheduler's base environment, and a cleanup that leaves no
 * process of the fleet (ProcessDriver marks each node with FLEETGATE_NODE=<fleet>/<nodeId>).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { fleetName } from "../../scheduler/drivers/create-driver.ts";
import { ProcessDriver } from "../../scheduler/drivers/process-driver.ts";
import { REDIS_URL, testRedis, type TestRedis } from "./services.ts";

/** Pids of live node processes of `fleet` (zombies excluded). */
export function fleetProcesses(fleet: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      if (stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) === "Z") continue;
      if (readFileSync(`/proc/${d}/environ`, "utf8").split("\0").some((e) => e.startsWith(`FLEETGATE_NODE=${fleet}/`))) out.push(Number(d));
    } catch {
      /* gone meanwhile, or not ours to read */
    }
  }
  return out;
}

export interface ProcessFleet {
  t: TestRedis;
  dataDir: string;
  fleet: string;
  driver: ProcessDriver;
  /** Scheduler processes the test spawned (killed by cleanup). */
  procs: Subprocess[];
  portStart: number;
  /** The scheduler's environment for this fleet: Redis, prefix, process driver, data dir, ports. */
  schedulerEnv(extra: Record<string, string>): Record<string, string>;
  /** Kills the schedulers and every node process of the fleet, removes its keys and files. */
  cleanup(): Promise<void>;
}

export function processFleet(name: string, portBase: number): ProcessFleet {
  const t = testRedis(name);
  const dataDir = mkdtempSync(join(tmpdir(), `fg-${name}-`));
  const fleet = fleetName(t.prefix);
  const driver = new ProcessDriver({ fleet, stateDir: join(dataDir, "process-nodes") });
  const procs: Subprocess[] = [];
  const portStart = portBase + Math.floor(Math.random() * 50) * 100;
  return {
    t,
    dataDir,
    fleet,
    driver,
    procs,
    portStart,
    schedulerEnv: (extra) => ({
      PATH: process.env.PATH ?? "",
      REDIS_URL,
      REDIS_PREFIX: t.prefix,
      NODE_DRIVER: "process",
      DATA_DIR: dataDir,
      SERVER_PORT_START: String(portStart),
      SERVER_PORT_END: String(portStart + 99),
      SCHEDULER_METRICS_PORT: "0",
      INACTIVITY_SHUTDOWN: "600",
      NODE_START_TIMEOUT: "20",
      LOG_LEVEL: "info",
      ...extra,
    }),
    async cleanup() {
      for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
      for (const i of await driver.list().catch(() => [])) await driver.remove(i.nodeId).catch(() => {});
      // Whatever this run's fleet still runs — even a node process no driver tracks — goes.
      for (const pid of fleetProcesses(fleet)) process.kill(pid, "SIGKILL");
      await driver.close();
      await t.cleanup();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
