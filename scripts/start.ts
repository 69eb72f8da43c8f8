/**
 * `npm start`: the whole system on one machine, as one supervised process tree.
 *   - validates the configuration first (every problem at once, non-zero exit)
 *   - Redis: REDIS_URL if it answers, else a local redis-server (installed with apt-get when root)
 *   - node driver: Docker when an engine answers (building the node image first), else processes
 *   - runs gateway + scheduler (+ templater when haproxy is installed) with prefixed logs,
 *     restarting a child that dies, and prints the URLs
 *   - refuses to start, before starting anything, when a port it needs is held by another process
 *     (one line naming the variable to change)
 *   - Ctrl-C / SIGTERM (to it alone or to its whole process group) stops everything it started
 *     within 15 s, in order: the nodes (the scheduler removes them, stopped ones too), then the
 *     processes, then — last — the Redis and HAProxy it started, which run in process groups of
 *     their own so a terminal's Ctrl-C does not stop them first
 *   - when it is killed outright (SIGKILL), its children notice their parent is gone and exit, and
 *     its guard (scripts/supervisor-guard.ts, in a session of its own) stops Redis and HAProxy,
 *     all within 5 s
 *   - survives SIGHUP and a closed stdout (EPIPE)
 */
import { spawn as spawnProcess } from "node:child_process";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Subprocess } from "bun";
import { realClock } from "../core/clock.ts";
import { loadConfigOrExit, type Config } from "../core/config.ts";
import { createLogger } from "../core/log.ts";
import { supervisorPidFrom, watchSupervisor } from "../core/process-lifecycle.ts";
import { resolveJwtSecret } from "../core/secrets.ts";
import { HaproxyControl } from "../haproxy/control.ts";
import { edgePaths } from "../haproxy/render.ts";
import type { SupervisorState } from "./supervisor-guard.ts";
import { busyPorts, busyPortsMessage, dockerAnswers, ensureRedis, have, type PortClaim, type RedisHandle } from "./services.ts";

const root = resolve(import.meta.dir, "..");
process.chdir(root);

// A closed stdout/stderr (the terminal or the pipe reading us went away) is not fatal: EPIPE is
// dropped, and so is every later line. SIGHUP (terminal closed) does not stop the fleet.
let outputClosed = false;
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") outputClosed = true;
    else throw err;
  });
}
function write(out: NodeJS.WriteStream, text: string): void {
  if (outputClosed) return;
  try {
    out.write(text);
  } catch {
    outputClosed = true;
  }
}
const say = (l: string) => write(process.stdout, `[start] ${l}\n`);
process.on("SIGHUP", () => say("SIGHUP ignored (Ctrl-C or SIGTERM stops the fleet)"));

const config: Config = loadConfigOrExit(process.env);

const withHaproxy = have("haproxy") && existsSync(resolve(root, "haproxy/main.ts"));
// The templater runs HAProxy as a daemon (its own session): it outlives the templater, and this
// supervisor stops it last. HAPROXY_MODE=child keeps it the templater's child instead.
const haproxyMode = process.env.HAPROXY_MODE ?? "daemon";
const haproxyPaths = edgePaths(resolve(root, config.haproxyConfig));

// Every port the stack will listen on, checked before anything starts: a busy one is refused in
// one line naming its variable (an orphan holding the metrics port must not make the children
// crash-loop).
{
  const claims: PortClaim[] = [
    { variable: "PORT", host: config.host, port: config.port },
    { variable: "SCHEDULER_METRICS_PORT", host: config.host, port: config.schedulerMetricsPort },
  ];
  if (withHaproxy) {
    claims.push({ variable: "TEMPLATER_METRICS_PORT", host: "127.0.0.1", port: config.templaterMetricsPort });
    claims.push({ variable: "HAPROXY_PORT", host: config.haproxyBind, port: config.haproxyPort });
    claims.push({ variable: "HAPROXY_STATS_PORT", host: config.haproxyBind, port: config.haproxyStatsPort });
    if (config.haproxyTlsCert) claims.push({ variable: "HAPROXY_TLS_PORT", host: config.haproxyBind, port: config.haproxyTlsPort });
  }
  const busy = busyPorts(claims);
  if (busy.length > 0) {
    console.error(`[start] ${busyPortsMessage(busy)}`);
    process.exit(1);
  }
}

let stopping = false;
let redis: RedisHandle | undefined;
const children = new Map<string, { proc: Subprocess; restarts: number[] }>();

/** The guard that cleans up if this process is killed outright, and the state it reads. */
const runDir = resolve(root, config.dataDir, "run");
mkdirSync(runDir, { recursive: true });
const stateFile = resolve(runDir, `supervisor-${process.pid}.json`);
let guardPid: number | undefined;
function writeState(): void {
  const state: SupervisorState = {
    supervisorPid: process.pid,
    children: [...children.values()].map((c) => c.proc.pid),
    services: [
      ...(redis?.pid ? [{ name: "redis", pid: redis.pid }] : []),
      ...(withHaproxy && haproxyMode === "daemon" ? [{ name: "haproxy", pidFile: haproxyPaths.pidFile }] : []),
    ],
  };
  try {
    writeFileSync(stateFile, JSON.stringify(state));
  } catch (e) {
    say(`could not write ${stateFile}: ${e instanceof Error ? e.message : String(e)}`);
  }
}
function startGuard(): void {
  writeState();
  const guard = spawnProcess(process.execPath, [resolve(root, "scripts/supervisor-guard.ts"), String(process.pid), stateFile], {
    cwd: root,
    detached: true,
    stdio: "ignore",
  });
  guard.unref();
  guardPid = guard.pid;
}

/** Stops the HAProxy the templater started as a daemon (master and every worker). */
async function stopHaproxy(): Promise<void> {
  if (!withHaproxy || haproxyMode !== "daemon") return;
  const control = new HaproxyControl({ bin: config.haproxyBin, paths: haproxyPaths, clock: realClock, log: createLogger("start", "warn"), reloadTimeoutMs: 2000, mode: "daemon" });
  await control.stop();
  rmSync(haproxyPaths.pidFile, { force: true });
}

async function shutdown(code: number): Promise<never> {
  if (stopping) return new Promise(() => {});
  stopping = true;
  const started = Date.now();
  say("stopping ...");
  // The backstop: whatever hangs, the supervisor is gone within its bound.
  setTimeout(() => {
    say("stop took too long; exiting");
    process.exit(code || 1);
  }, config.shutdownTimeoutMs + 4000).unref();
  // 1. The processes (each bounded by SHUTDOWN_TIMEOUT; the scheduler removes the nodes first).
  for (const { proc } of children.values()) if (proc.exitCode === null) proc.kill("SIGTERM");
  await Promise.race([Promise.all([...children.values()].map((c) => c.proc.exited)), Bun.sleep(config.shutdownTimeoutMs + 500)]);
  for (const [name, { proc }] of children) {
    if (proc.exitCode === null) {
      say(`${name} did not stop in time; killing it`);
      proc.kill("SIGKILL");
    }
  }
  // 2. Last, the services they used: HAProxy and Redis.
  await Promise.all([stopHaproxy().catch((e: unknown) => say(`HAProxy stop failed: ${e instanceof Error ? e.message : String(e)}`)), redis?.stop(2000)]);
  if (guardPid) {
    try {
      process.kill(guardPid, "SIGTERM");
    } catch {
      /* gone */
    }
  }
  rmSync(stateFile, { force: true });
  say(`stopped in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  process.exit(code);
}
process.on("SIGINT", () => void shutdown(0));
process.on("SIGTERM", () => void shutdown(0));
// Run through `npm start` (scripts/run.mjs): a launcher killed outright takes the fleet down with it.
watchSupervisor(supervisorPidFrom(process.env.FLEETGATE_LAUNCHER_PID), () => {
  say("the launcher (npm start) is gone; stopping");
  void shutdown(0);
});

try {
  redis = await ensureRedis(config.redisUrl, config.dataDir, say, { detached: true });
} catch (e) {
  console.error(`[start] ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
}
startGuard();

// Node driver: docker when an engine answers (and the image builds), else processes.
let driver = config.nodeDriver;
if (driver === "auto" || driver === "docker") {
  const engine = await dockerAnswers();
  let imageOk = false;
  if (engine) {
    try {
      const { ensureNodeImage } = (await import(resolve(root, "node/build-image.ts"))) as {
        ensureNodeImage: (opts: { image?: string; log?: (l: string) => void }) => Promise<unknown>;
      };
      await ensureNodeImage({ image: config.nodeImage, log: (l) => say(`node image: ${l}`) });
      imageOk = true;
    } catch (e) {
      say(`node image could not be built: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  if (engine && imageOk) driver = "docker";
  else if (driver === "docker") {
    console.error("[start] NODE_DRIVER=docker but no Docker engine answers or the node image could not be built");
    await shutdown(1);
  } else driver = "process";
}
say(`node driver: ${driver}${driver === "process" ? " (no Docker engine answered; game-server nodes run as local processes)" : ` (image ${config.nodeImage})`}`);

const jwtSecret = resolveJwtSecret(config);

const childEnv: Record<string, string> = {
  ...(process.env as Record<string, string>),
  REDIS_URL: config.redisUrl,
  JWT_SECRET: jwtSecret,
  NODE_DRIVER: driver,
  STOP_NODES_ON_EXIT: process.env.STOP_NODES_ON_EXIT ?? "true",
  HAPROXY_MODE: haproxyMode,
  // Children shut down when this supervisor is gone (core/process-lifecycle.ts).
  FLEETGATE_SUPERVISOR_PID: String(process.pid),
  ...(withHaproxy && !process.env.PUBLIC_URL ? { PUBLIC_URL: `ws://127.0.0.1:${config.haproxyPort}` } : {}),
};

const COLORS: Record<string, string> = { gateway: "36", scheduler: "35", templater: "33" };

function pipeLines(name: string, stream: ReadableStream<Uint8Array>, out: NodeJS.WriteStream): void {
  const prefix = process.stdout.isTTY ? `\x1b[${COLORS[name.replace(/-\d+$/, "")] ?? "37"}m[${name}]\x1b[0m ` : `[${name}] `;
  const dec = new TextDecoder();
  let buf = "";
  void (async () => {
    const reader = stream.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        write(out, prefix + buf.slice(0, i) + "\n");
        buf = buf.slice(i + 1);
      }
    }
    if (buf) write(out, prefix + buf + "\n");
  })();
}

function spawnChild(name: string, file: string, extraEnv: Record<string, string> = {}): void {
  const proc = Bun.spawn([process.execPath, file], { cwd: root, env: { ...childEnv, ...extraEnv }, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const entry = children.get(name) ?? { proc, restarts: [] };
  entry.proc = proc;
  children.set(name, entry);
  writeState();
  pipeLines(name, proc.stdout, process.stdout);
  pipeLines(name, proc.stderr, process.stderr);
  void proc.exited.then((code) => {
    if (stopping) return;
    const now = Date.now();
    entry.restarts = entry.restarts.filter((t) => now - t < 60_000);
    if (entry.restarts.length >= 5) {
      say(`${name} exited (code ${code}) 5 times within a minute; stopping everything`);
      void shutdown(1);
      return;
    }
    entry.restarts.push(now);
    say(`${name} exited (code ${code}); restarting in 1 s`);
    setTimeout(() => !stopping && spawnChild(name, file, extraEnv), 1000);
  });
}

// GATEWAY_WORKERS gateway processes (default: one per core) share the port with SO_REUSEPORT and
// the kernel spreads connections across them; each is a replica of its own (own GATEWAY_ID,
// registry entry and presence), so placement and presence stay correct across them.
const workers = config.gatewayWorkers;
for (let i = 1; i <= workers; i++) {
  if (workers === 1) spawnChild("gateway", "gateway/main.ts");
  else spawnChild(`gateway-${i}`, "gateway/main.ts", { GATEWAY_REUSE_PORT: "true", ...(config.gatewayId ? { GATEWAY_ID: `${config.gatewayId}-${i}` } : {}) });
}
if (workers > 1) say(`${workers} gateway processes on port ${config.port} (GATEWAY_WORKERS)`);
spawnChild("scheduler", "scheduler/main.ts");
if (withHaproxy) spawnChild("templater", "haproxy/main.ts");
else say("haproxy is not installed: running without the HAProxy edge (apt-get install haproxy to add it)");

// Wait for the gateway, then print where everything is.
const api = `http://${config.host === "0.0.0.0" ? "127.0.0.1" : config.host}:${config.port}`;
const until = Date.now() + 60_000;
while (!stopping && Date.now() < until) {
  try {
    if ((await fetch(`${api}/health`, { signal: AbortSignal.timeout(1000) })).ok) break;
  } catch {
    /* not up yet */
  }
  await Bun.sleep(200);
}
if (!stopping) {
  const lines = [
    "",
    "fleetgate is running:",
    ...(config.demo ? [`  demo         ${api}/demo  (play: sign in, lobbies, chat, matchmaking)`] : []),
    `  API          ${api}  (docs ${api}/docs)`,
    `  WebSocket    ${withHaproxy ? `ws://127.0.0.1:${config.haproxyPort}` : api.replace("http", "ws")}/v1/connect?room=CODE`,
    `  dashboard    ${api}/admin?token=<admin token>`,
    `  BullMQ board ${api}/admin/queues?token=<admin token>`,
    withHaproxy ? `  HAProxy      http://127.0.0.1:${config.haproxyPort} (edge), http://127.0.0.1:${config.haproxyStatsPort}/stats (stats, user ${config.haproxyStatsUser})` : "  HAProxy      not running (haproxy not installed)",
    `  metrics      ${api}/metrics`,
    "  admin token: npm run token -- --admin",
    "  Ctrl-C stops everything.",
    "",
  ];
  write(process.stdout, lines.join("\n") + "\n");
}
