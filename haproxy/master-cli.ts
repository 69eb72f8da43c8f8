/**
 * HAProxy's master CLI (the `-S` socket) and runtime API: one command per connection, and the
 * pure parsers for what they print.
 *
 * Protocol notes (HAProxy 2.6, checked here): the socket answers after the client half-closes its
 * side (write the command, then shutdown); it closes when done. `@1 <cmd>` runs a runtime-API
 * command on the current worker. While the master re-executes itself on `reload`, connecting is
 * refused for a moment, so commands are retried until their deadline.
 */
import type { Clock } from "../core/clock.ts";

export class HaproxyCliError extends Error {
  constructor(
    message: string,
    readonly command: string,
  ) {
    super(message);
    this.name = "HaproxyCliError";
  }
}

/** Runs one command on a HAProxy CLI socket once; resolves with everything it printed. */
export function cliCommandOnce(socketPath: string, command: string, timeoutMs: number): Promise<string> {
  if (/[\r\n;]/.test(command)) return Promise.reject(new HaproxyCliError("a CLI command must be one line without ';'", command));
  return new Promise<string>((resolve, reject) => {
    const chunks: string[] = [];
    const decoder = new TextDecoder();
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(chunks.join("") + decoder.decode());
    };
    const timer = setTimeout(() => finish(new HaproxyCliError(`no answer within ${timeoutMs} ms`, command)), timeoutMs);
    Bun.connect({
      unix: socketPath,
      socket: {
        open(s) {
          s.write(`${command}\n`);
          // The CLI answers once our side is closed for writing; it then closes its side.
          s.shutdown();
        },
        data(_s, data) {
          chunks.push(decoder.decode(data, { stream: true }));
        },
        close() {
          finish();
        },
        error(_s, err) {
          finish(err);
        },
        connectError(_s, err) {
          finish(err);
        },
      },
    }).catch((err: unknown) => finish(err instanceof Error ? err : new Error(String(err))));
  });
}

/** Whether an error means "nobody is listening (yet)": missing socket file or refused connection. */
export function isNotListening(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === "ECONNREFUSED" || code === "ENOENT";
}

/**
 * Runs a command, retrying while the socket refuses connections (the master re-executing on
 * reload), until `timeoutMs` has passed.
 */
export async function cliCommand(socketPath: string, command: string, timeoutMs: number, clock: Clock, retryEveryMs = 25): Promise<string> {
  const deadline = clock.now() + timeoutMs;
  for (;;) {
    try {
      return await cliCommandOnce(socketPath, command, Math.max(50, deadline - clock.now()));
    } catch (err) {
      if (!isNotListening(err) || clock.now() + retryEveryMs > deadline) throw err;
      await clock.sleep(retryEveryMs);
    }
  }
}

/** One process line of `show proc`. */
export interface ProcLine {
  pid: number;
  /** For the master: reloads so far. For a worker: reloads it has survived (0 = the newest). */
  reloads: number;
}

/** `show proc` of the master CLI. */
export interface ProcInfo {
  master: ProcLine & {
    /** Failed reloads since the last successful one (0 after a good reload). */
    failed: number;
  };
  /** Current and old workers, in the order printed (the current one first). */
  workers: ProcLine[];
}

/**
 * Parses `show proc` (2.6 format):
 * ```
 * #<PID>          <type>          <reloads>       <uptime>        <version>
 * 9635            master          2 [failed: 1]   0d00h10m52s     2.6.12
 * # workers
 * 1603            worker          1               0d00h00m06s     2.6.12
 * # programs
 * ```
 * Returns undefined when there is no master line (not a master CLI, or garbage).
 */
export function parseShowProc(text: string): ProcInfo | undefined {
  let master: ProcInfo["master"] | undefined;
  const workers: ProcLine[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const m = /^(\d+)\s+(master|worker)\s+(\d+)(?:\s+\[failed:\s*(\d+)\])?/.exec(line);
    if (!m) continue;
    const pid = Number(m[1]);
    const reloads = Number(m[3]);
    if (m[2] === "master") master = { pid, reloads, failed: Number(m[4] ?? 0) };
    else workers.push({ pid, reloads });
  }
  return master ? { master, workers } : undefined;
}

export type ReloadProgress = "pending" | "ok" | "failed";

/**
 * Decides a reload's outcome from `show proc` before and after. HAProxy 2.6 prints nothing for
 * `reload`, so this is the only confirmation: the master's reload counter went up, and either a
 * new worker (a pid not there before) runs with `failed: 0`, or `failed` is above zero (the new
 * config did not load; the old worker keeps serving).
 */
export function reloadProgress(before: ProcInfo, after: ProcInfo | undefined): ReloadProgress {
  if (!after || after.master.reloads <= before.master.reloads) return "pending";
  if (after.master.failed > 0) return "failed";
  const old = new Set(before.workers.map((w) => w.pid));
  const fresh = after.workers.find((w) => !old.has(w.pid) && w.reloads === 0);
  return fresh ? "ok" : "pending";
}

/** One server of `show servers state`. */
export interface ServerStateLine {
  backend: string;
  server: string;
  address: string;
  /** srv_op_state: 0 stopped, 1 starting, 2 running, 3 stopping. */
  opState: number;
  /** srv_admin_state bit field (see ADMIN_BITS). */
  adminState: number;
  weight: number;
  port: number;
}

/** srv_admin_state bits (HAProxy's SRV_ADMF_*). */
export const ADMIN_BITS = Object.freeze({
  FMAINT: 0x01,
  IMAINT: 0x02,
  CMAINT: 0x04,
  FDRAIN: 0x08,
  IDRAIN: 0x10,
  RMAINT: 0x20,
  HMAINT: 0x40,
});

/** Parses `show servers state` (format version 1). Lines that do not fit are ignored. */
export function parseServersState(text: string): ServerStateLine[] {
  const lines = text.split("\n");
  const header = lines.find((l) => l.startsWith("# be_id"));
  if (!header) return [];
  const cols = header.slice(2).trim().split(/\s+/);
  const idx = (name: string) => cols.indexOf(name);
  const [iBe, iSrv, iAddr, iOp, iAdm, iW, iPort] = ["be_name", "srv_name", "srv_addr", "srv_op_state", "srv_admin_state", "srv_uweight", "srv_port"].map(idx);
  const out: ServerStateLine[] = [];
  for (const l of lines) {
    if (!l || l.startsWith("#") || /^\d+$/.test(l.trim())) continue;
    const f = l.trim().split(/\s+/);
    if (f.length < cols.length - 2) continue;
    const at = (i: number | undefined) => (i === undefined || i < 0 ? "" : (f[i] ?? ""));
    out.push({
      backend: at(iBe),
      server: at(iSrv),
      address: at(iAddr),
      opState: Number(at(iOp)) || 0,
      adminState: Number(at(iAdm)) || 0,
      weight: Number(at(iW)) || 0,
      port: Number(at(iPort)) || 0,
    });
  }
  return out;
}

/** The admin state a server is in, as the templater names them. */
export function adminStateOf(adminBits: number): "ready" | "drain" | "maint" {
  if (adminBits & (ADMIN_BITS.FMAINT | ADMIN_BITS.CMAINT | ADMIN_BITS.IMAINT)) return "maint";
  if (adminBits & (ADMIN_BITS.FDRAIN | ADMIN_BITS.IDRAIN)) return "drain";
  return "ready";
}
