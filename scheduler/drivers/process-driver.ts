/**
 * ProcessDriver: runs each node as a local process (Bun.spawn) — for machines without Docker and for
 * fast tests. Every node's state lives in a small JSON file (`<stateDir>/<fleet>/<nodeId>.json`,
 * with its pid) and its output in `<nodeId>.log` beside it, so a restarted scheduler still lists the
 * nodes its predecessor started (they keep running: a scheduler restart must not end live games).
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { constants as osConstants } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { realClock, type Clock } from "../../core/clock.ts";
import { silentLogger, type Logger } from "../../core/log.ts";
import { DriverError, type DriverNodeInfo, type NodeDriver, type NodeHandle, type NodeSpec, type NodeStats } from "./driver.ts";
import { KeyedLock } from "../../core/keyed-lock.ts";

/** Options of {@link ProcessDriver}. Nothing is read from the environment. */
export interface ProcessDriverOptions {
  /** Fleet name: separates the state of several deployments sharing one state dir. */
  fleet: string;
  /** Where node state and log files live. Default `.data/process-nodes`. */
  stateDir?: string;
  /** Address nodes bind (their HOST). Default 127.0.0.1. */
  bindAddress?: string;
  /** Address to dial nodes at. Default: the bind address, or 127.0.0.1 when binding 0.0.0.0. */
  advertiseHost?: string;
  /** Command that runs one node. Default: this Bun running `node/main.ts` of this repository. */
  command?: readonly string[];
  /** Environment every node gets besides the contract's (e.g. PATH). Default none. */
  baseEnv?: Readonly<Record<string, string>>;
  /** Start nodes in their own session (setsid), so a terminal's Ctrl-C does not reach them. Default false. */
  detached?: boolean;
  /** A node's log file is cut to its last `maxLogBytes / 4` at start when larger. Default 4 MiB. */
  maxLogBytes?: number;
  /** How long `stop`/`remove` wait for the process after SIGKILL before giving up. Default 5000. */
  killWaitMs?: number;
  clock?: Clock;
  logger?: Logger;
}

/** What the state file holds (no secrets: the token is not written). */
interface ProcessNodeState {
  nodeId: string;
  fleet: string;
  pid: number;
  host: string;
  port: number;
  startedAt: number;
  exitCode: number | null;
  stoppedAt: number | null;
}

const NODE_ID_RE = /^[A-Za-z0-9_.-]{1,64}$/;
const DEFAULT_COMMAND = [process.execPath, resolve(import.meta.dir, "../../node/main.ts")] as const;
/** Environment marker that ties a pid to this fleet's node, so a reused pid is not mistaken for it. */
const MARKER_VAR = "FLEETGATE_NODE";

export class ProcessDriver implements NodeDriver {
  readonly kind = "process";
  private readonly fleet: string;
  private readonly dir: string;
  private readonly bindAddress: string;
  private readonly host: string;
  private readonly command: readonly string[];
  private readonly baseEnv: Readonly<Record<string, string>>;
  private readonly detached: boolean;
  private readonly maxLogBytes: number;
  private readonly killWaitMs: number;
  private readonly clock: Clock;
  private readonly log: Logger;
  /** Processes this driver instance spawned (exit detection without polling). */
  private readonly children = new Map<string, Subprocess>();
  /** One operation per node at a time, so a duplicate start cannot spawn twice. */
  /** One start/stop/remove at a time per node. */
  private readonly locks = new KeyedLock();

  constructor(opts: ProcessDriverOptions) {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(opts.fleet)) throw new DriverError(`fleet name ${JSON.stringify(opts.fleet)} must be 1-64 of [A-Za-z0-9_.-]`, false);
    this.fleet = opts.fleet;
    this.dir = resolve(opts.stateDir ?? ".data/process-nodes", opts.fleet);
    this.bindAddress = opts.bindAddress ?? "127.0.0.1";
    this.host = opts.advertiseHost ?? (this.bindAddress === "0.0.0.0" || this.bindAddress === "::" ? "127.0.0.1" : this.bindAddress);
    this.command = opts.command ?? DEFAULT_COMMAND;
    if (this.command.length === 0) throw new DriverError("node command is empty", false);
    this.baseEnv = opts.baseEnv ?? {};
    this.detached = opts.detached ?? false;
    this.maxLogBytes = opts.maxLogBytes ?? 4 * 1024 * 1024;
    this.killWaitMs = opts.killWaitMs ?? 5000;
    this.clock = opts.clock ?? realClock;
    this.log = opts.logger ?? silentLogger;
    mkdirSync(this.dir, { recursive: true });
  }

  async start(spec: NodeSpec): Promise<NodeHandle> {
    checkNodeId(spec.nodeId);
    return this.locked(spec.nodeId, async () => {
      const existing = this.readState(spec.nodeId);
      if (existing && this.isRunning(existing)) return this.handleOf(existing);
      return this.spawn(spec);
    });
  }

  async stop(nodeId: string, graceMs: number): Promise<void> {
    checkNodeId(nodeId);
    return this.locked(nodeId, () => this.stopUnlocked(nodeId, graceMs));
  }

  async remove(nodeId: string): Promise<void> {
    checkNodeId(nodeId);
    return this.locked(nodeId, async () => {
      await this.stopUnlocked(nodeId, 0);
      rmSync(this.statePath(nodeId), { force: true });
      rmSync(this.logPath(nodeId), { force: true });
      this.children.delete(nodeId);
    });
  }

  async list(): Promise<DriverNodeInfo[]> {
    const out: DriverNodeInfo[] = [];
    let files: string[] = [];
    try {
      files = readdirSync(this.dir);
    } catch {
      return out;
    }
    for (const f of files.sort()) {
      if (!f.endsWith(".json")) continue;
      const info = this.infoOf(f.slice(0, -".json".length));
      if (info) out.push(info);
    }
    return out;
  }

  async inspect(nodeId: string): Promise<DriverNodeInfo | undefined> {
    checkNodeId(nodeId);
    return this.infoOf(nodeId);
  }

  async logs(nodeId: string, tailLines = 200): Promise<string> {
    checkNodeId(nodeId);
    return tailFile(this.logPath(nodeId), tailLines);
  }

  /** Last CPU-time reading per node, for the CPU percent between two calls. */
  private readonly cpuReadings = new Map<string, { at: number; ticks: number }>();

  async stats(nodeId: string): Promise<NodeStats | undefined> {
    checkNodeId(nodeId);
    const state = this.readState(nodeId);
    if (!state || !this.isRunning(state)) {
      this.cpuReadings.delete(nodeId);
      return undefined;
    }
    let now = procReading(state.pid);
    if (!now) return undefined;
    let prev = this.cpuReadings.get(nodeId);
    if (!prev) {
      // First look at this node: a second reading a moment later gives a rate.
      prev = { at: performance.now(), ticks: now.ticks };
      await Bun.sleep(250);
      now = procReading(state.pid) ?? now;
    }
    const t = performance.now();
    this.cpuReadings.set(nodeId, { at: t, ticks: now.ticks });
    const seconds = (t - prev.at) / 1000;
    // /proc counts CPU time in clock ticks of 1/100 s (USER_HZ on Linux).
    const cpuPercent = seconds > 0 ? ((now.ticks - prev.ticks) / 100 / seconds) * 100 : 0;
    return { at: this.clock.now(), cpuPercent: Math.max(0, Math.round(cpuPercent * 10) / 10), memoryBytes: now.rssBytes, memoryLimitBytes: null };
  }

  async close(): Promise<void> {
    // Nodes outlive the driver on purpose; only forget the child handles.
    this.children.clear();
  }

  /** Path of a node's log file (for operators). */
  logPath(nodeId: string): string {
    return join(this.dir, `${nodeId}.log`);
  }

  private statePath(nodeId: string): string {
    return join(this.dir, `${nodeId}.json`);
  }

  private async spawn(spec: NodeSpec): Promise<NodeHandle> {
    const logFile = this.logPath(spec.nodeId);
    trimLog(logFile, this.maxLogBytes);
    const fd = openSync(logFile, "a");
    const env: Record<string, string> = {
      ...this.baseEnv,
      ...(spec.env ?? {}),
      NODE_ID: spec.nodeId,
      PORT: String(spec.port),
      HOST: this.bindAddress,
      MAX_ROOMS: String(spec.maxRooms),
      MAX_PLAYERS: String(spec.maxPlayers),
      NODE_TOKEN: spec.token,
      DRAIN_SECONDS: String(spec.drainSeconds),
      ROOM_MODE: spec.roomMode,
      [MARKER_VAR]: `${this.fleet}/${spec.nodeId}`,
    };
    // Intent first (pid 0): if this scheduler dies between spawn and the state write below, the
    // next driver still finds the node — by its marker in /proc — instead of leaking it.
    this.writeState({ nodeId: spec.nodeId, fleet: this.fleet, pid: 0, host: this.host, port: spec.port, startedAt: this.clock.now(), exitCode: null, stoppedAt: null });
    let proc: Subprocess;
    try {
      writeFileSync(fd, `--- ${new Date(this.clock.now()).toISOString()} start ${spec.nodeId} port ${spec.port}\n`);
      // Output goes straight to the log file, not through a pipe to us: a node must keep running
      // (and logging) when the scheduler that started it restarts.
      proc = Bun.spawn([...this.command], { env, stdio: ["ignore", fd, fd], detached: this.detached });
    } catch (err) {
      throw new DriverError(`cannot run node command ${JSON.stringify(this.command[0])}: ${err instanceof Error ? err.message : String(err)}`, false);
    } finally {
      closeSync(fd);
    }
    const state: ProcessNodeState = {
      nodeId: spec.nodeId,
      fleet: this.fleet,
      pid: proc.pid,
      host: this.host,
      port: spec.port,
      startedAt: this.clock.now(),
      exitCode: null,
      stoppedAt: null,
    };
    this.writeState(state);
    this.children.set(spec.nodeId, proc);
    void proc.exited.then((code) => {
      // Record the exit unless the node was removed or started again in the meantime.
      if (this.children.get(spec.nodeId) !== proc) return;
      const cur = this.readState(spec.nodeId);
      if (cur && cur.pid === proc.pid) this.writeState({ ...cur, exitCode: code, stoppedAt: this.clock.now() });
      this.log.info("node process exited", { nodeId: spec.nodeId, pid: proc.pid, exitCode: code });
    });
    this.log.info("node process started", { nodeId: spec.nodeId, pid: proc.pid, port: spec.port });
    return this.handleOf(state);
  }

  private async stopUnlocked(nodeId: string, graceMs: number): Promise<void> {
    const state = this.readState(nodeId);
    if (!state || !this.isRunning(state)) return;
    const child = this.children.get(nodeId);
    const proc = child && child.pid === state.pid ? child : undefined;
    const exited = () => !this.isRunning(state);
    if (graceMs > 0) {
      signal(state.pid, "SIGTERM");
      if (await this.waitExit(proc, exited, graceMs)) return this.markStopped(state, proc);
      this.log.warn("node ignored SIGTERM past its grace; killing", { nodeId, pid: state.pid, graceMs });
    }
    signal(state.pid, "SIGKILL");
    if (!(await this.waitExit(proc, exited, this.killWaitMs))) throw new DriverError(`node ${nodeId} (pid ${state.pid}) did not exit after SIGKILL`, true);
    this.markStopped(state, proc);
  }

  /** Writes the exit into the state file now (the `exited` callback may run a tick later). */
  private markStopped(state: ProcessNodeState, proc: Subprocess | undefined): void {
    const cur = this.readState(state.nodeId);
    if (!cur || cur.pid !== state.pid) return;
    const exitCode = proc ? (proc.exitCode ?? signalExitCode(proc.signalCode)) : cur.exitCode;
    this.writeState({ ...cur, exitCode, stoppedAt: cur.stoppedAt ?? this.clock.now() });
  }

  private async waitExit(proc: Subprocess | undefined, exited: () => boolean, ms: number): Promise<boolean> {
    if (proc) {
      let timer: { cancel(): void } | undefined;
      const timeout = new Promise<false>((res) => (timer = this.clock.setTimeout(() => res(false), ms)));
      const done = await Promise.race([proc.exited.then(() => true as const), timeout]);
      timer?.cancel();
      return done;
    }
    // A node adopted from a state file is not our child: poll its pid.
    const end = this.clock.now() + ms;
    while (this.clock.now() < end) {
      if (exited()) return true;
      await this.clock.sleep(25);
    }
    return exited();
  }

  private infoOf(nodeId: string): DriverNodeInfo | undefined {
    const state = this.readState(nodeId);
    if (!state) return undefined;
    const running = this.isRunning(state);
    const child = this.children.get(nodeId);
    let exitCode: number | undefined;
    if (!running) {
      if (state.exitCode !== null) exitCode = state.exitCode;
      else if (child && child.pid === state.pid && child.exitCode !== null) exitCode = child.exitCode;
      else if (child && child.pid === state.pid) exitCode = signalExitCode(child.signalCode) ?? undefined;
    }
    return { ...this.handleOf(state), running, exitCode, startedAt: state.startedAt };
  }

  private handleOf(s: ProcessNodeState): NodeHandle {
    return { nodeId: s.nodeId, driver: this.kind, ref: String(s.pid), host: s.host, port: s.port, dockerHost: "" };
  }

  /** True while the state's pid is alive and still this fleet's node (pids get reused). */
  private isRunning(s: ProcessNodeState): boolean {
    if (s.pid <= 0) return false;
    const child = this.children.get(s.nodeId);
    if (child && child.pid === s.pid) return child.exitCode === null && child.signalCode === null;
    if (s.exitCode !== null) return false;
    return pidIsNode(s.pid, `${MARKER_VAR}=${this.fleet}/${s.nodeId}`);
  }

  private readState(nodeId: string): ProcessNodeState | undefined {
    try {
      const parsed = JSON.parse(readFileSync(this.statePath(nodeId), "utf8")) as Partial<ProcessNodeState>;
      if (typeof parsed.pid !== "number" || parsed.nodeId !== nodeId) return undefined;
      let pid = parsed.pid;
      if (pid <= 0) {
        // An intent without a pid: the spawn happened (or not) in a scheduler that died.
        pid = findMarkedPid(`${MARKER_VAR}=${this.fleet}/${nodeId}`) ?? 0;
      }
      return {
        nodeId,
        fleet: this.fleet,
        pid,
        host: typeof parsed.host === "string" ? parsed.host : this.host,
        port: typeof parsed.port === "number" ? parsed.port : 0,
        startedAt: typeof parsed.startedAt === "number" ? parsed.startedAt : 0,
        exitCode: typeof parsed.exitCode === "number" ? parsed.exitCode : null,
        stoppedAt: typeof parsed.stoppedAt === "number" ? parsed.stoppedAt : null,
      };
    } catch {
      return undefined;
    }
  }

  /** Write-then-rename, so a reader (another scheduler) never sees half a file. */
  private writeState(s: ProcessNodeState): void {
    const path = this.statePath(s.nodeId);
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(s));
    renameSync(tmp, path);
  }

  private locked<T>(nodeId: string, fn: () => Promise<T>): Promise<T> {
    return this.locks.run(nodeId, fn);
  }
}

function checkNodeId(nodeId: string): void {
  // Node ids become file names; refuse anything that could escape the state dir.
  if (!NODE_ID_RE.test(nodeId)) throw new DriverError(`node id ${JSON.stringify(nodeId)} must be 1-64 of [A-Za-z0-9_.-]`, false);
}

function signal(pid: number, sig: "SIGTERM" | "SIGKILL"): void {
  // pid 0 or below would signal a whole process group: never.
  if (pid <= 0) return;
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone (ESRCH): nothing to signal.
  }
}

/** Shell convention: killed by signal N → 128 + N. */
function signalExitCode(sig: NodeJS.Signals | number | null): number | null {
  if (sig === null) return null;
  if (typeof sig === "number") return 128 + sig;
  const n = (osConstants.signals as Record<string, number | undefined>)[sig];
  return n === undefined ? null : 128 + n;
}

/** Alive, not a zombie, and carrying our marker in its environment (Linux /proc; elsewhere alive is enough). */
function pidIsNode(pid: number, marker: string): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  if (!existsSync("/proc/self/environ")) return true;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const stateChar = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    if (stateChar === "Z" || stateChar === "X") return false;
    return readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").includes(marker);
  } catch {
    return false;
  }
}

/** The pid of a live process carrying `marker` in its environment (Linux /proc), if any. */
function findMarkedPid(marker: string): number | undefined {
  if (!existsSync("/proc/self/environ")) return undefined;
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return undefined;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (pid === process.pid) continue;
    if (pidIsNode(pid, marker)) return pid;
  }
  return undefined;
}

/** The last `lines` lines of a file, reading at most its last 256 KiB. */
function tailFile(path: string, lines: number): string {
  let size: number;
  try {
    size = statSync(path).size;
  } catch {
    return "";
  }
  const from = Math.max(0, size - 256 * 1024);
  const fd = openSync(path, "r");
  try {
    const buf = Buffer.alloc(size - from);
    let read = 0;
    while (read < buf.length) {
      const n = readSync(fd, buf, read, buf.length - read, from + read);
      if (n <= 0) break;
      read += n;
    }
    const text = buf.subarray(0, read).toString("utf8");
    const all = text.split("\n");
    if (all.at(-1) === "") all.pop();
    return all.slice(-Math.max(0, lines)).join("\n");
  } finally {
    closeSync(fd);
  }
}

/** Keeps a log file bounded across restarts: cut to its last quarter when above `max`. */
function trimLog(path: string, max: number): void {
  try {
    const size = statSync(path).size;
    if (size <= max) return;
    const keep = Math.floor(max / 4);
    const text = readFileSync(path).subarray(size - keep);
    writeFileSync(path, text);
  } catch {
    // No log yet.
  }
}

/** utime + stime (clock ticks) and resident memory of a pid, from /proc; undefined if it is gone. */
export function procReading(pid: number): { ticks: number; rssBytes: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: fields start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    const rss = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return { ticks: Number.isFinite(ticks) ? ticks : 0, rssBytes: rss ? Number(rss[1]) * 1024 : 0 };
  } catch {
    return undefined;
  }
}
