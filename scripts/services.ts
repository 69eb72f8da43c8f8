/**
 * Set-up of the machine services fleetgate runs on: Redis (always), the Docker engine, HAProxy and
 * Chromium (tests). Used by scripts/start.ts and scripts/test.ts. Installs with apt-get only when
 * we are root; otherwise says in one line what to install.
 */
import { spawn as spawnProcess, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { redisAnswers } from "../core/redis.ts";

export type Say = (line: string) => void;

const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
let aptUpdated = false;

export function have(cmd: string): boolean {
  return Bun.which(cmd) !== null || existsSync(`/usr/sbin/${cmd}`) || existsSync(`/usr/bin/${cmd}`);
}

/** apt-get installs `packages` when we are root; returns false (after saying why) otherwise. */
export function aptInstall(packages: string[], say: Say): boolean {
  if (!isRoot || !have("apt-get")) {
    say(`missing: ${packages.join(" ")} — install it (e.g. sudo apt-get install -y ${packages.join(" ")}) and run again`);
    return false;
  }
  const t = Date.now();
  say(`installing ${packages.join(" ")} with apt-get ...`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  if (!aptUpdated) {
    Bun.spawnSync(["apt-get", "update", "-qq"], { env, stdout: "ignore", stderr: "ignore" });
    aptUpdated = true;
  }
  const r = Bun.spawnSync(["apt-get", "install", "-y", "-qq", "--no-install-recommends", ...packages], { env, stdout: "ignore", stderr: "pipe" });
  if (r.exitCode !== 0) {
    say(`apt-get install ${packages.join(" ")} failed: ${r.stderr.toString().trim().split("\n").slice(-3).join(" | ")}`);
    return false;
  }
  say(`installed ${packages.join(" ")} in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  return true;
}

export interface RedisHandle {
  url: string;
  /** The pid of the redis-server we started, if we did. */
  pid: number | undefined;
  /** Stops the redis-server we started (SIGTERM; SIGKILL after `timeoutMs`, default 5 s). */
  stop(timeoutMs?: number): Promise<void>;
}

/**
 * Uses `url` when Redis answers there; otherwise, for a local URL, starts `redis-server` with its
 * data under `dataDir/redis` (append-only file on, so queued scaling jobs survive a restart),
 * installing it first when missing and we are root.
 *
 * `detached`: the redis-server runs in a session (and process group) of its own, its log in
 * `dataDir/redis/redis.log`: a Ctrl-C or SIGTERM to the caller's process group does not reach it,
 * so the caller stops it last, after everything that uses it (`npm start`).
 */
export async function ensureRedis(url: string, dataDir: string, say: Say, opts: { detached?: boolean } = {}): Promise<RedisHandle> {
  const none = { url, pid: undefined, stop: async () => {} };
  if (await redisAnswers(url, 700)) {
    say(`redis: using ${url}`);
    return none;
  }
  const u = new URL(url);
  if (!["127.0.0.1", "localhost", "::1", "[::1]"].includes(u.hostname)) {
    throw new Error(`Redis at ${url} does not answer (it is not local, so it is not started here)`);
  }
  // Something that is not Redis holds the port: say so in one line, naming the variable.
  const busy = busyPorts([{ variable: "REDIS_URL", host: "127.0.0.1", port: Number(u.port || "6379") }]);
  if (busy.length > 0) throw new Error(`${busyPortsMessage(busy)} (no Redis answers there)`);
  if (!have("redis-server") && !aptInstall(["redis-server"], say)) throw new Error("redis-server is required");
  const dir = resolve(dataDir, "redis");
  mkdirSync(dir, { recursive: true });
  const port = u.port || "6379";
  const bin = Bun.which("redis-server") ?? "/usr/bin/redis-server";
  const args = [bin, "--port", port, "--bind", "127.0.0.1", "--dir", dir, "--appendonly", "yes", "--save", "", "--daemonize", "no", "--loglevel", "warning"];
  if (opts.detached) args.push("--logfile", resolve(dir, "redis.log"));
  const proc: ChildProcess = spawnProcess(args[0]!, args.slice(1), { detached: opts.detached === true, stdio: ["ignore", "ignore", opts.detached ? "ignore" : "inherit"] });
  let exitCode: number | null = null;
  const exited = new Promise<void>((done) => proc.once("exit", (code, sig) => ((exitCode = code ?? (sig ? 128 : 1)), done())));
  proc.once("error", () => (exitCode = 127));
  const end = Date.now() + 10_000;
  while (!(await redisAnswers(url, 300))) {
    if (exitCode !== null || Date.now() > end) {
      if (exitCode === null) proc.kill("SIGKILL");
      throw new Error(`redis-server did not start on port ${port} (exit ${exitCode})${opts.detached ? ` — see ${resolve(dir, "redis.log")}` : ""}`);
    }
    await Bun.sleep(50);
  }
  say(`redis: started redis-server on 127.0.0.1:${port} (data in ${dir}, append-only${opts.detached ? ", own process group" : ""})`);
  return {
    url,
    pid: proc.pid,
    async stop(timeoutMs = 5000) {
      if (exitCode !== null) return;
      proc.kill("SIGTERM");
      await Promise.race([exited, Bun.sleep(timeoutMs)]);
      if (exitCode === null) {
        proc.kill("SIGKILL");
        await Promise.race([exited, Bun.sleep(1000)]);
      }
    },
  };
}

/** True when the local Docker engine answers /_ping. */
export async function dockerAnswers(socket = "/var/run/docker.sock"): Promise<boolean> {
  if (!existsSync(socket)) return false;
  try {
    const res = await fetch("http://localhost/_ping", { unix: socket, signal: AbortSignal.timeout(1500) } as RequestInit);
    return res.ok;
  } catch {
    return false;
  }
}

/**
 * Makes a Docker engine answer: installs docker.io when missing (root), starts dockerd when no
 * engine answers. dockerd is a machine service: it is left running, like a system daemon.
 */
export async function ensureDocker(say: Say): Promise<boolean> {
  if (await dockerAnswers()) return true;
  if (!have("dockerd") && !aptInstall(["docker.io"], say)) return false;
  if (!isRoot) {
    say("the Docker engine is not running — start it (sudo systemctl start docker) to run the Docker tests");
    return false;
  }
  say("starting dockerd ...");
  const bin = Bun.which("dockerd") ?? "/usr/sbin/dockerd";
  const log = Bun.file("/tmp/fleetgate-dockerd.log");
  // Detached: the engine outlives this command like a system service does.
  const p = Bun.spawn(["setsid", bin], { stdout: log, stderr: log, stdin: "ignore" });
  p.unref();
  const end = Date.now() + 60_000;
  while (!(await dockerAnswers())) {
    if (Date.now() > end) {
      say("dockerd did not answer within 60 s (see /tmp/fleetgate-dockerd.log)");
      return false;
    }
    await Bun.sleep(250);
  }
  say("dockerd is up");
  return true;
}

export function ensureHaproxy(say: Say): boolean {
  if (have("haproxy")) return true;
  return aptInstall(["haproxy"], say);
}

export function ensureChromium(say: Say): boolean {
  if (existsSync("/usr/bin/chromium")) return true;
  return aptInstall(["chromium"], say);
}

/** A port the stack is about to listen on, and the variable that sets it. */
export interface PortClaim {
  variable: string;
  host: string;
  port: number;
}

/** The claims whose port another process already holds (binding it fails now). */
export function busyPorts(claims: readonly PortClaim[]): PortClaim[] {
  const busy: PortClaim[] = [];
  for (const c of claims) {
    if (c.port === 0) continue;
    try {
      const s = Bun.listen({ hostname: c.host, port: c.port, socket: { data() {} } });
      s.stop(true);
    } catch {
      busy.push(c);
    }
  }
  return busy;
}

/** One line naming each busy port and the variable that moves it. */
export function busyPortsMessage(busy: readonly PortClaim[]): string {
  const what = busy.map((b) => `port ${b.port} (${b.variable})`).join(", ");
  const vars = busy.map((b) => b.variable).join(", ");
  return `${what} ${busy.length === 1 ? "is" : "are"} in use by another process: stop it or set ${vars} to a free port`;
}
