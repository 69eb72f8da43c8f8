/**
 * `npm start`'s lifecycle (CONTRACT "Processes"), with the real supervisor, its own redis-server
 * on a private port, HAProxy and Docker nodes:
 *   - a port another process holds is refused before anything starts, in one line naming it;
 *   - Ctrl-C to the whole process group stops everything within 15 s, Redis and HAProxy last,
 *     leaving no process and no container (running or stopped), without stack traces;
 *   - start again works; SIGHUP and a closed stdout do not stop the supervisor;
 *   - SIGKILL of the supervisor: its children, Redis and HAProxy are gone within 5 s, and so are
 *     the fleet's containers.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import Docker from "dockerode";
import { redisAnswers } from "../../core/redis.ts";
import { alive, type SupervisorState } from "../../scripts/supervisor-guard.ts";
import { freePort, need, waitFor } from "../support/services.ts";
import { ROOT, stackFixture } from "../support/start-stack.ts";


describe.skipIf(!(need("redis") && need("haproxy") && need("docker")))("npm start lifecycle", () => {
  // npm start starts its own Redis on this port (the test kills and restarts it).
  const redisPort = freePort();
  const redisUrl = `redis://127.0.0.1:${redisPort}`;
  const fx = stackFixture("life", { redisUrl });
  const { dataDir, api, edge, label } = fx;
  const ports = { ...fx.ports, redis: redisPort };
  const docker = new Docker();
  const started: ChildProcess[] = [];
  /** Every pid any run's supervisor reported (children and services), for the final sweep. */
  const seenPids = new Set<number>();

  const env = (extra: Record<string, string> = {}) => ({
    ...fx.baseEnv,
    NODE_ROOM_MODE: "echo",
    NODE_DRAIN_SECONDS: "0.5",
    GATEWAY_WORKERS: "1",
    SHUTDOWN_TIMEOUT: "8",
    LOG_LEVEL: "info",
    LOG_FORMAT: "pretty",
    PUBLIC_URL: "",
    ...extra,
  });

  /** The supervisor in a process group of its own, as a terminal runs it (so the test can Ctrl-C the group). */
  function startSupervisor(extra: Record<string, string> = {}): { proc: ChildProcess; output: () => string; exited: Promise<number | null> } {
    const proc = spawn(process.execPath, ["scripts/start.ts"], { cwd: ROOT, env: env(extra), detached: true, stdio: ["ignore", "pipe", "pipe"] });
    started.push(proc);
    let out = "";
    proc.stdout?.on("data", (d: Buffer) => (out += d.toString()));
    proc.stderr?.on("data", (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
    return { proc, output: () => out, exited };
  }

  function state(pid: number): SupervisorState {
    const s = JSON.parse(readFileSync(join(dataDir, "run", `supervisor-${pid}.json`), "utf8")) as SupervisorState;
    for (const p of s.children) seenPids.add(p);
    for (const svc of s.services) if (svc.pid) seenPids.add(svc.pid);
    return s;
  }

  function haproxyPid(): number | undefined {
    const f = join(dataDir, "haproxy", "haproxy.pid");
    if (!existsSync(f)) return undefined;
    const n = Number(readFileSync(f, "utf8").trim());
    return n > 1 ? n : undefined;
  }

  async function upAndJoin(): Promise<string> {
    await waitFor(async () => (await fetch(`${api}/health`).catch(() => undefined))?.ok, 40_000, "the gateway", 100);
    await waitFor(async () => (await fetch(`${edge}/health`).catch(() => undefined))?.ok, 15_000, "the gateway behind the edge", 100);
    const guest = (await (await fetch(`${api}/v1/auth/guest`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })).json()) as { token: string };
    const res = await fetch(`${api}/v1/players/join`, { method: "POST", headers: { authorization: `Bearer ${guest.token}`, "content-type": "application/json" }, body: "{}" });
    expect(res.status).toBe(201);
    return ((await res.json()) as { nodeId: string }).nodeId;
  }

  const containers = async () => docker.listContainers({ all: true, filters: { label: [label] } });

  afterAll(async () => {
    for (const p of started) if (p.pid && alive(p.pid)) p.kill("SIGKILL");
    const hp = haproxyPid();
    if (hp && alive(hp)) process.kill(hp, "SIGKILL");
    for (const pid of seenPids) if (alive(pid)) process.kill(pid, "SIGKILL");
    await Promise.all((await containers()).map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => {})));
    rmSync(dataDir, { recursive: true, force: true });
  });

  test("a busy port is refused before anything starts, in one line naming the variable", async () => {
    const holder = Bun.listen({ hostname: "127.0.0.1", port: ports.sched, socket: { data() {} } });
    try {
      const s = startSupervisor();
      const code = await Promise.race([s.exited, Bun.sleep(15_000).then(() => "timeout")]);
      expect(code).toBe(1);
      const lines = s.output().trim().split("\n");
      expect(lines.length).toBe(1);
      expect(lines[0]).toContain(`port ${ports.sched} (SCHEDULER_METRICS_PORT)`);
      // Nothing started: not even Redis.
      expect(await redisAnswers(redisUrl, 300)).toBe(false);
    } finally {
      holder.stop(true);
    }
    // The Redis port held by something that is not Redis: named as REDIS_URL.
    const notRedis = Bun.listen({ hostname: "127.0.0.1", port: ports.redis, socket: { data() {} } });
    try {
      const s = startSupervisor();
      expect(await Promise.race([s.exited, Bun.sleep(15_000).then(() => "timeout")])).toBe(1);
      const lines = s.output().trim().split("\n");
      expect(lines.length).toBe(1);
      expect(lines[0]).toContain(`port ${ports.redis} (REDIS_URL)`);
    } finally {
      notRedis.stop(true);
    }
  }, 30_000);

  test("Ctrl-C to the process group stops nodes, processes, then Redis and HAProxy, within 15 s; start again works, also with Redis gone first", async () => {
    for (let run = 1; run <= 2; run++) {
      const s = startSupervisor();
      const nodeId = await upAndJoin();
      expect((await containers()).some((c) => c.Labels["fleetgate.node"] === nodeId || c.Names.some((n) => n.includes(nodeId)))).toBe(true);
      const st = state(s.proc.pid!);
      const redisPid = st.services.find((x) => x.name === "redis")?.pid;
      expect(redisPid).toBeGreaterThan(1);
      const hp = await waitFor(() => haproxyPid(), 5000, "HAProxy's pid file", 50);
      // Redis and HAProxy are not in the terminal's process group: a Ctrl-C does not reach them.
      const pgid = (pid: number) => Number(readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")[2]);
      expect(pgid(redisPid!)).not.toBe(s.proc.pid);
      expect(pgid(hp!)).not.toBe(s.proc.pid);

      if (run === 2) {
        // Redis dies first: every shutdown is still bounded, and the nodes still go (through the driver).
        process.kill(redisPid!, "SIGKILL");
        await waitFor(() => s.output().includes("Redis unreachable"), 5000, "the outage to be noticed", 50);
      }
      const t0 = Date.now();
      process.kill(-s.proc.pid!, "SIGINT");
      const code = await Promise.race([s.exited, Bun.sleep(20_000).then(() => "timeout")]);
      const secs = (Date.now() - t0) / 1000;
      console.log(`run ${run}: Ctrl-C to the process group → stopped in ${secs.toFixed(1)} s`);
      expect(code).toBe(0);
      expect(secs).toBeLessThan(15);
      const out = s.output();
      expect(out).toContain("[start] stopped in");
      // No process of the stack left, and no container, running or stopped.
      for (const pid of [...st.children, redisPid!, hp!]) expect(alive(pid)).toBe(false);
      expect(await containers()).toEqual([]);
      expect(await fetch(`${api}/health`).then(() => "up", () => "down")).toBe("down");
      // No stack traces and no storm of Redis errors on the way down.
      expect(out).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
      // At most one outage line per process (gateway, scheduler, templater), no per-retry errors.
      const lines = out.split("\n");
      expect(lines.filter((l) => l.includes("Redis unreachable")).length).toBeLessThanOrEqual(3);
      expect(lines.filter((l) => /ECONNREFUSED|Connection is closed/.test(l) && !l.includes("Redis unreachable")).length).toBeLessThanOrEqual(3);
      expect(readdirSync(join(dataDir, "run")).filter((f) => f.startsWith("supervisor-"))).toEqual([]);
    }
  }, 150_000);

  test("SIGHUP and a closed stdout do not stop it; SIGKILL of the supervisor: everything it started is gone within 5 s", async () => {
    const s = startSupervisor();
    await upAndJoin();
    const st = state(s.proc.pid!);
    const redisPid = st.services.find((x) => x.name === "redis")!.pid!;
    const hp = await waitFor(() => haproxyPid(), 5000, "HAProxy's pid file", 50);

    // The terminal goes away: its stdout is closed, then SIGHUP. The supervisor writes a line on SIGHUP (EPIPE).
    s.proc.stdout!.destroy();
    s.proc.stderr!.destroy();
    process.kill(s.proc.pid!, "SIGHUP");
    await Bun.sleep(500);
    expect(alive(s.proc.pid!)).toBe(true);
    expect((await fetch(`${api}/health`)).ok).toBe(true);
    for (const pid of st.children) expect(alive(pid)).toBe(true);

    const t0 = Date.now();
    process.kill(s.proc.pid!, "SIGKILL");
    const gone = [...st.children, redisPid, hp];
    await waitFor(() => gone.every((pid) => !alive(pid)), 8_000, "the supervisor's children and services to exit", 50).catch(() => undefined);
    const secs = (Date.now() - t0) / 1000;
    console.log(`supervisor SIGKILLed → children, Redis and HAProxy gone in ${secs.toFixed(1)} s`);
    expect(gone.filter(alive)).toEqual([]);
    expect(secs).toBeLessThan(5);
    // The scheduler removed the fleet's nodes on its way out.
    await waitFor(async () => (await containers()).length === 0, 5_000, "the fleet's containers to be removed", 100);
  }, 90_000);
});
