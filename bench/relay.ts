/**
 * `npm run bench:relay` — the same WebSocket load, in one run, against:
 *   direct   the reference node (`bun node/main.ts`, ROOM_MODE=echo), no proxy;
 *   haproxy  HAProxy (mode http, timeout tunnel) in front of that node;
 *   gateway  the fleetgate gateway (`bun gateway/main.ts`: JWT auth and room placement on, real
 *            Redis under a random prefix) in front of that node — the main row;
 *   gateway ×2  two gateway processes sharing one port (GATEWAY_REUSE_PORT): one Bun process is one
 *            JS thread while HAProxy 2.6 runs one thread per core, so this is the like-for-like row.
 * Phases: 5,000 idle connections (memory per idle proxied connection: RSS growth ÷ connections,
 * run first so no earlier phase has grown the heap); 1, 200 and 1,000 connections closed-loop;
 * 1,000 connections × 20 msg/s open-loop. For each: msgs/s, RTT p50/p99, the proxy's CPU and
 * memory per connection, frames lost, and the ratios to direct and to HAProxy. For the gateway
 * rows also its garbage collections in the window (JSC's own GC log, BUN_JSC_logGC=1: count,
 * longest and total pause) and its event-loop lag (p99 and max of prom-client's
 * nodejs_eventloop_lag_* from its /metrics, scraped at the window's start and end). The load
 * generator (bench/relay-loadgen.ts) is a separate process per phase. Bounded (about three minutes); every process, file and Redis key is cleaned up.
 * Harness checks only: BENCH_QUICK=1 (tiny phases), BENCH_ONLY=direct|haproxy|gateway,
 * BENCH_PHASES="1000 closed,..." (a subset of the phases, by name).
 */
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../core/config.ts";
import { createKeys } from "../core/keys.ts";
import { RedisNodeRegistry } from "../model/node-registry.ts";
import { createRedis } from "../core/redis.ts";
import { JwtAuthenticator } from "../gateway/auth/jwt.ts";
import type { LoadPhase, LoadResult } from "./relay-loadgen.ts";

const ROOT = join(import.meta.dir, "..");
const BUN = process.execPath;
const PAYLOAD_BYTES = 64;
/** 5,000 idle connections: the gateway holds two sockets each, the node one per target's turn. */
const NEEDED_FDS = 16_384;

interface Proc {
  name: string;
  proc: ReturnType<typeof Bun.spawn>;
  /** Its stdout and stderr. */
  log: string;
}

const cfg = loadConfig(process.env);
const tmp = mkdtempSync(join(tmpdir(), "fg-bench-relay-"));
const prefix = `fgbench-${crypto.randomUUID().slice(0, 8)}`;
const procs: Proc[] = [];
const redis = createRedis(cfg.redisUrl);

function freePort(): number {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const p = s.port;
  s.stop(true);
  return p;
}

/** Soft fd limit of children: raised to the hard limit (or NEEDED_FDS) before exec. */
function fdLimit(): { prefix: string[]; limit: number } {
  const soft = Number(Bun.spawnSync(["sh", "-c", "ulimit -n"]).stdout.toString().trim());
  const hard = Bun.spawnSync(["sh", "-c", "ulimit -Hn"]).stdout.toString().trim();
  if (Number.isFinite(soft) && soft >= NEEDED_FDS) return { prefix: [], limit: soft };
  const target = hard === "unlimited" ? NEEDED_FDS : Math.min(NEEDED_FDS, Number(hard));
  if (target < NEEDED_FDS) console.warn(`warning: fd hard limit ${hard} < ${NEEDED_FDS}; the 5,000-connection phase may fail`);
  return { prefix: ["sh", "-c", `ulimit -n ${target}; exec "$@"`, "sh"], limit: target };
}
const { prefix: FD, limit: FD_LIMIT } = fdLimit();

function spawn(name: string, cmd: string[], env: Record<string, string> = {}): Proc {
  // Output to files (an unread pipe would fill up and stall the process under test).
  const logPath = join(tmp, `${name}.log`);
  const log = Bun.file(logPath);
  const proc = Bun.spawn([...FD, ...cmd], { cwd: ROOT, env: { ...process.env, ...env }, stdout: log, stderr: log });
  const p = { name, proc, log: logPath };
  procs.push(p);
  return p;
}

async function waitHttp(url: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(500) });
      if (r.ok) return;
    } catch {
      /* not yet */
    }
    if (Date.now() > end) throw new Error(`${url} did not answer within ${ms} ms`);
    await Bun.sleep(50);
  }
}

async function waitTcp(port: number, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const ok = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } }).then(
      (s) => (s.end(), true),
      () => false,
    );
    if (ok) return;
    if (Date.now() > end) throw new Error(`port ${port} did not open within ${ms} ms`);
    await Bun.sleep(50);
  }
}

const CLK_TCK = Number(Bun.spawnSync(["getconf", "CLK_TCK"]).stdout.toString().trim()) || 100;

/** The pid that does the work: the child itself, or the program `sh -c exec` became (same pid). */
function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / CLK_TCK; // utime + stime
  } catch {
    return 0;
  }
}

/** Per thread of `pids`: ns spent runnable but waiting for a CPU so far (schedstat, field 2). */
function runQueueNs(pids: number[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const pid of pids) {
    try {
      for (const tid of readdirSync(`/proc/${pid}/task`)) {
        try {
          out.set(`${pid}/${tid}`, Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[1]));
        } catch {
          /* the thread ended */
        }
      }
    } catch {
      /* the process ended */
    }
  }
  return out;
}

/** Seconds waited between two samples; threads born in between count from zero, ended ones are gone. */
function runQueueSecondsBetween(a: Map<string, number>, b: Map<string, number>): number {
  let ns = 0;
  for (const [tid, v] of b) ns += Math.max(0, v - (a.get(tid) ?? 0));
  return ns / 1e9;
}

/** Summed over the processes of one target (gateway ×2). */
function cpuSecondsOf(pids: number[]): number {
  return pids.reduce((a, p) => a + cpuSeconds(p), 0);
}

function rssKbOf(pids: number[]): number {
  return pids.reduce((a, p) => a + rssKb(p), 0);
}

function rssKb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** Garbage collections JSC logged (BUN_JSC_logGC=1) in `path` between two offsets: count and pauses. */
function gcPausesIn(text: string): { count: number; maxMs: number; totalMs: number } {
  let count = 0;
  let maxMs = 0;
  let totalMs = 0;
  // One line per collection: "[GC<0x…>: START M 8912kb => EdenCollection, … p=0.503017ms (max …), cycle … END]".
  for (const m of text.matchAll(/: START [^\n]*? p=([\d.]+)ms/g)) {
    const ms = Number(m[1]);
    count++;
    totalMs += ms;
    if (ms > maxMs) maxMs = ms;
  }
  return { count, maxMs, totalMs };
}

function gcPausesBetween(paths: string[], from: number[], to: number[]): { count: number; maxMs: number; totalMs: number } {
  const all = { count: 0, maxMs: 0, totalMs: 0 };
  paths.forEach((path, i) => {
    const len = to[i]! - from[i]!;
    if (len <= 0) return;
    const fd = openSync(path, "r");
    const buf = Buffer.alloc(len);
    readSync(fd, buf, 0, len, from[i]!);
    closeSync(fd);
    const g = gcPausesIn(buf.toString("latin1"));
    all.count += g.count;
    all.totalMs += g.totalMs;
    all.maxMs = Math.max(all.maxMs, g.maxMs);
  });
  return all;
}

/** prom-client's event-loop lag gauges (seconds) from a /metrics text, in ms. */
function lagFrom(text: string): { p99Ms: number; maxMs: number } | undefined {
  const p99 = /^nodejs_eventloop_lag_p99_seconds(?:\{[^}]*\})? ([\d.e+-]+)/m.exec(text);
  const max = /^nodejs_eventloop_lag_max_seconds(?:\{[^}]*\})? ([\d.e+-]+)/m.exec(text);
  if (!p99 || !max) return undefined;
  return { p99Ms: Number(p99[1]) * 1000, maxMs: Number(max[1]) * 1000 };
}

async function scrape(url: string | undefined): Promise<string> {
  if (!url) return "";
  try {
    return await (await fetch(url, { signal: AbortSignal.timeout(2000) })).text();
  } catch {
    return "";
  }
}

/** Called when the load generator starts and ends its measured window. */
interface WindowHooks {
  onStart?: () => void;
  onEnd?: () => void;
}

async function runLoad(phase: LoadPhase, hooks: WindowHooks = {}): Promise<LoadResult> {
  const p = Bun.spawn([...FD, BUN, "bench/relay-loadgen.ts", JSON.stringify(phase)], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  const kill = setTimeout(() => p.kill("SIGKILL"), phase.durationMs + phase.connectTimeoutMs + 15_000);
  let result: LoadResult | undefined;
  let buffered = "";
  const decoder = new TextDecoder();
  const reader = p.stdout.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += decoder.decode(value, { stream: true });
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (!line) continue;
      const msg = JSON.parse(line) as { event?: string } & Partial<LoadResult>;
      if (msg.event === "start") hooks.onStart?.();
      else if (msg.event === "end") hooks.onEnd?.();
      else result = msg as LoadResult;
    }
  }
  await p.exited;
  clearTimeout(kill);
  if (!result) throw new Error(`load generator failed: ${(await new Response(p.stderr).text()).slice(0, 300)}`);
  return result;
}

interface Row {
  target: string;
  phase: string;
  idle: boolean;
  r: LoadResult;
  cpuPct: number;
  /** Share of the window the proxy's threads spent runnable but waiting for a CPU. */
  waitPct: number;
  cpuUsPerMsg: number;
  memKbPerConn: number;
  nodeCpuPct: number;
  /** The proxy's garbage collections in the window (gateway rows only). */
  gc: { count: number; maxMs: number; totalMs: number } | undefined;
  /** The proxy's event-loop lag over the window (gateway rows only; one process of gateway ×2). */
  lag: { p99Ms: number; maxMs: number } | undefined;
}

async function measure(target: string, phaseName: string, phase: LoadPhase, proxyPids: number[], nodePid: number, obs: { logs?: string[]; metricsUrl?: string } = {}): Promise<Row> {
  const logs = obs.logs ?? [];
  let logFrom: number[] = [];
  let logTo: number[] = [];
  let lagReset: Promise<string> = Promise.resolve("");
  let lagRead: Promise<string> = Promise.resolve("");
  const watch = proxyPids.length ? proxyPids : [nodePid];
  const rss0 = rssKbOf(watch);
  let peak = rss0;
  let rssEnd = rss0;
  const sampler = setInterval(() => (peak = Math.max(peak, rssKbOf(watch))), 100);
  // CPU is sampled at the load generator's window markers: connection set-up and the drain
  // after the window are not in the figures.
  let cpu0 = 0;
  let wait0 = new Map<string, number>();
  let waited = 0;
  let ncpu0 = 0;
  let t0 = 0;
  let cpu = 0;
  let ncpu = 0;
  let wall = 1;
  const r = await runLoad(phase, {
    onStart: () => {
      logFrom = logs.map(fileSize);
      lagReset = scrape(obs.metricsUrl); // prom-client resets its lag histogram on every scrape
      cpu0 = cpuSecondsOf(watch);
      wait0 = runQueueNs(watch);
      ncpu0 = cpuSeconds(nodePid);
      t0 = performance.now();
    },
    onEnd: () => {
      cpu = cpuSecondsOf(watch) - cpu0;
      waited = runQueueSecondsBetween(wait0, runQueueNs(watch));
      rssEnd = rssKbOf(watch);
      ncpu = cpuSeconds(nodePid) - ncpu0;
      wall = (performance.now() - t0) / 1000;
      logTo = logs.map(fileSize);
      lagRead = lagReset.then(() => scrape(obs.metricsUrl));
    },
  });
  const lagText = await lagRead;
  clearInterval(sampler);
  // Under load: the peak (buffers and garbage included). Idle: what is still held at the end of
  // the silent window, after the set-up's garbage had time to go.
  const held = phase.mode === "idle" ? rssEnd : peak;
  return {
    target,
    phase: phaseName,
    idle: phase.mode === "idle",
    r,
    waitPct: Math.round((waited / wall) * 1000) / 10,
    cpuPct: Math.round((cpu / wall) * 1000) / 10,
    cpuUsPerMsg: r.windowMessages > 0 ? Math.round((cpu / r.windowMessages) * 1e6 * 10) / 10 : 0,
    memKbPerConn: Math.round(((held - rss0) / Math.max(1, r.opened)) * 10) / 10,
    nodeCpuPct: Math.round((ncpu / wall) * 1000) / 10,
    gc: logs.length && logTo.length ? gcPausesBetween(logs, logFrom, logTo) : undefined,
    lag: lagText ? lagFrom(lagText) : undefined,
  };
}

async function cleanup(): Promise<void> {
  for (const p of procs) p.proc.kill("SIGTERM");
  await Promise.race([Promise.all(procs.map((p) => p.proc.exited)), Bun.sleep(3000)]);
  for (const p of procs) if (p.proc.exitCode === null) p.proc.kill("SIGKILL");
  let cursor = "0";
  do {
    const [next, batch] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
    cursor = next;
    if (batch.length) await redis.del(...batch);
  } while (cursor !== "0");
  redis.disconnect();
  rmSync(tmp, { recursive: true, force: true });
}

/** BENCH_ONLY="gateway,gateway ×2": these targets only (harness work and diagnosis, not a report). */
function wanted(target: string): boolean {
  const only = process.env.BENCH_ONLY?.split(",").map((s) => s.trim());
  return !only || only.includes(target);
}

async function main(): Promise<void> {
  const nodePort = freePort();
  const nodeToken = `bench-${crypto.randomUUID()}`;
  const node = spawn("node", [BUN, "node/main.ts"], {
    NODE_ID: "bench-node",
    PORT: String(nodePort),
    HOST: "127.0.0.1",
    MAX_ROOMS: "100000",
    MAX_PLAYERS: "100000",
    NODE_TOKEN: nodeToken,
    ROOM_MODE: "echo",
    LOG_LEVEL: "warn",
  });
  await waitHttp(`http://127.0.0.1:${nodePort}/health`);

  let haproxy: Proc | undefined;
  const haproxyPort = freePort();
  if (Bun.which(cfg.haproxyBin)) {
    const cfgFile = join(tmp, "haproxy.cfg");
    writeFileSync(
      cfgFile,
      [
        "global",
        // HAProxy refuses to start when 2 × maxconn (+ a margin) is above the fd limit it gets.
        `  maxconn ${Math.min(10_000, Math.floor((FD_LIMIT - 500) / 2))}`,
        "defaults",
        "  mode http",
        "  timeout connect 5s",
        "  timeout client 60s",
        "  timeout server 60s",
        "  timeout tunnel 1h",
        "frontend fe",
        `  bind 127.0.0.1:${haproxyPort}`,
        "  default_backend node",
        "backend node",
        `  server n1 127.0.0.1:${nodePort}`,
        "",
      ].join("\n"),
    );
    haproxy = spawn("haproxy", [cfg.haproxyBin, "-f", cfgFile, "-db"]);
    await waitTcp(haproxyPort);
  } else console.warn("haproxy not installed: the haproxy rows are skipped");

  const gwPort = freePort();
  const secret = `bench-secret-${crypto.randomUUID()}`;
  const gatewayEnv = {
    HOST: "127.0.0.1",
    REDIS_URL: cfg.redisUrl,
    REDIS_PREFIX: prefix,
    JWT_SECRET: secret,
    DATA_DIR: tmp,
    WS_RATE_LIMIT: "1000000",
    WS_IP_RATE_LIMIT: "1000000",
    HTTP_RATE_LIMIT: "1000000",
    LOG_LEVEL: "warn",
    // JSC logs every collection with its pause to the gateway's log: the GC columns of the table.
    BUN_JSC_logGC: "1",
  };
  const gateway = spawn("gateway", [BUN, "gateway/main.ts"], { ...gatewayEnv, PORT: String(gwPort) });
  await waitHttp(`http://127.0.0.1:${gwPort}/ready`);
  // gateway ×2: two processes on one port with SO_REUSEPORT; the kernel spreads the connections.
  const gw2Port = freePort();
  const gw2 = !wanted("gateway ×2") ? [] : [1, 2].map((n) => spawn(`gateway-x2-${n}`, [BUN, "gateway/main.ts"], { ...gatewayEnv, PORT: String(gw2Port), GATEWAY_REUSE_PORT: "true" }));
  if (gw2.length) {
    await waitHttp(`http://127.0.0.1:${gw2Port}/ready`);
    await Bun.sleep(1000); // both bound: /ready answered by one of them says nothing of the other
  }
  const keys = createKeys(prefix);
  const registry = new RedisNodeRegistry(redis, keys, () => createRedis(cfg.redisUrl));
  const now = Date.now();
  await registry.create(
    {
      id: "bench-node",
      state: "ready",
      host: "127.0.0.1",
      port: nodePort,
      region: cfg.region,
      capacity: 100_000,
      maxRooms: 100_000,
      rooms: 0,
      players: 0,
      reservedRooms: 0,
      reservedSeats: 0,
      token: nodeToken,
      driver: "bench",
      ref: String(node.proc.pid),
      dockerHost: "",
      startedAt: now,
      lastSeenAt: now,
      stateChangedAt: now,
      lastActivityAt: now,
      stoppedAt: 0,
      healthFailures: 0,
      requestId: "bench",
      version: "",
      image: "",
    },
    now,
  );
  const jwt = (await new JwtAuthenticator({ alg: "HS256", secret }, 3600_000).sign({ sub: "p_bench", name: "bench", region: cfg.region, roles: ["player"] }, Date.now())).token;

  const targets: { name: string; url: string; headers?: Record<string, string>; protocols?: string[]; pids: number[]; logs?: string[]; metricsUrl?: string }[] = [
    { name: "direct", url: `ws://127.0.0.1:${nodePort}/rooms/bench-{i}`, headers: { "X-Node-Token": nodeToken, "X-Player-Id": "p_bench" }, pids: [] },
    ...(haproxy ? [{ name: "haproxy", url: `ws://127.0.0.1:${haproxyPort}/rooms/bench-{i}`, headers: { "X-Node-Token": nodeToken, "X-Player-Id": "p_bench" }, pids: [haproxy.proc.pid] }] : []),
    { name: "gateway", url: `ws://127.0.0.1:${gwPort}/v1/connect?room=bench-{i}`, protocols: ["bearer", jwt], pids: [gateway.proc.pid], logs: [gateway.log], metricsUrl: `http://127.0.0.1:${gwPort}/metrics` },
    ...(gw2.length ? [{ name: "gateway ×2", url: `ws://127.0.0.1:${gw2Port}/v1/connect?room=bench-{i}`, protocols: ["bearer", jwt], pids: gw2.map((g) => g.proc.pid), logs: gw2.map((g) => g.log), metricsUrl: `http://127.0.0.1:${gw2Port}/metrics` }] : []),
  ];
  // BENCH_QUICK=1: a few seconds in all, to check the harness itself (not a measurement).
  const quick = process.env.BENCH_QUICK === "1";
  const phasesFull: { name: string; phase: Omit<LoadPhase, "url"> }[] = [
    { name: "5000 idle", phase: { connections: 5000, mode: "idle", durationMs: 10_000, payloadBytes: PAYLOAD_BYTES, connectTimeoutMs: 30_000 } },
    { name: "1 conn closed", phase: { connections: 1, mode: "closed", durationMs: 3000, payloadBytes: PAYLOAD_BYTES, connectTimeoutMs: 5000 } },
    { name: "200 closed", phase: { connections: 200, mode: "closed", durationMs: 4000, payloadBytes: PAYLOAD_BYTES, connectTimeoutMs: 10_000 } },
    { name: "1000 closed", phase: { connections: 1000, mode: "closed", durationMs: 4000, payloadBytes: PAYLOAD_BYTES, connectTimeoutMs: 15_000 } },
    { name: "1000 x 20/s open", phase: { connections: 1000, mode: "open", rate: 20, durationMs: 5000, payloadBytes: PAYLOAD_BYTES, connectTimeoutMs: 15_000 } },
  ];
  const sized = quick ? phasesFull.map((p) => ({ name: p.name, phase: { ...p.phase, connections: Math.min(p.phase.connections, p.phase.mode === "idle" ? 200 : 50), durationMs: 500 } })) : phasesFull;
  // BENCH_PHASES="1000 closed,200 closed": only these phases (harness work and diagnosis, not a report).
  const onlyPhases = process.env.BENCH_PHASES?.split(",").map((s) => s.trim());
  const phases = onlyPhases ? sized.filter((p) => onlyPhases.includes(p.name)) : sized;

  const chosen = targets.filter((x) => wanted(x.name));
  // Warm-up (not recorded): JIT, first allocations and connection pools of every target.
  for (const t of chosen) await runLoad({ ...sized.find((p) => p.name === "200 closed")!.phase, connections: 50, durationMs: 1000, url: t.url, headers: t.headers, protocols: t.protocols });
  // Phase-major order: the three targets of one phase run back to back, so the load other work
  // puts on this shared machine at that moment weighs on all three alike.
  const rows: Row[] = [];
  for (const ph of phases) {
    for (const t of chosen) {
      const row = await measure(t.name, ph.name, { ...ph.phase, url: t.url, headers: t.headers, protocols: t.protocols }, t.pids, node.proc.pid, { logs: t.logs, metricsUrl: t.metricsUrl });
      rows.push(row);
      const figures = row.idle ? `${row.memKbPerConn} KB/conn held` : `${row.r.msgsPerSec} msg/s p99 ${row.r.p99Ms} ms`;
      console.error(`${t.name.padEnd(10)} ${ph.name.padEnd(17)} ${figures}${row.r.errors.length ? ` errors: ${row.r.errors.join("; ")}` : ""}`);
      await Bun.sleep(500); // let closed sockets drain before the next phase
    }
  }
  printTable(rows, phases.map((p) => p.name));
}

function printTable(rows: Row[], phaseNames: string[]): void {
  const find = (target: string, phase: string) => rows.find((r) => r.target === target && r.phase === phase);
  const ratio = (a: number, b: number | undefined) => (b && b > 0 ? (a / b).toFixed(2) : "—");
  const header = ["target", "phase", "conns", "msgs/s", "p50 ms", "p99 ms", "proxy CPU %", "CPU µs/msg", "proxy wait %", "mem KB/conn", "node CPU %", "lost", "corrupt", "msgs/s ÷ direct", "msgs/s ÷ haproxy", "p99 ÷ haproxy", "GCs", "GC max ms", "GC total ms", "lag p99 ms", "lag max ms"];
  const lines = [header];
  for (const ph of phaseNames) {
    for (const r of rows.filter((x) => x.phase === ph)) {
      const d = find("direct", ph);
      const h = find("haproxy", ph);
      const isDirect = r.target === "direct";
      const idle = r.idle;
      lines.push([
        r.target,
        ph,
        `${r.r.opened}/${r.r.connections}`,
        idle ? "—" : String(r.r.msgsPerSec),
        idle ? "—" : r.r.p50Ms.toFixed(2),
        idle ? "—" : r.r.p99Ms.toFixed(2),
        isDirect ? "—" : r.cpuPct.toFixed(1),
        isDirect || idle ? "—" : r.cpuUsPerMsg.toFixed(1),
        isDirect ? "—" : r.waitPct.toFixed(1),
        // RSS growth over a handful of connections is heap noise, not a per-connection cost.
        isDirect || r.r.opened < 100 ? "—" : r.memKbPerConn.toFixed(1),
        r.nodeCpuPct.toFixed(1),
        String(r.r.lost),
        String(r.r.corrupt),
        idle ? "—" : ratio(r.r.msgsPerSec, d?.r.msgsPerSec),
        idle ? "—" : r.target === "haproxy" ? "1.00" : ratio(r.r.msgsPerSec, h?.r.msgsPerSec),
        idle ? "—" : r.target === "haproxy" ? "1.00" : ratio(r.r.p99Ms, h?.r.p99Ms),
        r.gc ? String(r.gc.count) : "—",
        r.gc ? r.gc.maxMs.toFixed(2) : "—",
        r.gc ? r.gc.totalMs.toFixed(1) : "—",
        r.lag ? r.lag.p99Ms.toFixed(2) : "—",
        r.lag ? r.lag.maxMs.toFixed(2) : "—",
      ]);
    }
  }
  const widths = header.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  const fmt = (l: string[]) => `| ${l.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  console.log(fmt(lines[0]!));
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const l of lines.slice(1)) console.log(fmt(l));
  console.log(`\npayload ${PAYLOAD_BYTES} B text frames; load generator in its own process; CPU from /proc (utime+stime) over the measured window only (CLK_TCK resolution); proxy wait % = time its threads were runnable but not running, % of one CPU (/proc schedstat: the machine, not the proxy, was the limit); memory = peak RSS growth ÷ connections under load (100+ connections only), RSS held at the end of the silent window ÷ connections when idle; gateway ×2 sums both processes (its lag is one process's: the scrape reaches either); GCs = JSC collections in the window with their longest and summed pause (BUN_JSC_logGC), lag = event-loop delay p99/max over the window (prom-client, 20 ms resolution). ${Bun.spawnSync(["nproc"]).stdout.toString().trim()} cores, load average at the end ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")} (other work shares the machine).`);
}

const deadline = setTimeout(() => {
  console.error("benchmark exceeded its 6-minute bound; stopping");
  void cleanup().then(() => process.exit(1));
}, 360_000);
process.on("SIGINT", () => void cleanup().then(() => process.exit(130)));
try {
  await main();
} catch (err) {
  console.error(err instanceof Error ? err.message : String(err));
  process.exitCode = 1;
} finally {
  clearTimeout(deadline);
  await cleanup();
}
