/**
 * `npm start`: the whole system on one machine, as one supervised process tree.
 *   - validates the configuration first (every problem at once, non-zero exit)
 *   - Redis: REDIS_URL if it answers, else a local redis-server (installed with apt-get when root)
 *   - node driver: Docker when an engine answers (building the node image first), else processes
 *   - runs gateway + scheduler (+ templater when haproxy is installed) with prefixed logs,
 *     restarting a child that dies, and prints the URLs
 *   - Ctrl-C / SIGTERM stops everything it started: children, their nodes, the Redis it started.
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import type { Subprocess } from "bun";
import { loadConfigOrExit, type Config } from "../core/config.ts";
import { resolveJwtSecret } from "../core/secrets.ts";
import { dockerAnswers, ensureRedis, have, type RedisHandle } from "./services.ts";

const root = resolve(import.meta.dir, "..");
process.chdir(root);
const say = (l: string) => console.log(`[start] ${l}`);

const config: Config = loadConfigOrExit(process.env);

let stopping = false;
let redis: RedisHandle | undefined;
const children = new Map<string, { proc: Subprocess; restarts: number[] }>();

async function shutdown(code: number): Promise<never> {
  if (stopping) return new Promise(() => {});
  stopping = true;
  say("stopping ...");
  for (const { proc } of children.values()) if (proc.exitCode === null) proc.kill("SIGTERM");
  const deadline = Bun.sleep(20_000);
  await Promise.race([Promise.all([...children.values()].map((c) => c.proc.exited)), deadline]);
  for (const [name, { proc }] of children) {
    if (proc.exitCode === null) {
      say(`${name} did not stop in time; killing it`);
      proc.kill("SIGKILL");
    }
  }
  await redis?.stop();
  say("stopped");
  process.exit(code);
}
process.on("SIGINT", () => void shutdown(0));
process.on("SIGTERM", () => void shutdown(0));

try {
  redis = await ensureRedis(config.redisUrl, config.dataDir, say);
} catch (e) {
  console.error(`[start] ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
}

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

const withHaproxy = have("haproxy") && existsSync(resolve(root, "haproxy/main.ts"));
const childEnv: Record<string, string> = {
  ...(process.env as Record<string, string>),
  REDIS_URL: config.redisUrl,
  JWT_SECRET: jwtSecret,
  NODE_DRIVER: driver,
  STOP_NODES_ON_EXIT: process.env.STOP_NODES_ON_EXIT ?? "true",
  // On one machine HAProxy is part of the tree `npm start` owns: it stops with the templater.
  HAPROXY_MODE: process.env.HAPROXY_MODE ?? "child",
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
        out.write(prefix + buf.slice(0, i) + "\n");
        buf = buf.slice(i + 1);
      }
    }
    if (buf) out.write(prefix + buf + "\n");
  })();
}

function spawnChild(name: string, file: string, extraEnv: Record<string, string> = {}): void {
  const proc = Bun.spawn([process.execPath, file], { cwd: root, env: { ...childEnv, ...extraEnv }, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const entry = children.get(name) ?? { proc, restarts: [] };
  entry.proc = proc;
  children.set(name, entry);
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
  console.log(lines.join("\n"));
}
