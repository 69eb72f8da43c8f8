/**
 * A gateway and a scheduler against one Redis prefix — in this process, or as their own processes
 * — with a chosen node driver: the whole join → node → frame path without HAProxy. Used by the
 * scheduler e2e tests and by bench/scale.ts. `stop()` closes both, removes every node
 * (STOP_NODES_ON_EXIT) and the prefix.
 */
import { resolve } from "node:path";
import type { Subprocess } from "bun";
import Docker from "dockerode";
import type { Config } from "../../core/config.ts";
import { silentLogger, type Logger } from "../../core/log.ts";
import { RedisNodeRegistry, type NodeRegistry } from "../../model/node-registry.ts";
import { ensureNodeImage } from "../../node/image.ts";
import { DockerDriver, LABEL_FLEET, LABEL_NODE } from "../../scheduler/drivers/docker-driver.ts";
import type { NodeDriver } from "../../scheduler/drivers/driver.ts";
import { FakeDriver } from "./fake-driver.ts";
import { ProcessDriver } from "../../scheduler/drivers/process-driver.ts";
import { fleetName } from "../../scheduler/drivers/create-driver.ts";
import { createQueues, createSchedulerClient, type SchedulerClient } from "../../model/jobs.ts";
import { bullConnection, startScheduler, type RunningScheduler } from "../../scheduler/start-scheduler.ts";
import { JwtAuthenticator, jwtKeysFromConfig } from "../../gateway/auth/jwt.ts";
import type { Role } from "../../gateway/contracts.ts";
import { TEST_JWT_SECRET, gatewayTestConfig, openSocket, startTestGateway } from "./gateway-fixtures.ts";
import { freePort, testRedis, waitFor, type TestRedis } from "./services.ts";
import type { JoinResult } from "../../sdk/client/src/index.ts";

const ROOT = resolve(import.meta.dir, "../..");
export const NODE_IMAGE = "fleetgate-node:latest";
export const docker = new Docker({ socketPath: "/var/run/docker.sock" });

export type StackDriver = "docker" | "process" | "fake";

/** What the helpers below need of a gateway: TestGateway (in-process) or a gateway process. */
export interface GatewayEndpoint {
  url: string;
  wsUrl: string;
  /** Signs a token for a player (or admin) with the gateway's key. */
  token(sub?: string, roles?: Role[]): Promise<string>;
}

export interface Stack {
  gw: GatewayEndpoint;
  /** The in-process scheduler (undefined when it runs as its own process). */
  sched: RunningScheduler | undefined;
  registry: NodeRegistry;
  client: SchedulerClient;
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
   * Run the gateway and the scheduler as their own processes (`bun gateway/main.ts`,
   * `bun scheduler/main.ts`, as in production) instead of in this one — so a benchmark's clients
   * do not share an event loop with what they measure. Not with the fake driver.
   */
  processes?: boolean;
  log?: Logger;
}

/** The environment the gateway and scheduler processes need to run with `config`. */
export function stackEnv(config: Config, kind: StackDriver, gatewayPort: number): Record<string, string> {
  const sec = (ms: number) => String(ms / 1000);
  return {
    PATH: process.env.PATH ?? "",
    REDIS_URL: config.redisUrl,
    REDIS_PREFIX: config.redisPrefix,
    JWT_SECRET: TEST_JWT_SECRET,
    HOST: "127.0.0.1",
    PORT: String(gatewayPort),
    HTTP_RATE_LIMIT: String(config.httpRateLimit),
    WS_RATE_LIMIT: String(config.wsRateLimit),
    WS_IP_RATE_LIMIT: String(config.wsIpRateLimit),
    JOIN_WAIT_TIMEOUT: sec(config.joinWaitTimeoutMs),
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

function inProcessDriver(kind: StackDriver, fleet: string, config: Config): NodeDriver {
  if (kind === "docker") return new DockerDriver({ fleet, image: NODE_IMAGE, network: "host", bindAddress: config.nodeBindAddress, memoryMb: 128, cpus: 0.5 });
  if (kind === "process") return new ProcessDriver({ fleet, stateDir: `${config.dataDir}/process-nodes`, bindAddress: config.nodeBindAddress });
  return new FakeDriver({ useSpecPort: true });
}

async function stopProcess(p: Subprocess): Promise<void> {
  if (p.exitCode !== null) return;
  p.kill("SIGTERM");
  await Promise.race([p.exited, Bun.sleep(30_000)]);
  if (p.exitCode === null) p.kill("SIGKILL");
}

export async function startStack(kind: StackDriver, overrides: Partial<Config> = {}, opts: StackOptions = {}): Promise<Stack> {
  const log = opts.log ?? silentLogger;
  const t = testRedis(`stack-${kind}`);
  const fleet = fleetName(t.prefix);
  const common: Partial<Config> = { schedulerMetricsPort: 0, nodeImage: NODE_IMAGE, stopNodesOnExit: true, nodeRoomMode: "echo", ...portRange(), ...overrides };
  const config = gatewayTestConfig(t.prefix, common);
  if (kind === "docker") await ensureNodeImage({ image: NODE_IMAGE });
  const procs: Subprocess[] = [];
  let gw: GatewayEndpoint;
  let gwStop: () => Promise<void>;
  let sched: RunningScheduler | undefined;
  if (opts.processes && kind !== "fake") {
    const port = freePort();
    const env = stackEnv(config, kind, port);
    procs.push(Bun.spawn([process.execPath, "scheduler/main.ts"], { cwd: ROOT, env, stdout: "inherit", stderr: "inherit" }));
    const gwProc = Bun.spawn([process.execPath, "gateway/main.ts"], { cwd: ROOT, env, stdout: "ignore", stderr: "inherit" });
    procs.push(gwProc);
    const url = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await fetch(`${url}/health`).catch(() => undefined))?.ok, 15_000, "gateway process", 50);
    const auth = new JwtAuthenticator(jwtKeysFromConfig(config, TEST_JWT_SECRET), config.jwtTtlMs);
    let n = 0;
    gw = {
      url,
      wsUrl: url.replace(/^http/, "ws"),
      async token(sub = `p_bench${++n}_${crypto.randomUUID().slice(0, 6)}`, roles: Role[] = ["player"]) {
        return (await auth.sign({ sub, name: `name-${sub}`, region: "local", roles }, Date.now())).token;
      },
    };
    gwStop = () => stopProcess(gwProc);
  } else {
    const tg = await startTestGateway(t.prefix, common);
    gw = tg;
    gwStop = () => tg.stop();
    sched = await startScheduler({ config, driver: inProcessDriver(kind, fleet, config), log, matchmaker: false, sweepSessions: false });
  }
  const registry = sched?.registry ?? new RedisNodeRegistry(t.redis, t.keys, () => t.connect());
  const queues = sched ? undefined : createQueues(bullConnection(config.redisUrl), t.keys);
  const client = sched?.client ?? createSchedulerClient(queues!);
  return {
    gw,
    sched,
    registry,
    client,
    config,
    t,
    fleet,
    async stop() {
      await gwStop().catch(() => {});
      if (sched) await sched.close();
      // The scheduler process stops its fleet on exit (STOP_NODES_ON_EXIT=true).
      for (const p of procs) await stopProcess(p);
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

/** The join answer (CONTRACT), as the client SDK types it. */
export type JoinAnswer = JoinResult;

/** POST /v1/players/join as a new player. */
export async function join(gw: GatewayEndpoint, token?: string): Promise<{ token: string; body: JoinAnswer; ms: number }> {
  const tok = token ?? (await gw.token());
  const t0 = performance.now();
  const res = await fetch(`${gw.url}/v1/players/join`, { method: "POST", headers: { authorization: `Bearer ${tok}`, "content-type": "application/json" }, body: "{}" });
  const ms = performance.now() - t0;
  if (res.status !== 201) throw new Error(`join: ${res.status} ${await res.text()}`);
  return { token: tok, body: (await res.json()) as JoinAnswer, ms };
}

export async function heartbeat(gw: GatewayEndpoint, token: string, sessionId: string): Promise<number> {
  const res = await fetch(`${gw.url}/v1/players/heartbeat`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify({ sessionId }) });
  await res.body?.cancel().catch(() => {});
  return res.status;
}

/** Opens the join's WebSocket, sends one frame and waits for it to come back (echo nodes). */
export async function firstFrame(gw: GatewayEndpoint, token: string, j: JoinAnswer, timeoutMs = 5_000): Promise<{ ms: number; close(): void }> {
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
