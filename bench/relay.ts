/**
 * `npm run bench:relay` — the same WebSocket load, in one run, against:
 *   direct   the reference node (`bun node/main.ts`, ROOM_MODE=echo), no proxy;
 *   haproxy  HAProxy (mode http, timeout tunnel) in front of that node;
 *   gateway  the fleetgate gateway (`bun gateway/main.ts`: JWT auth and room placement on, real
 *            Redis under a random prefix) in front of that node.
 * Phases: 1, 200 and 1,000 connections closed-loop; 1,000 connections × 20 msg/s open-loop.
 * For each: msgs/s, RTT p50/p99, the proxy's CPU and memory per connection, frames lost, and the
 * ratios to direct and to HAProxy. The load generator (bench/relay-loadgen.ts) is a separate
 * process per phase. Bounded (about two minutes); every process, file and Redis key is cleaned up.
 * Harness checks only: BENCH_QUICK=1 (tiny phases), BENCH_ONLY=direct|haproxy|gateway.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../core/config.ts";
import { createKeys } from "../core/keys.ts";
import { RedisNodeRegistry } from "../core/node-registry.ts";
import { createRedis } from "../core/redis.ts";
import { JwtAuthenticator } from "../gateway/auth/jwt.ts";
import type { LoadPhase, LoadResult } from "./relay-loadgen.ts";

const ROOT = join(import.meta.dir, "..");
const BUN = process.execPath;
const PAYLOAD_BYTES = 64;
const NEEDED_FDS = 8192;

interface Proc {
  name: string;
  proc: ReturnType<typeof Bun.spawn>;
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
function fdLimitPrefix(): string[] {
  const soft = Number(Bun.spawnSync(["sh", "-c", "ulimit -n"]).stdout.toString().trim());
  const hard = Bun.spawnSync(["sh", "-c", "ulimit -Hn"]).stdout.toString().trim();
  if (Number.isFinite(soft) && soft >= NEEDED_FDS) return [];
  const target = hard === "unlimited" ? NEEDED_FDS : Math.min(NEEDED_FDS, Number(hard));
  if (target < NEEDED_FDS) console.warn(`warning: fd hard limit ${hard} < ${NEEDED_FDS}; 1,000-connection phases may fail`);
  return ["sh", "-c", `ulimit -n ${target}; exec "$@"`, "sh"];
}
const FD = fdLimitPrefix();

function spawn(name: string, cmd: string[], env: Record<string, string> = {}): Proc {
  // Output to files (an unread pipe would fill up and stall the process under test).
  const log = Bun.file(join(tmp, `${name}.log`));
  const proc = Bun.spawn([...FD, ...cmd], { cwd: ROOT, env: { ...process.env, ...env }, stdout: log, stderr: log });
  const p = { name, proc };
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

function rssKb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
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
  r: LoadResult;
  cpuPct: number;
  cpuUsPerMsg: number;
  memKbPerConn: number;
  nodeCpuPct: number;
}

async function measure(target: string, phaseName: string, phase: LoadPhase, proxyPid: number | undefined, nodePid: number): Promise<Row> {
  const watchPid = proxyPid ?? nodePid;
  const rss0 = rssKb(watchPid);
  let peak = rss0;
  const sampler = setInterval(() => (peak = Math.max(peak, rssKb(watchPid))), 100);
  // CPU is sampled at the load generator's window markers: connection set-up and the drain
  // after the window are not in the figures.
  let cpu0 = 0;
  let ncpu0 = 0;
  let t0 = 0;
  let cpu = 0;
  let ncpu = 0;
  let wall = 1;
  const r = await runLoad(phase, {
    onStart: () => {
      cpu0 = cpuSeconds(watchPid);
      ncpu0 = cpuSeconds(nodePid);
      t0 = performance.now();
    },
    onEnd: () => {
      cpu = cpuSeconds(watchPid) - cpu0;
      ncpu = cpuSeconds(nodePid) - ncpu0;
      wall = (performance.now() - t0) / 1000;
    },
  });
  clearInterval(sampler);
  return {
    target,
    phase: phaseName,
    r,
    cpuPct: Math.round((cpu / wall) * 1000) / 10,
    cpuUsPerMsg: r.windowMessages > 0 ? Math.round((cpu / r.windowMessages) * 1e6 * 10) / 10 : 0,
    memKbPerConn: Math.round(((peak - rss0) / Math.max(1, r.opened)) * 10) / 10,
    nodeCpuPct: Math.round((ncpu / wall) * 1000) / 10,
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
        "  maxconn 8000",
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
  const gateway = spawn("gateway", [BUN, "gateway/main.ts"], {
    PORT: String(gwPort),
    HOST: "127.0.0.1",
    REDIS_URL: cfg.redisUrl,
    REDIS_PREFIX: prefix,
    JWT_SECRET: secret,
    DATA_DIR: tmp,
    WS_RATE_LIMIT: "1000000",
    WS_IP_RATE_LIMIT: "1000000",
    HTTP_RATE_LIMIT: "1000000",
    LOG_LEVEL: "warn",
  });
  await waitHttp(`http://127.0.0.1:${gwPort}/ready`);
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
    },
    now,
  );
  const jwt = (await new JwtAuthenticator({ alg: "HS256", secret }, 3600_000).sign({ sub: "p_bench", name: "bench", region: cfg.region, roles: ["player"] }, Date.now())).token;

  const targets: { name: string; url: string; headers?: Record<string, string>; protocols?: string[]; pid: number | undefined }[] = [
    { name: "direct", url: `ws://127.0.0.1:${nodePort}/rooms/bench-{i}`, headers: { "X-Node-Token": nodeToken, "X-Player-Id": "p_bench" }, pid: undefined },
    ...(haproxy ? [{ name: "haproxy", url: `ws://127.0.0.1:${haproxyPort}/rooms/bench-{i}`, headers: { "X-Node-Token": nodeToken, "X-Player-Id": "p_bench" }, pid: haproxy.proc.pid }] : []),
    { name: "gateway", url: `ws://127.0.0.1:${gwPort}/v1/connect?room=bench-{i}`, protocols: ["bearer", jwt], pid: gateway.proc.pid },
  ];
  // BENCH_QUICK=1: a few seconds in all, to check the harness itself (not a measurement).
  const quick = process.env.BENCH_QUICK === "1";
  const phasesFull: { name: string; phase: Omit<LoadPhase, "url"> }[] = [
    { name: "1 conn closed", phase: { connections: 1, mode: "closed", durationMs: 3000, payloadBytes: PAYLOAD_BYTES, connectTimeoutMs: 5000 } },
    { name: "200 closed", phase: { connections: 200, mode: "closed", durationMs: 4000, payloadBytes: PAYLOAD_BYTES, connectTimeoutMs: 10_000 } },
    { name: "1000 closed", phase: { connections: 1000, mode: "closed", durationMs: 4000, payloadBytes: PAYLOAD_BYTES, connectTimeoutMs: 15_000 } },
    { name: "1000 x 20/s open", phase: { connections: 1000, mode: "open", rate: 20, durationMs: 5000, payloadBytes: PAYLOAD_BYTES, connectTimeoutMs: 15_000 } },
  ];
  const phases = quick ? phasesFull.map((p) => ({ name: p.name, phase: { ...p.phase, connections: Math.min(p.phase.connections, 50), durationMs: 500 } })) : phasesFull;

  const only = process.env.BENCH_ONLY; // e.g. "gateway": one target (harness work, not a report)
  const chosen = targets.filter((x) => !only || x.name === only);
  // Warm-up (not recorded): JIT, first allocations and connection pools of every target.
  for (const t of chosen) await runLoad({ ...phases[1]!.phase, connections: 50, durationMs: 1000, url: t.url, headers: t.headers, protocols: t.protocols });
  // Phase-major order: the three targets of one phase run back to back, so the load other work
  // puts on this shared machine at that moment weighs on all three alike.
  const rows: Row[] = [];
  for (const ph of phases) {
    for (const t of chosen) {
      const row = await measure(t.name, ph.name, { ...ph.phase, url: t.url, headers: t.headers, protocols: t.protocols }, t.pid, node.proc.pid);
      rows.push(row);
      console.error(`${t.name.padEnd(8)} ${ph.name.padEnd(17)} ${row.r.msgsPerSec} msg/s p99 ${row.r.p99Ms} ms${row.r.errors.length ? ` errors: ${row.r.errors.join("; ")}` : ""}`);
      await Bun.sleep(500); // let closed sockets drain before the next phase
    }
  }
  printTable(rows, phases.map((p) => p.name));
}

function printTable(rows: Row[], phaseNames: string[]): void {
  const find = (target: string, phase: string) => rows.find((r) => r.target === target && r.phase === phase);
  const ratio = (a: number, b: number | undefined) => (b && b > 0 ? (a / b).toFixed(2) : "—");
  const header = ["target", "phase", "conns", "msgs/s", "p50 ms", "p99 ms", "proxy CPU %", "CPU µs/msg", "mem KB/conn", "node CPU %", "lost", "corrupt", "msgs/s ÷ direct", "msgs/s ÷ haproxy", "p99 ÷ haproxy"];
  const lines = [header];
  for (const ph of phaseNames) {
    for (const r of rows.filter((x) => x.phase === ph)) {
      const d = find("direct", ph);
      const h = find("haproxy", ph);
      const isDirect = r.target === "direct";
      lines.push([
        r.target,
        ph,
        `${r.r.opened}/${r.r.connections}`,
        String(r.r.msgsPerSec),
        r.r.p50Ms.toFixed(2),
        r.r.p99Ms.toFixed(2),
        isDirect ? "—" : r.cpuPct.toFixed(1),
        isDirect ? "—" : r.cpuUsPerMsg.toFixed(1),
        // RSS growth over a handful of connections is heap noise, not a per-connection cost.
        isDirect || r.r.opened < 100 ? "—" : r.memKbPerConn.toFixed(1),
        r.nodeCpuPct.toFixed(1),
        String(r.r.lost),
        String(r.r.corrupt),
        ratio(r.r.msgsPerSec, d?.r.msgsPerSec),
        r.target === "haproxy" ? "1.00" : ratio(r.r.msgsPerSec, h?.r.msgsPerSec),
        r.target === "haproxy" ? "1.00" : ratio(r.r.p99Ms, h?.r.p99Ms),
      ]);
    }
  }
  const widths = header.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  const fmt = (l: string[]) => `| ${l.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  console.log(fmt(lines[0]!));
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const l of lines.slice(1)) console.log(fmt(l));
  console.log(`\npayload ${PAYLOAD_BYTES} B text frames; load generator in its own process; CPU from /proc (utime+stime) over the measured window only (CLK_TCK resolution); memory = peak RSS growth ÷ connections (100+ connections only). ${Bun.spawnSync(["nproc"]).stdout.toString().trim()} cores, load average at the end ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")} (other work shares the machine).`);
}

const deadline = setTimeout(() => {
  console.error("benchmark exceeded its 4-minute bound; stopping");
  void cleanup().then(() => process.exit(1));
}, 240_000);
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
