/**
 * `npm run bench:lobbies` — seed 001 at full size: 10,000 players joining 2,500 lobbies of 8 (half
 * through the rooms flow, half through matchmaking), placed on nodes of 800 players (relay rooms),
 * each player sending 10 msg/s to its room for 60 s. Prints join latency p50/p99, message RTT
 * p50/p99, errors, the gateways' and nodes' CPU and memory, and — the baseline — the same players
 * in the same rooms on the same nodes through HAProxy alone.
 *
 * Each trial runs a fresh stack under its own Redis prefix: the scheduler (nodes warm:
 * MIN_READY_SERVERS), GATEWAY_WORKERS gateway processes on one port (SO_REUSEPORT), then the load
 * generator (bench/lobbies-loadgen.ts) in its own process. A trial passes with 0 errors and p99 RTT
 * ≤ --max-p99 (50 ms). When --players does not pass on this machine, the bench searches (halving,
 * then bisecting) for the largest count that does, within --max-seconds, and says what ran out.
 *
 * File descriptors: Bun has no process.setrlimit, so the soft limit is raised to the hard one with
 * setrlimit(2) through bun:ffi (here and in the load generator), and children start under
 * `sh -c 'ulimit -n <hard>; exec …'`. Raising the hard limit needs CAP_SYS_RESOURCE; the bench
 * prints the limit it got.
 *
 *   npm run bench:lobbies -- [--players 10000] [--seconds 60] [--rate 10] [--max-seconds 1800]
 *     [--workers N] [--driver docker|process] [--max-p99 50] [--no-baseline] [--no-search]
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import Docker from "dockerode";
import { loadConfig } from "../core/config.ts";
import { createKeys } from "../core/keys.ts";
import { createRedis, deletePrefix } from "../core/redis.ts";
import type { NodeRecord } from "../core/types.ts";
import { RedisNodeRegistry } from "../model/node-registry.ts";
import { dockerUsable } from "../scheduler/drivers/create-driver.ts";
import { raiseFdLimit, type LobbyPlan, type LobbyResult, type LobbyRoom } from "./lobbies-loadgen.ts";

const ROOT = join(import.meta.dir, "..");
const BUN = process.execPath;
const SIZE = 8;
const NODE_PLAYERS = 800;

const { values: args } = parseArgs({
  options: {
    players: { type: "string", default: "10000" },
    seconds: { type: "string", default: "60" },
    rate: { type: "string", default: "10" },
    "max-seconds": { type: "string", default: "1800" },
    workers: { type: "string" },
    driver: { type: "string" },
    "max-p99": { type: "string", default: "50" },
    concurrency: { type: "string", default: "64" },
    "no-baseline": { type: "boolean", default: false },
    "no-search": { type: "boolean", default: false },
  },
});
const num = (v: string | undefined, name: string): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number`);
  return n;
};
const WANT = Math.max(SIZE, Math.floor(num(args.players, "players") / SIZE) * SIZE);
const SECONDS = num(args.seconds, "seconds");
const RATE = num(args.rate, "rate");
const MAX_SECONDS = num(args["max-seconds"], "max-seconds");
const MAX_P99 = num(args["max-p99"], "max-p99");
const CONCURRENCY = Math.floor(num(args.concurrency, "concurrency"));
const WORKERS = Math.floor(num(args.workers ?? String(availableParallelism()), "workers"));

const cfg = loadConfig(process.env);
const started = performance.now();
const tmp = mkdtempSync(join(tmpdir(), "fg-bench-lobbies-"));
const redis = createRedis(cfg.redisUrl);
const docker = new Docker();
const FD_LIMIT = raiseFdLimit();
const FD = FD_LIMIT > 0 ? ["sh", "-c", `ulimit -n ${FD_LIMIT}; exec "$@"`, "sh"] : [];
const CLK_TCK = Number(Bun.spawnSync(["getconf", "CLK_TCK"]).stdout.toString().trim()) || 100;
const CORES = availableParallelism();

interface Proc {
  name: string;
  proc: ReturnType<typeof Bun.spawn>;
}
let live: Proc[] = [];

function freePort(): number {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const p = s.port;
  s.stop(true);
  return p;
}

function spawn(name: string, cmd: string[], env: Record<string, string>, stdout: "pipe" | "file" = "file"): Proc {
  const log = Bun.file(join(tmp, `${name}.log`));
  const proc = Bun.spawn([...FD, ...cmd], { cwd: ROOT, env: { ...process.env, ...env }, stdout: stdout === "pipe" ? "pipe" : log, stderr: log });
  const p = { name, proc };
  live.push(p);
  return p;
}

async function stop(p: Proc, graceMs = 30_000): Promise<void> {
  if (p.proc.exitCode !== null) return;
  p.proc.kill("SIGTERM");
  await Promise.race([p.proc.exited, Bun.sleep(graceMs)]);
  if (p.proc.exitCode === null) {
    p.proc.kill("SIGKILL");
    await p.proc.exited;
  }
  live = live.filter((x) => x !== p);
}

async function waitFor(what: string, ms: number, fn: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn().catch(() => false)) return;
    await Bun.sleep(200);
  }
  throw new Error(`${what} not within ${Math.round(ms / 1000)} s`);
}

// ---- CPU and memory from /proc ------------------------------------------------------------------

function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return 0;
  }
}
function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}
/** Busy and total jiffies of the whole machine. */
function machine(): { busy: number; total: number } {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - (f[3] ?? 0) - (f[4] ?? 0), total };
}

interface Usage {
  /** % of one core, summed over the group's processes. */
  cpu: number;
  /** MB, summed; peak over the window. */
  rssMb: number;
}
type Groups = Record<string, number[]>;

/** Samples the groups' CPU over a window (start → end) and their peak RSS. */
class Sampler {
  private cpu0 = new Map<string, number>();
  private m0 = machine();
  private t0 = performance.now();
  private peak = new Map<string, number>();
  private timer: ReturnType<typeof setInterval> | undefined;
  constructor(private readonly groups: Groups) {}
  start(): void {
    this.t0 = performance.now();
    this.m0 = machine();
    for (const [g, pids] of Object.entries(this.groups)) this.cpu0.set(g, pids.reduce((a, p) => a + cpuSeconds(p), 0));
    this.timer = setInterval(() => {
      for (const [g, pids] of Object.entries(this.groups)) this.peak.set(g, Math.max(this.peak.get(g) ?? 0, pids.reduce((a, p) => a + rssMb(p), 0)));
    }, 500);
  }
  end(): { groups: Record<string, Usage>; machineBusy: number } {
    if (this.timer) clearInterval(this.timer);
    const secs = (performance.now() - this.t0) / 1000;
    const m1 = machine();
    const out: Record<string, Usage> = {};
    for (const [g, pids] of Object.entries(this.groups)) {
      const c = pids.reduce((a, p) => a + cpuSeconds(p), 0) - (this.cpu0.get(g) ?? 0);
      out[g] = { cpu: Math.round((c / Math.max(0.001, secs)) * 100), rssMb: Math.round(Math.max(this.peak.get(g) ?? 0, pids.reduce((a, p) => a + rssMb(p), 0))) };
    }
    return { groups: out, machineBusy: Math.round(((m1.busy - this.m0.busy) / Math.max(1, m1.total - this.m0.total)) * 100) };
  }
}

// ---- one trial ---------------------------------------------------------------------------------

interface Trial {
  players: number;
  gateway: LobbyResult;
  gatewayUsage: { groups: Record<string, Usage>; machineBusy: number };
  haproxy?: LobbyResult;
  haproxyUsage?: { groups: Record<string, Usage>; machineBusy: number };
  nodes: number;
  pass: boolean;
  ranOut: string[];
}

async function nodePid(n: NodeRecord): Promise<number | undefined> {
  if (n.driver === "process") return Number(n.ref) || undefined;
  if (n.driver === "docker") return (await docker.getContainer(n.ref).inspect().catch(() => undefined))?.State.Pid || undefined;
  return undefined;
}

/** Runs the load generator; samples `groups` between its MSG_START and MSG_END lines. */
async function runLoad(name: string, plan: LobbyPlan, groups: Groups): Promise<{ result: LobbyResult; usage: { groups: Record<string, Usage>; machineBusy: number } }> {
  const planFile = join(tmp, `${name}.plan.json`);
  const resultFile = join(tmp, `${name}.result.json`);
  writeFileSync(planFile, JSON.stringify(plan));
  const gen = spawn(name, [BUN, "bench/lobbies-loadgen.ts", planFile, resultFile], {}, "pipe");
  const sampler = new Sampler({ ...groups, "load generator": [gen.proc.pid] });
  let usage: { groups: Record<string, Usage>; machineBusy: number } | undefined;
  const reader = (gen.proc.stdout as ReadableStream<Uint8Array>).getReader();
  const dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i: number;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (line === "MSG_START") sampler.start();
      else if (line === "MSG_END") usage = sampler.end();
    }
  }
  const code = await gen.proc.exited;
  live = live.filter((x) => x !== gen);
  if (code !== 0) throw new Error(`load generator exited ${code}: ${readFileSync(join(tmp, `${name}.log`), "utf8").slice(-800)}`);
  return { result: JSON.parse(readFileSync(resultFile, "utf8")) as LobbyResult, usage: usage ?? sampler.end() };
}

/** HAProxy needs two fds per proxied connection (and refuses to start when maxconn does not fit its limit). */
const HAPROXY_MAXCONN = Math.max(1000, Math.floor((FD_LIMIT || 20_000) / 2) - 500);

function haproxyConfig(port: number, nodes: NodeRecord[]): string {
  const lines = [
    "global",
    `  maxconn ${HAPROXY_MAXCONN}`,
    "defaults",
    "  mode http",
    "  timeout connect 5s",
    "  timeout client 120s",
    "  timeout server 120s",
    "  timeout tunnel 1h",
    "frontend fe",
    `  bind 127.0.0.1:${port}`,
    ...nodes.map((_, i) => `  use_backend n${i} if { path_beg /n${i}/ }`),
  ];
  nodes.forEach((n, i) => {
    lines.push(`backend n${i}`, `  http-request set-path %[path,regsub(^/n${i}/,/)]`, `  http-request set-header X-Node-Token ${n.token}`, `  server s${i} ${n.host}:${n.port}`);
  });
  return lines.join("\n") + "\n";
}

async function trial(players: number, driver: string, baseline: boolean): Promise<Trial> {
  const prefix = `fgbench-lobbies-${crypto.randomUUID().slice(0, 8)}`;
  const keys = createKeys(prefix);
  const secret = crypto.randomUUID() + crypto.randomUUID();
  const nodes = Math.ceil(players / NODE_PLAYERS);
  const gwPort = freePort();
  const portStart = 30_000 + Math.floor(Math.random() * 200) * 50;
  const env: Record<string, string> = {
    REDIS_URL: cfg.redisUrl,
    REDIS_PREFIX: prefix,
    JWT_SECRET: secret,
    HOST: "127.0.0.1",
    PORT: String(gwPort),
    GATEWAY_REUSE_PORT: "true",
    PUBLIC_URL: "",
    HTTP_RATE_LIMIT: "10000000",
    WS_IP_RATE_LIMIT: "10000000",
    WS_RATE_LIMIT: String(Math.max(200, RATE * 4)),
    NODE_DRIVER: driver,
    NODE_ROOM_MODE: "relay",
    MAX_PLAYERS_PER_SERVER: String(NODE_PLAYERS),
    NODE_MAX_PLAYERS: String(NODE_PLAYERS),
    NODE_MAX_ROOMS: String(NODE_PLAYERS / SIZE),
    NODE_MEMORY_MB: "1024",
    MIN_READY_SERVERS: String(nodes),
    MAX_SERVERS: String(nodes + 2),
    SERVER_PORT_START: String(portStart),
    SERVER_PORT_END: String(portStart + 49),
    INACTIVITY_SHUTDOWN: "3600",
    SCALE_DOWN_COOLDOWN: "3600",
    ROOM_SEAT_GRACE: "3600",
    SEAT_TOKEN_TTL: "3600",
    TICKET_TTL: "3600",
    FLUSH_WAIT: "3600",
    JOIN_WAIT_TIMEOUT: "60",
    STOP_NODES_ON_EXIT: "true",
    SCHEDULER_METRICS_PORT: "0",
    DATA_DIR: join(tmp, prefix),
    LOG_LEVEL: "warn",
  };
  const registry = new RedisNodeRegistry(redis, keys, () => createRedis(cfg.redisUrl));
  const sched = spawn(`${prefix}-scheduler`, [BUN, "scheduler/main.ts"], env);
  const gateways = Array.from({ length: WORKERS }, (_, i) => spawn(`${prefix}-gateway-${i + 1}`, [BUN, "gateway/main.ts"], env));
  let haproxy: Proc | undefined;
  try {
    await waitFor("the gateways", 30_000, async () => (await fetch(`http://127.0.0.1:${gwPort}/health`)).ok);
    await waitFor(`${nodes} ready nodes`, 60_000 + nodes * 5_000, async () => (await registry.list()).filter((n) => n.state === "ready").length >= nodes);
    const ready = (await registry.list()).filter((n) => n.state === "ready");
    const nodePids = (await Promise.all(ready.map(nodePid))).filter((p): p is number => !!p);
    const plan: LobbyPlan = {
      mode: "gateway",
      url: `http://127.0.0.1:${gwPort}`,
      jwtSecret: secret,
      players,
      seconds: SECONDS,
      rate: RATE,
      concurrency: CONCURRENCY,
      joinTimeoutMs: 60_000,
      matchMode: "lobby",
    };
    const gw = await runLoad(`${prefix}-load-gateway`, plan, { gateways: gateways.map((g) => g.proc.pid), nodes: nodePids });
    const t: Trial = { players, gateway: gw.result, gatewayUsage: gw.usage, nodes: ready.length, pass: false, ranOut: [] };

    if (baseline && Bun.which(cfg.haproxyBin)) {
      // The same rooms on the same nodes, through HAProxy alone.
      const all = await registry.list();
      const index = new Map(all.map((n, i) => [n.id, i]));
      const rooms: LobbyRoom[] = [];
      for (const r of gw.result.rooms) {
        const id = await redis.get(keys.roomNode(r.code));
        const i = id ? index.get(id) : undefined;
        if (i !== undefined) rooms.push({ ...r, node: i });
      }
      if (players > HAPROXY_MAXCONN) console.log(`  note: HAProxy's maxconn ${HAPROXY_MAXCONN} (two fds a connection, fd limit ${FD_LIMIT}) is below ${players} players: the baseline's connections above it queue or fail`);
      const hpPort = freePort();
      const cfgFile = join(tmp, `${prefix}-haproxy.cfg`);
      writeFileSync(cfgFile, haproxyConfig(hpPort, all));
      haproxy = spawn(`${prefix}-haproxy`, [cfg.haproxyBin, "-f", cfgFile, "-db"], {});
      await waitFor("haproxy", 10_000, async () => {
        const s = await Bun.connect({ hostname: "127.0.0.1", port: hpPort, socket: { data() {} } });
        s.end();
        return true;
      });
      const hp = await runLoad(`${prefix}-load-haproxy`, { ...plan, mode: "haproxy", url: `http://127.0.0.1:${hpPort}`, rooms }, { haproxy: [haproxy.proc.pid], nodes: nodePids });
      t.haproxy = hp.result;
      t.haproxyUsage = hp.usage;
    }
    t.pass = t.gateway.errorCount === 0 && t.gateway.connected === players && t.gateway.rttP99 <= MAX_P99;
    t.ranOut = diagnose(t);
    return t;
  } finally {
    if (haproxy) await stop(haproxy, 5_000);
    for (const g of gateways) await stop(g, 10_000);
    await stop(sched, 60_000);
    await deletePrefix(redis, prefix).catch(() => {});
    rmSync(join(tmp, prefix), { recursive: true, force: true });
  }
}

/** What limited a trial, from its errors and the CPU it saw. */
function diagnose(t: Trial): string[] {
  const out: string[] = [];
  const errs = Object.keys(t.gateway.errors).join(" ");
  if (/EMFILE|too many open files/i.test(errs)) out.push(`file descriptors (soft limit ${FD_LIMIT})`);
  if (/EADDRNOTAVAIL|address not available/i.test(errs)) out.push("ephemeral ports");
  if (/NO_CAPACITY|not matched in time|4013/.test(errs)) out.push("game-server capacity (nodes did not take the rooms in time)");
  const u = t.gatewayUsage;
  if (u.machineBusy >= 90) {
    const parts = Object.entries(u.groups).map(([g, x]) => `${g} ${x.cpu}%`);
    const ours = Object.values(u.groups).reduce((a, x) => a + x.cpu, 0);
    const other = Math.max(0, u.machineBusy * CORES - ours);
    out.push(`CPU: the ${CORES} cores were ${u.machineBusy}% busy (${parts.join(", ")}, everything else on the machine ${other}%; % of one core)`);
  }
  if (t.gateway.rttP99 > MAX_P99) out.push(`latency: message RTT p99 ${t.gateway.rttP99} ms > ${MAX_P99} ms`);
  if (t.gateway.errorCount > 0 && out.length === 0) out.push(`errors: ${JSON.stringify(t.gateway.errors)}`);
  return out;
}

// ---- report ------------------------------------------------------------------------------------

const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : "—");
function rows(t: Trial): string[][] {
  const g = t.gateway;
  const gu = t.gatewayUsage.groups;
  const out = [
    [
      String(t.players),
      `gateway ×${WORKERS}`,
      `${g.connected}`,
      `${f1(g.joinP50)} / ${f1(g.joinP99)}`,
      String(g.joinsPerSec),
      String(g.sent),
      `${f1(g.rttP50)} / ${f1(g.rttP99)}`,
      String(g.errorCount),
      `${gu.gateways?.cpu ?? "—"}% / ${gu.gateways?.rssMb ?? "—"} MB`,
      `${gu.nodes?.cpu ?? "—"}% / ${gu.nodes?.rssMb ?? "—"} MB (${t.nodes})`,
      `${gu["load generator"]?.cpu ?? "—"}%`,
      `${t.gatewayUsage.machineBusy}%`,
      t.pass ? "pass" : "FAIL",
    ],
  ];
  if (t.haproxy && t.haproxyUsage) {
    const h = t.haproxy;
    const hu = t.haproxyUsage.groups;
    out.push([
      "",
      "haproxy (baseline)",
      `${h.connected}`,
      `${f1(h.joinP50)} / ${f1(h.joinP99)}`,
      String(h.joinsPerSec),
      String(h.sent),
      `${f1(h.rttP50)} / ${f1(h.rttP99)}`,
      String(h.errorCount),
      `${hu.haproxy?.cpu ?? "—"}% / ${hu.haproxy?.rssMb ?? "—"} MB`,
      `${hu.nodes?.cpu ?? "—"}% / ${hu.nodes?.rssMb ?? "—"} MB`,
      `${hu["load generator"]?.cpu ?? "—"}%`,
      `${t.haproxyUsage.machineBusy}%`,
      "",
    ]);
  }
  return out;
}
function table(trials: Trial[]): string {
  const header = ["players", "path", "connected", "join p50/p99 ms", "joins/s", "msgs sent", "RTT p50/p99 ms", "errors", "proxy CPU / RSS", "nodes CPU / RSS", "loadgen CPU", "machine busy", ""];
  const body = trials.flatMap(rows);
  const w = header.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(w[i]!)).join("  ");
  return [line(header), line(w.map((n) => "-".repeat(n))), ...body.map(line)].join("\n");
}

// ---- main --------------------------------------------------------------------------------------

async function cleanupAll(): Promise<void> {
  for (const p of [...live].reverse()) await stop(p, 10_000).catch(() => {});
  redis.disconnect();
  rmSync(tmp, { recursive: true, force: true });
}
process.on("SIGINT", () => void cleanupAll().then(() => process.exit(130)));
process.on("SIGTERM", () => void cleanupAll().then(() => process.exit(143)));

try {
  const driver = args.driver ?? (await dockerUsable(cfg) ? "docker" : "process");
  const baseline = !args["no-baseline"];
  console.log(
    `bench:lobbies — ${WANT} players in ${WANT / SIZE} lobbies of ${SIZE} (half rooms flow, half matchmaking), nodes of ${NODE_PLAYERS} (${driver}, relay), ${RATE} msg/s each for ${SECONDS} s; ` +
      `${WORKERS} gateway process(es) on one port; pass = 0 errors and p99 RTT ≤ ${MAX_P99} ms; fd limit ${FD_LIMIT || "unchanged"}; ${CORES} cores; budget ${MAX_SECONDS} s`,
  );
  const trials: Trial[] = [];
  const estimate = (p: number) => 40 + (SECONDS + 5) * (baseline ? 2 : 1) + p / 100;
  const left = () => MAX_SECONDS - (performance.now() - started) / 1000;
  let best: Trial | undefined;
  let worst: Trial | undefined;
  let p = WANT;
  for (;;) {
    if (estimate(p) > left()) {
      console.log(`(stopping the search: a ${p}-player trial would not fit the remaining ${Math.round(left())} s of --max-seconds)`);
      break;
    }
    const t = await trial(p, driver, baseline || p === WANT);
    trials.push(t);
    console.log(`\n${table([t])}`);
    console.log(`  join p50/p99 by flow: rooms ${f1(t.gateway.roomsJoinP50)} / ${f1(t.gateway.roomsJoinP99)} ms, matchmaking ${f1(t.gateway.matchJoinP50)} / ${f1(t.gateway.matchJoinP99)} ms (ticket → matched → socket open)`);
    if (t.ranOut.length) console.log(`  ${t.pass ? "note" : "limits"}: ${t.ranOut.join("; ")}`);
    if (t.pass) best = !best || t.players > best.players ? t : best;
    else worst = !worst || t.players < worst.players ? t : worst;
    if (args["no-search"] || (t.pass && p === WANT)) break;
    // Halve until a pass, then bisect between the largest pass and the smallest failure (to 5 %).
    const lo = best?.players ?? 0;
    const hi = worst?.players ?? WANT;
    const next = lo === 0 ? Math.floor(hi / 2 / SIZE) * SIZE : Math.floor((lo + hi) / 2 / SIZE) * SIZE;
    if (next < SIZE || next <= lo || hi - lo <= Math.max(SIZE, Math.round(hi * 0.05))) break;
    p = next;
  }
  console.log(`\n=== bench:lobbies summary ===\n${table(trials.sort((a, b) => a.players - b.players))}`);
  if (best?.players === WANT) console.log(`\n${WANT} players hold: 0 errors, p99 RTT ${f1(best.gateway.rttP99)} ms (HAProxy alone: ${f1(best.haproxy?.rttP99 ?? NaN)} ms).`);
  else {
    console.log(`\n${WANT} players do not fit this ${CORES}-core machine.`);
    console.log(best ? `Largest count with 0 errors and p99 RTT ≤ ${MAX_P99} ms: ${best.players} players (${best.players / SIZE} lobbies), p99 ${f1(best.gateway.rttP99)} ms.` : `No tried count passed (smallest tried: ${worst?.players}).`);
    if (worst) console.log(`What ran out at ${worst.players}: ${worst.ranOut.join("; ") || "nothing identified"}.`);
  }
  console.log(`load average at the end: ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")} (other work shares the machine)`);
  await cleanupAll();
  process.exit(0);
} catch (err) {
  console.error(`bench:lobbies failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
  await cleanupAll();
  process.exit(1);
}
