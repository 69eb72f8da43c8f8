/**
 * Chaos-suite helpers (test/chaos/): a Redis server of the test's own (so it can be killed and
 * restarted without touching anyone else's), gateway and scheduler processes (so they can be
 * SIGKILLed), a WebSocket player that records what it saw, and the report row each scenario
 * writes for `npm run chaos` (scripts/chaos.ts) — to the JSON-lines file in CHAOS_REPORT when set.
 */
import { appendFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { redisAnswers } from "../../core/redis.ts";
import { freePort, waitFor } from "./services.ts";

export const ROOT = resolve(import.meta.dir, "../..");

/** One row of the `npm run chaos` table. */
export interface ChaosRow {
  scenario: string;
  /** What was done to the system. */
  done: string;
  /** What the players saw. */
  players: string;
  /** Recovery time in milliseconds (undefined: not measured or not recovered). */
  recoveryMs: number | undefined;
  /** Whether the scenario's assertions held (a row is written before they are checked). */
  ok: boolean;
}

/** Prints the row and appends it to CHAOS_REPORT (one JSON object per line) when that is set. */
export function reportChaos(row: ChaosRow): void {
  const rec = row.recoveryMs === undefined ? "-" : `${(row.recoveryMs / 1000).toFixed(2)} s`;
  console.log(`[chaos] ${row.scenario}: ${row.done} | ${row.players} | recovery ${rec}${row.ok ? "" : " | FAILED"}`);
  const file = process.env.CHAOS_REPORT;
  if (file) appendFileSync(file, `${JSON.stringify(row)}\n`);
}

// ---------------------------------------------------------------------------------------------
// Redis of the test's own

export interface OwnRedis {
  port: number;
  url: string;
  dir: string;
  proc: Subprocess;
  /** SIGKILL (the default) or SIGTERM; resolves once the process is gone. */
  kill(signal?: "SIGKILL" | "SIGTERM"): Promise<void>;
  /** Starts it again on the same port and data dir (AOF replayed); resolves once it answers. */
  restart(): Promise<void>;
  /** Stops it and removes its data dir. */
  stop(): Promise<void>;
}

/**
 * A redis-server on a free loopback port with append-only persistence (fsync always, so a
 * SIGKILL loses nothing that was acknowledged). `extraArgs` are passed through.
 */
export async function startOwnRedis(opts: { port?: number; extraArgs?: string[]; label?: string } = {}): Promise<OwnRedis> {
  const port = opts.port ?? freePort();
  const dir = mkdtempSync(join(tmpdir(), `fg-redis-${opts.label ?? "chaos"}-`));
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "no", "--logfile", join(dir, "redis.log"), ...(opts.extraArgs ?? [])];
  const url = `redis://127.0.0.1:${port}`;
  const spawn = () => Bun.spawn(["redis-server", ...args], { stdout: "ignore", stderr: "ignore" });
  const self: OwnRedis = {
    port,
    url,
    dir,
    proc: spawn(),
    async kill(signal = "SIGKILL") {
      if (self.proc.exitCode === null && self.proc.signalCode === null) self.proc.kill(signal);
      await self.proc.exited;
    },
    async restart() {
      await self.kill();
      self.proc = spawn();
      await waitFor(() => redisAnswers(url, 300), 10_000, `redis on ${port} to answer again`, 50);
    },
    async stop() {
      await self.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await waitFor(() => redisAnswers(url, 300), 10_000, `redis on ${port} to answer`, 50);
  return self;
}

// ---------------------------------------------------------------------------------------------
// Processes of the stack

export interface StackProcess {
  name: string;
  proc: Subprocess;
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/** Spawns `bun <entry>` from the repository root with exactly `env` (plus PATH), output captured. */
export function spawnStackProcess(name: string, entry: string, env: Record<string, string>): StackProcess {
  let out = "";
  const proc = Bun.spawn([process.execPath, entry], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const pump = async (s: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    const r = s.getReader();
    for (;;) {
      const { done, value } = await r.read();
      if (done) break;
      out = (out + dec.decode(value, { stream: true })).slice(-50_000);
    }
  };
  void pump(proc.stdout);
  void pump(proc.stderr);
  return {
    name,
    proc,
    output: () => out,
    async stop(graceMs = 8_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill("SIGTERM");
      await Promise.race([proc.exited, Bun.sleep(graceMs)]);
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
      await proc.exited;
    },
  };
}

/** Waits until a gateway process answers GET /health. */
export async function gatewayUp(url: string, p: StackProcess, timeoutMs = 20_000): Promise<void> {
  await waitFor(
    async () => {
      if (p.proc.exitCode !== null) throw new Error(`${p.name} exited ${p.proc.exitCode}: ${p.output()}`);
      return (await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) }).catch(() => undefined))?.ok;
    },
    timeoutMs,
    `${p.name} to answer /health`,
    50,
  );
}

/** Waits until a scheduler process has printed that it started. */
export async function schedulerUp(p: StackProcess, timeoutMs = 20_000): Promise<void> {
  await waitFor(
    () => {
      if (p.proc.exitCode !== null) throw new Error(`${p.name} exited ${p.proc.exitCode}: ${p.output()}`);
      return p.output().includes("scheduler started");
    },
    timeoutMs,
    `${p.name} to start`,
    50,
  );
}

// ---------------------------------------------------------------------------------------------
// Players

/** A WebSocket player: numbered frames out, what came back and how the socket closed. */
export interface Player {
  ws: WebSocket;
  received: string[];
  /** When each frame of `received` arrived (Date.now()). */
  receivedAt: number[];
  opened: Promise<void>;
  closed: Promise<{ code: number; reason: string; at: number }>;
  closeInfo: { code: number; reason: string; at: number } | undefined;
  /** Resolves once `n` frames in all arrived (rejects after `timeoutMs`). */
  waitFrames(n: number, timeoutMs?: number): Promise<void>;
}

export function openPlayer(url: string, protocols?: string[]): Player {
  const ws = protocols ? new WebSocket(url, protocols) : new WebSocket(url);
  const received: string[] = [];
  const receivedAt: number[] = [];
  let wake: (() => void) | undefined;
  const p: Player = {
    ws,
    received,
    receivedAt,
    closeInfo: undefined,
    opened: undefined as unknown as Promise<void>,
    closed: undefined as unknown as Promise<{ code: number; reason: string; at: number }>,
    async waitFrames(n, timeoutMs = 5_000) {
      const end = Date.now() + timeoutMs;
      while (received.length < n) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${n} frames (got ${received.length}${p.closeInfo ? `, closed ${p.closeInfo.code} ${p.closeInfo.reason}` : ""})`);
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 25);
        });
      }
    },
  };
  ws.onmessage = (ev) => {
    received.push(typeof ev.data === "string" ? ev.data : new TextDecoder().decode(ev.data as ArrayBuffer));
    receivedAt.push(Date.now());
    wake?.();
  };
  p.closed = new Promise((r) => {
    ws.onclose = (ev) => {
      p.closeInfo = { code: ev.code, reason: ev.reason, at: Date.now() };
      r(p.closeInfo);
      wake?.();
    };
  });
  p.opened = new Promise<void>((r, j) => {
    ws.onopen = () => r();
    void p.closed.then((c) => j(new Error(`closed before open: ${c.code} ${c.reason}`)));
  });
  p.opened.catch(() => {});
  return p;
}

/** Reconnect delay a 4009 close asks for ("... after N ms" / "N s"), else `fallbackMs`. */
export function reconnectDelayMs(reason: string, fallbackMs = 1000): number {
  const ms = /(\d+(?:\.\d+)?)\s*ms/.exec(reason);
  if (ms) return Number(ms[1]);
  const s = /(\d+(?:\.\d+)?)\s*s\b/.exec(reason);
  return s ? Number(s[1]) * 1000 : fallbackMs;
}

/** Races `p` against a deadline; resolves undefined when the deadline passes first. */
export async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const r = await Promise.race([p, new Promise<undefined>((res) => (timer = setTimeout(() => res(undefined), ms)))]);
  clearTimeout(timer);
  return r;
}
