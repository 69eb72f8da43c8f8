/**
 * Process lifecycle helpers shared by the entry points (gateway, scheduler, templater):
 *
 * - a bounded shutdown: once a process starts shutting down it exits within SHUTDOWN_TIMEOUT,
 *   whatever hangs (a Redis that is gone, a Docker call, a BullMQ close);
 * - a parent watch: a process started by `npm start` (the supervisor passes its pid) shuts down
 *   when the supervisor dies, even by SIGKILL — it is re-parented, so `process.ppid` changes —
 *   instead of running on, ownerless, under PID 1;
 * - SIGHUP ignored under a supervisor: a closed terminal does not kill one process of the tree
 *   (the supervisor decides), and a write to a closed stdout/stderr (EPIPE) is not fatal.
 *
 * Entry points read the environment (FLEETGATE_SUPERVISOR_PID) and pass the values in.
 */
import type { Logger } from "./log.ts";

/** How often a supervised process checks that its supervisor is alive. */
export const PARENT_POLL_MS = 250;

/**
 * Arms the shutdown bound: after `timeoutMs` the process exits with `code` even if its shutdown
 * has not finished (said once on stderr). Call at the start of a shutdown.
 */
export function armShutdownDeadline(timeoutMs: number, log: Pick<Logger, "warn">, code = 1): void {
  const t = setTimeout(() => {
    log.warn(`shutdown did not finish within SHUTDOWN_TIMEOUT (${(timeoutMs / 1000).toFixed(1)} s); exiting now`);
    process.exit(code);
  }, timeoutMs);
  // Never the reason the process stays alive: a finished shutdown exits on its own.
  t.unref?.();
}

/**
 * Calls `onGone` once when the process that started this one is gone: its pid is no longer our
 * parent (re-parented to PID 1 or a subreaper). `supervisorPid` undefined: not supervised, no watch.
 * A pid that is not our parent when the watch starts is ignored: the variable carrying it was
 * inherited from an unrelated ancestor (e.g. a test run under `npm test` starting `npm start`).
 * Returns a function that stops watching.
 */
export function watchSupervisor(supervisorPid: number | undefined, onGone: () => void, pollMs = PARENT_POLL_MS): () => void {
  if (supervisorPid === undefined || !Number.isInteger(supervisorPid) || supervisorPid <= 1) return () => {};
  if (process.ppid !== supervisorPid) return () => {};
  let fired = false;
  const check = () => {
    if (fired) return;
    if (process.ppid !== supervisorPid) {
      fired = true;
      clearInterval(timer);
      onGone();
    }
  };
  const timer = setInterval(check, pollMs);
  timer.unref?.();
  check();
  return () => clearInterval(timer);
}

/**
 * Parses FLEETGATE_SUPERVISOR_PID (set by `npm start` for its children) or FLEETGATE_LAUNCHER_PID:
 * the pid, when it is this process's parent (else the variable was inherited from further up).
 */
export function supervisorPidFrom(raw: string | undefined): number | undefined {
  if (raw === undefined || !/^\d+$/.test(raw)) return undefined;
  const pid = Number(raw);
  return pid === process.ppid ? pid : undefined;
}

/**
 * For a process under a supervisor: SIGHUP does not kill it (the supervisor owns the decision),
 * and EPIPE on stdout/stderr (the reader went away) is ignored instead of crashing the process.
 */
export function surviveHangup(supervised: boolean): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code !== "EPIPE") throw err;
    });
  }
  if (supervised) process.on("SIGHUP", () => {});
}

/** Resolves with `p`'s value, or `fallback` after `ms` (the promise is left to settle on its own). */
export async function within<T, F>(p: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([p, new Promise<F>((resolve) => (timer = setTimeout(() => resolve(fallback), ms)))]);
  } finally {
    if (timer) clearTimeout(timer);
  }
}
