/**
 * A gateway and an in-process scheduler whose Docker driver runs nodes on the given engines, with
 * health checks scaled down for the chaos suite (test/chaos/docker-*.test.ts).
 */
import type Docker from "dockerode";
import { testConfig, type Config } from "../../core/config.ts";
import { silentLogger } from "../../core/log.ts";
import { createRedis, deletePrefix } from "../../core/redis.ts";
import { DockerDriver, LABEL_FLEET } from "../../scheduler/drivers/docker-driver.ts";
import { fleetName } from "../../scheduler/drivers/create-driver.ts";
import { startScheduler, type RunningScheduler } from "../../scheduler/start-scheduler.ts";
import { startTestGateway, type TestGateway } from "./gateway-fixtures.ts";
import { NODE_IMAGE } from "./scheduler-stack.ts";
import { REDIS_URL } from "./services.ts";

export const HC_INTERVAL_MS = 300;
export const HC_FAILURES = 2;
export const HC_TIMEOUT_MS = 300;
/** The health-check window: the failing checks plus one interval of phase and one timeout. */
export const HC_WINDOW_MS = HC_INTERVAL_MS * (HC_FAILURES + 1) + HC_TIMEOUT_MS;
export const LOCAL_HOST = "unix:///var/run/docker.sock";
export const INACTIVITY_MS = 3_000;

export interface Fleet {
  gw: TestGateway;
  sched: RunningScheduler;
  driver: DockerDriver;
  fleet: string;
  config: Config;
  stop(): Promise<void>;
}

export async function startFleet(hosts: string[], minReady: number): Promise<Fleet> {
  const prefix = `fgchaos-dh-${crypto.randomUUID().slice(0, 8)}`;
  const fleet = fleetName(prefix);
  const gw = await startTestGateway(prefix, { maxPlayersPerServer: 4, reconnectDelayMs: 200 });
  const portStart = 45_000 + Math.floor(Math.random() * 50) * 100;
  const config = testConfig({
    ...gw.deps.config,
    dockerHosts: hosts,
    nodeRoomMode: "echo",
    minReadyServers: minReady,
    maxServers: 10,
    maxPlayersPerServer: 4,
    healthCheckIntervalMs: HC_INTERVAL_MS,
    healthCheckFailures: HC_FAILURES,
    healthCheckTimeoutMs: HC_TIMEOUT_MS,
    autoscaleIntervalMs: 300,
    // Also how long an unhealthy node is kept before it is stopped and deleted (CLEANUP_DELETE).
    inactivityShutdownMs: INACTIVITY_MS,
    cleanupDeleteMs: 500,
    schedulerLockDurationMs: 3_000,
    schedulerMetricsPort: 0,
    stopNodesOnExit: true,
    serverPortStart: portStart,
    serverPortEnd: portStart + 99,
  });
  const driver = new DockerDriver({ fleet, image: NODE_IMAGE, dockerHosts: hosts, network: "host", bindAddress: "127.0.0.1", memoryMb: 128, cpus: 0.5 });
  const sched = await startScheduler({ config, driver, log: silentLogger, matchmaker: false, sweepSessions: false });
  return {
    gw,
    sched,
    driver,
    fleet,
    config,
    async stop() {
      await gw.stop().catch(() => {});
      await sched.close().catch(() => {});
      await driver.close().catch(() => {});
      const r = createRedis(REDIS_URL);
      await deletePrefix(r, prefix).catch(() => 0);
      r.disconnect();
    },
  };
}

export const fleetContainers = (d: Docker, fleet: string) => d.listContainers({ all: true, filters: { label: [`${LABEL_FLEET}=${fleet}`] } }).catch(() => []);

