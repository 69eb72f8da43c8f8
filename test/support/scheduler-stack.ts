/**
 * A gateway and a scheduler in one process against one Redis prefix, with a chosen node driver:
 * the whole join → node → frame path without HAProxy. Used by the scheduler e2e tests and by
 * bench/scale.ts. `stop()` closes both, removes every node (STOP_NODES_ON_EXIT) and the prefix.
 */
import { resolve } from "node:path";
import type { Subprocess } from "bun";
import Docker from "dockerode";
import type { Config } from "../../core/config.ts";
import { silentLogger, type Logger } from "../../core/log.ts";
import { RedisNodeRegistry, type NodeRegistry } from "../../core/node-registry.ts";
import { ensureNodeImage } from "../../node/image.ts";
import { DockerDriver, LABEL_FLEET, LABEL_NODE } from "../../scheduler/drivers/docker-driver.ts";
import type { NodeDriver } from "../../scheduler/drivers/driver.ts";
import { FakeDriver } from "../../scheduler/drivers/fake-driver.ts";
import { ProcessDriver } from "../../scheduler/drivers/process-driver.ts";
import { fleetName } from "../../scheduler/drivers/create-driver.ts";
import { createQueues, createSchedulerClient, type SchedulerClient } from "../../scheduler/queues.ts";
import { bullConnection, startScheduler, type RunningScheduler } from "../../scheduler/start-scheduler.ts";
import { gatewayTestConfig, openSocket, startTestGateway, type TestGateway } from "./gateway-fixtures.ts";
import { testRedis, type TestRedis } from "./services.ts";

const ROOT = resolve(import.meta.dir, "../..");
export const NODE_IMAGE = "fleetgate-node:latest";
export const docker = new Docker({ socketPath: "/var/run/docker.sock" });

export type StackDriver = "docker" | "process" | "fake";

export interface Stack {
  gw: TestGateway;
  /** The in-process scheduler (undefined when it runs as its own process). */
  sched: RunningScheduler | undefined;
  registry: NodeRegistry;
  client: SchedulerClient;
  driver: NodeDriver;
  config: Config;
  t: TestRedis;
  fleet: string;
  stop(): Promise<void>;
}

/** A random 200-port range for node ports, so parallel runs on this machine rarely meet. */
function portRange(): { serverPortStart: number; serverPortEnd: number } {
  const start = 42_000 + Math.floor(Math.random() * 100) * 200;
  return { serverPortStart: start, serverPortEnd: start + 199 };
}

export interface StackOptions {
  /**
   * Run the scheduler as its own process (`bun scheduler/main.ts`, as in production) instead of in
   * this one — so the gateway's event loop measured by a benchmark is not shared with it. Only for
   * the docker and process drivers.
   */
  schedulerProcess?: boolean;
  log?: Logger;
}

/** The environment a scheduler process needs to run with `config` (what the stack overrides). */
function schedulerEnv(config: Config, kind: StackDriver): Record<string, string> {
  const sec = (ms: number) => String(ms / 1000);
  return {
    PATH: process.env.PATH ?? "",
    REDIS_URL: config.redisUrl,
    REDIS_PREFIX: config.redisPrefix,
    NODE_DRIVER: kind,
    NODE_IMAGE: config.nodeImage,
    NODE_ROOM_MODE: config.nodeRoomMode,
    DATA_DIR: config.dataDir,
    MAX_PLAYERS_PER_SERVER: String(config.maxPlayersPerServer),
    MAX_SERVERS: String(config.maxServers),
    MIN_READY_SERVERS: String(config.minReadyServers),
    SCALE_UP_UTILIZATION: String(config.scaleUpUtilization),
    SERVER_PORT_START: String(config.serverPortStart),
    SERVER_PORT_END: String(config.serverPortEnd),
    INACTIVITY_SHUTDOWN: sec(config.inactivityShutdownMs),
    CLEANUP_DELETE: sec(config.cleanupDeleteMs),
    HEARTBEAT_INTERVAL: sec(config.heartbeatIntervalMs),
    SESSION_TTL: sec(config.sessionTtlMs),
    AUTOSCALE_INTERVAL: sec(config.autoscaleIntervalMs),
    NODE_MEMORY_MB: "128",
    NODE_CPUS: "0.5",
    SCHEDULER_METRICS_PORT: "0",
    STOP_NODES_ON_EXIT: "true",
    LOG_LEVEL: "warn",
  };
}

export async function startStack(kind: StackDriver, overrides: Partial<Config> = {}, opts: StackOptions = {}): Promise<Stack> {
  const log = opts.log ?? silentLogger;
  const t = testRedis(`stack-${kind}`);
  const fleet = fleetName(t.prefix);
  const common: Partial<Config> = { schedulerMetricsPort: 0, nodeImage: NODE_IMAGE, stopNodesOnExit: true, nodeRoomMode: "echo", ...portRange(), ...overrides };
  const config = gatewayTestConfig(t.prefix, common);
  let driver: NodeDriver;
  if (kind === "docker") {
    await ensureNodeImage({ image: NODE_IMAGE });
    driver = new DockerDriver({ fleet, image: NODE_IMAGE, network: "host", bindAddress: config.nodeBindAddress, memoryMb: 128, cpus: 0.5 });
  } else if (kind === "process") {
    driver = new ProcessDriver({ fleet, stateDir: `${config.dataDir}/test-process-nodes`, bindAddress: config.nodeBindAddress });
  } else driver = new FakeDriver({ useSpecPort: true });
  const gw = await startTestGateway(t.prefix, common);
  let sched: RunningScheduler | undefined;
  let proc: Subprocess | undefined;
  if (opts.schedulerProcess && kind !== "fake") {
    proc = Bun.spawn([process.execPath, "scheduler/main.ts"], { cwd: ROOT, env: schedulerEnv(config, kind), stdout: "inherit", stderr: "inherit" });
  } else {
    sched = await startScheduler({ config, driver, log, matchmaker: false, sweepSessions: false });
  }
  const registry = sched?.registry ?? new RedisNodeRegistry(t.redis, t.keys, () => t.connect());
  const queues = sched ? undefined : createQueues(bullConnection(config.redisUrl), t.keys);
  const client = sched?.client ?? createSchedulerClient(queues!);
  return {
    gw,
    sched,
    registry,
    client,
    driver,
    config,
    t,
    fleet,
    async stop() {
      await gw.stop().catch(() => {});
      if (sched) await sched.close();
      if (proc) {
        proc.kill("SIGTERM");
        await Promise.race([proc.exited, Bun.sleep(30_000)]);
        if (proc.exitCode === null) proc.kill("SIGKILL");
      }
      await queues?.close();
      if (kind === "docker") await removeFleetContainers(fleet);
      await t.cleanup();
    },
  };
}

/** Every container of a fleet, removed whatever its state (test cleanup). */
export async function removeFleetContainers(fleet: string): Promise<number> {
  const list = await docker.listContainers({ all: true, filters: { label: [`${LABEL_FLEET}=${fleet}`] } });
  await Promise.all(list.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
  return list.length;
}

/** A node's container as the engine sees it, or undefined when it does not exist. */
export async function containerOf(fleet: string, nodeId: string): Promise<{ id: string; running: boolean; finishedAt: number } | undefined> {
  const [c] = await docker.listContainers({ all: true, filters: { label: [`${LABEL_FLEET}=${fleet}`, `${LABEL_NODE}=${nodeId}`] } });
  if (!c) return undefined;
  const info = await docker.getContainer(c.Id).inspect();
  return { id: c.Id, running: info.State.Running, finishedAt: Date.parse(info.State.FinishedAt) || 0 };
}

export interface JoinAnswer {
  sessionId: string;
  playerId: string;
  roomCode: string;
  nodeId: string;
  connectUrl: string;
  heartbeatIntervalMs: number;
}

/** POST /v1/players/join as a new player. */
export async function join(gw: TestGateway, token?: string): Promise<{ token: string; body: JoinAnswer; ms: number }> {
  const tok = token ?? (await gw.token());
  const t0 = performance.now();
  const res = await fetch(`${gw.url}/v1/players/join`, { method: "POST", headers: { authorization: `Bearer ${tok}`, "content-type": "application/json" }, body: "{}" });
  const ms = performance.now() - t0;
  if (res.status !== 201) throw new Error(`join: ${res.status} ${await res.text()}`);
  return { token: tok, body: (await res.json()) as JoinAnswer, ms };
}

export async function heartbeat(gw: TestGateway, token: string, sessionId: string): Promise<number> {
  const res = await fetch(`${gw.url}/v1/players/heartbeat`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify({ sessionId }) });
  await res.body?.cancel().catch(() => {});
  return res.status;
}

/** Opens the join's WebSocket, sends one frame and waits for it to come back (echo nodes). */
export async function firstFrame(gw: TestGateway, token: string, j: JoinAnswer, timeoutMs = 5_000): Promise<{ ms: number; close(): void }> {
  const url = `${gw.wsUrl}/v1/connect?room=${encodeURIComponent(j.roomCode)}`;
  const s = openSocket(url, ["bearer", token]);
  const t0 = performance.now();
  await s.opened;
  s.ws.send("ping-1");
  await s.waitMessages(1, timeoutMs);
  const ms = performance.now() - t0;
  if (s.messages[0] !== "ping-1") throw new Error(`unexpected first frame ${String(s.messages[0])}`);
  return { ms, close: () => s.ws.close() };
}
