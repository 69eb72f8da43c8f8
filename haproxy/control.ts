/**
 * Drives one HAProxy in master-worker mode: starts it (`haproxy -W -S <master.sock> -f <cfg>`) or
 * attaches to a running master, and swaps configs safely:
 *
 *   render → write temp file → `haproxy -c -f tmp` → dump server states → atomic rename over
 *   HAPROXY_CONFIG → `reload` on the master CLI → confirm with `show proc`.
 *
 * A config that fails validation never touches the live file; one that fails to load on reload
 * is rolled back on disk (the old workers never stopped serving). Server admin states (drain,
 * maint) set through the runtime API survive reloads via the server-state file.
 */
import { chmod, mkdir, rename, rm, writeFile } from "node:fs/promises";
import type { Clock } from "../core/clock.ts";
import type { Logger } from "../core/log.ts";
import { adminStateOf, cliCommand, cliCommandOnce, isNotListening, parseServersState, parseShowProc, reloadProgress, type ProcInfo, type ServerStateLine } from "./master-cli.ts";
import type { EdgePaths, ServerAdminState } from "./render.ts";

/** What became of one config swap. */
export type ApplyOutcome =
  /** Validated, swapped and confirmed reloaded (or started). */
  | "ok"
  /** Same text as the live config: nothing done. */
  | "unchanged"
  /** `haproxy -c` refused it; the live file was not touched. */
  | "invalid"
  /** Validated but the reload did not load it (or was not confirmed in time); the old config keeps serving. */
  | "failed";

export interface ApplyResult {
  outcome: ApplyOutcome;
  durationMs: number;
  /** HAProxy's own words for invalid/failed. */
  error?: string;
  /** The master's reload counter and the current worker after the swap. */
  reloads?: number;
  workerPid?: number;
  /** True when this apply started HAProxy (no runtime state carried over). */
  started?: boolean;
}

/** What the templater needs from an HAProxy (a fake in unit tests). */
export interface EdgeControl {
  /** Makes `text` the live config (starting HAProxy with it when none runs). */
  apply(text: string): Promise<ApplyResult>;
  /** Runtime API: puts one server in ready / drain / maint at once. */
  setServerState(backend: string, server: string, state: ServerAdminState): Promise<void>;
  /** Runtime API: the current worker's servers. */
  serversState(backend?: string): Promise<ServerStateLine[]>;
}

export interface HaproxyControlOptions {
  /** The haproxy executable (HAPROXY_BIN). */
  bin: string;
  paths: EdgePaths;
  clock: Clock;
  log: Logger;
  /** How long a reload (or a start) may take to be confirmed (HAPROXY_RELOAD_TIMEOUT). */
  reloadTimeoutMs: number;
  /**
   * `daemon`: a started HAProxy (-D) outlives this process, and the next templater attaches to it.
   * `child`: HAProxy runs as this process's child (tests, foreground runs); `stop()` ends it.
   */
  mode: "daemon" | "child";
}

const SERVER_RE = /^[A-Za-z0-9_.:-]{1,100}$/;

export class HaproxyControl implements EdgeControl {
  private liveText: string | undefined;
  private child: ReturnType<typeof Bun.spawn> | undefined;
  /** One swap or runtime command sequence at a time: a reload must not interleave with another. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: HaproxyControlOptions) {}

  /** Runs `haproxy -c` on a file; resolves with the problem text, or undefined when valid. */
  async validate(file: string): Promise<string | undefined> {
    const p = Bun.spawn([this.opts.bin, "-c", "-f", file], { stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    if (code === 0) return undefined;
    return summarizeHaproxyErrors(`${err}\n${out}`) || `haproxy -c exited with ${code}`;
  }

  /** `show proc` of the running master, or undefined when none answers within `timeoutMs`. */
  async showProc(timeoutMs = 200): Promise<ProcInfo | undefined> {
    try {
      return parseShowProc(await cliCommand(this.opts.paths.masterSocket, "show proc", timeoutMs, this.opts.clock));
    } catch {
      return undefined;
    }
  }

  /** Whether a master answers on the socket. */
  async running(): Promise<boolean> {
    return (await this.showProc()) !== undefined;
  }

  /**
   * Is an HAProxy there? Only a missing socket file, or connections refused for a whole second
   * (longer than a master's re-exec on reload), mean "absent" and allow starting one; a master
   * that is merely slow to answer (a loaded machine) is "unresponsive", never a reason to start
   * a second HAProxy on the same ports.
   */
  private async probe(): Promise<ProcInfo | "absent" | "unresponsive"> {
    const { paths, clock, reloadTimeoutMs } = this.opts;
    const refusedUntil = clock.now() + Math.min(1000, reloadTimeoutMs);
    for (;;) {
      try {
        return parseShowProc(await cliCommandOnce(paths.masterSocket, "show proc", reloadTimeoutMs)) ?? "unresponsive";
      } catch (err) {
        if (!isNotListening(err)) return "unresponsive";
        if ((err as { code?: string }).code === "ENOENT" || clock.now() >= refusedUntil) return "absent";
        await clock.sleep(50);
      }
    }
  }

  apply(text: string): Promise<ApplyResult> {
    return this.serial(() => this.applyNow(text));
  }

  private async applyNow(text: string): Promise<ApplyResult> {
    const started = this.opts.clock.now();
    const took = () => this.opts.clock.now() - started;
    const { paths, log } = this.opts;
    await mkdir(paths.dir, { recursive: true });

    const probed = await this.probe();
    if (probed === "unresponsive") return { outcome: "failed", durationMs: took(), error: `the HAProxy master CLI (${paths.masterSocket}) does not answer` };
    const proc = probed === "absent" ? undefined : probed;
    if (proc && this.liveText === undefined) this.liveText = await Bun.file(paths.config).text().catch(() => undefined);
    if (proc && text === this.liveText) return { outcome: "unchanged", durationMs: took() };

    const tmp = `${paths.config}.${process.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`;
    await writeFile(tmp, text, { mode: 0o600 });
    const invalid = await this.validate(tmp);
    if (invalid) {
      await rm(tmp, { force: true });
      log.warn("new HAProxy config refused by haproxy -c; the old one keeps serving", { error: invalid });
      return { outcome: "invalid", durationMs: took(), error: invalid };
    }

    if (!proc) {
      await rename(tmp, paths.config);
      const started = await this.start();
      if (started.outcome === "ok") this.liveText = text;
      return { ...started, durationMs: took(), started: started.outcome === "ok" };
    }

    // Keep the admin states (drain/maint set at runtime) and health across the reload: the new
    // worker loads this file (`load-server-state-from-file global`).
    await this.dumpServerState();
    const previous = this.liveText;
    await rename(tmp, paths.config);
    const result = await this.reload(proc);
    if (result.outcome === "ok") {
      this.liveText = text;
    } else if (previous !== undefined) {
      // The old workers still serve the old config; put it back on disk so a restart uses it too.
      await writeFile(paths.config, previous, { mode: 0o600 });
    }
    return { ...result, durationMs: took() };
  }

  /** Dumps the current worker's server states to the server-state file (atomically). */
  private async dumpServerState(): Promise<void> {
    const { paths, clock, reloadTimeoutMs } = this.opts;
    try {
      const dump = await cliCommand(paths.masterSocket, "@1 show servers state", reloadTimeoutMs, clock);
      if (!dump.startsWith("1\n")) throw new Error(`unexpected answer: ${dump.slice(0, 80)}`);
      const tmp = `${paths.serverStateFile}.tmp`;
      await writeFile(tmp, dump, { mode: 0o600 });
      await rename(tmp, paths.serverStateFile);
    } catch (err) {
      // Not fatal: the templater re-applies every node's admin state after each reload anyway.
      this.opts.log.warn("could not dump server states before reload", { err });
    }
  }

  /** Sends `reload` to the master and waits for `show proc` to confirm it. */
  private async reload(before: ProcInfo): Promise<Omit<ApplyResult, "durationMs">> {
    const { paths, clock, reloadTimeoutMs, log } = this.opts;
    const deadline = clock.now() + reloadTimeoutMs;
    try {
      // Prints nothing in 2.6; the master re-executes itself and drops this connection.
      await cliCommand(paths.masterSocket, "reload", reloadTimeoutMs, clock);
    } catch (err) {
      log.warn("reload command failed", { err });
      return { outcome: "failed", error: `reload command failed: ${String(err)}` };
    }
    for (;;) {
      const after = await this.showProc(Math.max(50, deadline - clock.now()));
      const progress = after ? reloadProgress(before, after) : "pending";
      if (progress === "ok") return { outcome: "ok", reloads: after?.master.reloads, workerPid: after?.workers[0]?.pid };
      if (progress === "failed") {
        log.warn("HAProxy did not load the new config; the old one keeps serving", { failed: after?.master.failed });
        return { outcome: "failed", error: `reload failed (show proc: failed ${after?.master.failed})`, reloads: after?.master.reloads };
      }
      if (clock.now() >= deadline) return { outcome: "failed", error: `reload not confirmed within ${reloadTimeoutMs} ms` };
      await clock.sleep(20);
    }
  }

  /** Starts a master-worker HAProxy on the live config file and waits for its first worker. */
  private async start(): Promise<Omit<ApplyResult, "durationMs">> {
    const { bin, paths, mode, clock, reloadTimeoutMs, log } = this.opts;
    // The state file must exist (HAProxy warns otherwise); a stale socket file is replaced by HAProxy.
    if (!(await Bun.file(paths.serverStateFile).exists())) await writeFile(paths.serverStateFile, "");
    await rm(paths.masterSocket, { force: true });
    const args = [bin, "-W", "-S", `${paths.masterSocket},mode,600`, "-f", paths.config, "-p", paths.pidFile];
    let startError = "";
    if (mode === "daemon") {
      const p = Bun.spawn([...args, "-D"], { stdout: "pipe", stderr: "pipe" });
      const [err, code] = await Promise.all([new Response(p.stderr).text(), p.exited]);
      if (code !== 0) startError = summarizeHaproxyErrors(err) || `haproxy exited with ${code}`;
    } else {
      const stderrLines: string[] = [];
      this.child = Bun.spawn(args, { stdout: "ignore", stderr: "pipe" });
      void collectLines(this.child.stderr as ReadableStream<Uint8Array>, (l) => {
        if (stderrLines.length < 50) stderrLines.push(l);
        if (/\[(ALERT|WARNING)\]/.test(l)) log.debug("haproxy", { line: l });
      });
      void this.child.exited.then((code) => {
        if (code !== 0 && startError === "") startError = summarizeHaproxyErrors(stderrLines.join("\n")) || `haproxy exited with ${code}`;
      });
    }
    const deadline = clock.now() + reloadTimeoutMs;
    while (clock.now() < deadline && startError === "") {
      const proc = await this.showProc();
      if (proc && proc.workers.length > 0) {
        await chmod(paths.masterSocket, 0o600).catch(() => {});
        log.info("HAProxy started", { master: proc.master.pid, worker: proc.workers[0]?.pid, mode });
        return { outcome: "ok", reloads: proc.master.reloads, workerPid: proc.workers[0]?.pid };
      }
      await clock.sleep(25);
    }
    return { outcome: "failed", error: startError || `HAProxy did not answer on ${paths.masterSocket} within ${reloadTimeoutMs} ms` };
  }

  setServerState(backend: string, server: string, state: ServerAdminState): Promise<void> {
    return this.serial(async () => {
      if (!SERVER_RE.test(backend) || !SERVER_RE.test(server)) throw new Error(`unsafe server name ${JSON.stringify(`${backend}/${server}`).slice(0, 80)}`);
      const answer = (await cliCommand(this.opts.paths.masterSocket, `@1 set server ${backend}/${server} state ${state}`, this.opts.reloadTimeoutMs, this.opts.clock)).trim();
      // Success prints nothing; anything else is HAProxy's complaint (e.g. "No such server.").
      if (answer !== "") throw new Error(`set server ${backend}/${server} state ${state}: ${answer}`);
    });
  }

  async serversState(backend?: string): Promise<ServerStateLine[]> {
    const cmd = backend ? `@1 show servers state ${backend}` : "@1 show servers state";
    if (backend && !SERVER_RE.test(backend)) throw new Error("unsafe backend name");
    return parseServersState(await cliCommand(this.opts.paths.masterSocket, cmd, this.opts.reloadTimeoutMs, this.opts.clock));
  }

  /** Current admin state of every server of a backend, by server name. */
  async adminStates(backend: string): Promise<Map<string, ServerAdminState>> {
    const out = new Map<string, ServerAdminState>();
    for (const s of await this.serversState(backend)) out.set(s.server, adminStateOf(s.adminState));
    return out;
  }

  /**
   * Stops the HAProxy: the master and every worker, old ones included (their pids come from
   * `show proc`, so nothing else is touched). Used by tests and `child` mode shutdowns.
   */
  async stop(): Promise<void> {
    const proc = await this.showProc(500);
    const pids = new Set<number>();
    if (proc) {
      pids.add(proc.master.pid);
      for (const w of proc.workers) pids.add(w.pid);
    }
    if (this.child?.pid) pids.add(this.child.pid);
    for (const pid of pids) signal(pid, "SIGTERM");
    const deadline = this.opts.clock.now() + 2000;
    while ([...pids].some(alive) && this.opts.clock.now() < deadline) await this.opts.clock.sleep(20);
    for (const pid of pids) if (alive(pid)) signal(pid, "SIGKILL");
    this.child = undefined;
    this.liveText = undefined;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** HAProxy's ALERT lines (the reasons), without the NOTICE noise; at most 2 kB. */
export function summarizeHaproxyErrors(text: string): string {
  const lines = text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => /\[ALERT\]/.test(l));
  return (lines.length ? lines : text.split("\n").filter((l) => l.trim() && !/\[NOTICE\]/.test(l)))
    .join("\n")
    .replace(/\(\d+\)\s*/g, "")
    .slice(0, 2048)
    .trim();
}

async function collectLines(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void): Promise<void> {
  const decoder = new TextDecoder();
  let buf = "";
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        onLine(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    }
  } catch {
    /* the process ended */
  }
  if (buf) onLine(buf);
}
