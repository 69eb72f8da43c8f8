/**
 * The guard of one `npm start` supervisor: started by scripts/start.ts in a session of its own (so
 * a Ctrl-C to the terminal's process group does not reach it), it does nothing while the
 * supervisor lives. When the supervisor dies without stopping what it started (SIGKILL, OOM
 * killer), the guard finishes its job within 5 s:
 *   1. the supervisor's children (gateway, scheduler, templater) notice on their own that their
 *      parent is gone and shut down (the scheduler removes the fleet's nodes); the guard gives
 *      them CHILD_GRACE_MS, then SIGKILLs whatever is left;
 *   2. then it stops the services the supervisor started in their own process groups — the
 *      redis-server and the HAProxy master (with its workers) — last, as a normal stop does.
 * What to stop is read from the state file the supervisor keeps up to date.
 *
 *   bun scripts/supervisor-guard.ts <supervisor pid> <state file>
 */
import { readFileSync, rmSync } from "node:fs";

/** What the supervisor writes for its guard. */
export interface SupervisorState {
  supervisorPid: number;
  /** Current pids of the supervised processes. */
  children: number[];
  /** Services started in their own process group, stopped last. */
  services: { name: string; pid?: number; pidFile?: string }[];
}

const POLL_MS = 200;
/** Time the children get to shut down on their own (nodes removed) before they are killed. */
const CHILD_GRACE_MS = 3000;
const SERVICE_GRACE_MS = 1000;

/** True while `pid` runs. A zombie (exited, not yet reaped by its new parent) counts as gone. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
  try {
    // /proc/<pid>/stat: "pid (comm) S ..." — the state letter follows the last ")".
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true; // no /proc (not Linux): kill(0) said it exists
  }
}

function kill(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

function readState(file: string): SupervisorState | undefined {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as SupervisorState;
  } catch {
    return undefined;
  }
}

function pidOf(service: SupervisorState["services"][number]): number | undefined {
  if (service.pid) return service.pid;
  if (!service.pidFile) return undefined;
  try {
    const n = Number(readFileSync(service.pidFile, "utf8").trim().split(/\s+/)[0]);
    return Number.isInteger(n) && n > 1 ? n : undefined;
  } catch {
    return undefined;
  }
}

async function waitGone(pids: number[], ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (pids.some(alive) && Date.now() < end) await Bun.sleep(50);
}

async function main(): Promise<void> {
  const supervisorPid = Number(process.argv[2]);
  const stateFile = process.argv[3];
  if (!Number.isInteger(supervisorPid) || supervisorPid <= 1 || !stateFile) {
    console.error("usage: bun scripts/supervisor-guard.ts <supervisor pid> <state file>");
    process.exit(2);
  }
  // The supervisor ends the guard with SIGTERM after a normal stop; a hang-up is not our business.
  process.on("SIGHUP", () => {});
  process.on("SIGINT", () => {});
  process.on("SIGTERM", () => process.exit(0));
  while (alive(supervisorPid)) await Bun.sleep(POLL_MS);

  const state = readState(stateFile);
  if (!state) process.exit(0);
  const children = state.children.filter(alive);
  await waitGone(children, CHILD_GRACE_MS);
  for (const pid of children) if (alive(pid)) kill(pid, "SIGKILL");
  const services = state.services.map(pidOf).filter((p): p is number => p !== undefined && alive(p));
  for (const pid of services) kill(pid, "SIGTERM");
  await waitGone(services, SERVICE_GRACE_MS);
  for (const pid of services) if (alive(pid)) kill(pid, "SIGKILL");
  rmSync(stateFile, { force: true });
}

if (import.meta.main) await main();
