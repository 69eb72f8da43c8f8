/**
 * @fleetgate/server — what a game-server image needs to be scheduled by fleetgate and to keep its
 * rooms across node loss (CONTRACT "The node contract" and "Session resume"). No dependencies;
 * Bun or Node >= 20 (global fetch).
 *
 * - {@link readNodeEnv}: the node contract's environment, every problem reported at once.
 * - {@link NodeTokenCheck}: accept gateway connections (and `POST /drain`) only with `X-Node-Token`.
 * - {@link resumeAttempt}: whether an incoming player connection is a resume (`X-Resume`).
 * - {@link SnapshotClient}: `PUT`/`GET /v1/node/rooms/:code/snapshot` at FLEETGATE_URL.
 * - {@link RoomSnapshots}: per-room state saved at most every `intervalMs` while it changes, and
 *   loaded once when the room comes back on this node after a loss ("this room is a resume, here is
 *   the last snapshot").
 * - {@link healthBody} / {@link parseDrainRequest}: the `/health` body and `POST /drain` input.
 */
import { createHash, timingSafeEqual } from "node:crypto";

export type RoomMode = "relay" | "echo";

/** The node contract's environment (what the scheduler starts a node with). */
export interface NodeContractEnv {
  /** NODE_ID — required. */
  nodeId: string;
  /** PORT — default 8081. */
  port: number;
  /** HOST — bind address, default 0.0.0.0. */
  host: string;
  /** MAX_ROOMS — default 100. */
  maxRooms: number;
  /** MAX_PLAYERS — connections on the node, default 1000. */
  maxPlayers: number;
  /** NODE_TOKEN — required: gateway connections carry it as `X-Node-Token`. */
  token: string;
  /** DRAIN_SECONDS — after SIGTERM, rooms may take this long to end before players get 4009. Default 5. */
  drainSeconds: number;
  /** ROOM_MODE — relay (default) or echo. */
  roomMode: RoomMode;
  /** FLEETGATE_URL — the gateway's node API (snapshots); undefined when the node runs without one. */
  fleetgateUrl: string | undefined;
}

/** A bad node environment: every problem, one per line. */
export class NodeEnvError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`bad node environment:\n  ${problems.join("\n  ")}`);
    this.name = "NodeEnvError";
  }
}

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Readers of environment variables that collect problems instead of throwing, so a game server can
 * report every bad variable at once (as `readNodeEnv` does). `raw`: the trimmed value, undefined
 * when unset or empty; `int`: a whole number in min..max, else `def` and a problem.
 */
export function envReaders(env: Env, problems: string[]) {
  const raw = (name: string): string | undefined => {
    const v = env[name]?.trim();
    return v === undefined || v === "" ? undefined : v;
  };
  const int = (name: string, def: number, min: number, max: number): number => {
    const v = raw(name);
    if (v === undefined) return def;
    if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
      problems.push(`${name}=${JSON.stringify(v)} must be a whole number in ${min}..${max}`);
      return def;
    }
    return Number(v);
  };
  return { raw, int };
}

/** Reads the node contract's environment (pass `process.env`). Throws NodeEnvError listing every problem. */
export function readNodeEnv(env: Env): NodeContractEnv {
  const problems: string[] = [];
  const { raw, int } = envReaders(env, problems);
  const nodeId = raw("NODE_ID") ?? "";
  if (!nodeId) problems.push("NODE_ID is required");
  else if (!/^[A-Za-z0-9_.-]{1,64}$/.test(nodeId)) problems.push(`NODE_ID=${JSON.stringify(nodeId)} must be 1-64 of [A-Za-z0-9_.-]`);
  const token = env.NODE_TOKEN ?? "";
  if (!token) problems.push("NODE_TOKEN is required (the node accepts gateway connections only with it)");
  const drainRaw = raw("DRAIN_SECONDS");
  let drainSeconds = 5;
  if (drainRaw !== undefined) {
    const n = Number(drainRaw);
    if (!/^\d+(\.\d+)?$/.test(drainRaw) || !(n <= 86_400)) problems.push(`DRAIN_SECONDS=${JSON.stringify(drainRaw)} must be a number of seconds in 0..86400`);
    else drainSeconds = n;
  }
  const mode = raw("ROOM_MODE") ?? "relay";
  if (mode !== "relay" && mode !== "echo") problems.push(`ROOM_MODE=${JSON.stringify(mode)} must be relay or echo`);
  const fleetgateUrl = raw("FLEETGATE_URL");
  if (fleetgateUrl !== undefined && !/^https?:\/\/[^\s/]+/.test(fleetgateUrl)) problems.push(`FLEETGATE_URL=${JSON.stringify(fleetgateUrl)} must be an http:// or https:// URL`);
  const host = raw("HOST") ?? "0.0.0.0";
  if (!/^[A-Za-z0-9.:_-]+$/.test(host)) problems.push(`HOST=${JSON.stringify(host)} is not an address`);
  const out: NodeContractEnv = {
    nodeId,
    port: int("PORT", 8081, 0, 65535),
    host,
    maxRooms: int("MAX_ROOMS", 100, 1, 1_000_000),
    maxPlayers: int("MAX_PLAYERS", 1000, 1, 10_000_000),
    token,
    drainSeconds,
    roomMode: mode === "echo" ? "echo" : "relay",
    fleetgateUrl: fleetgateUrl?.replace(/\/+$/, ""),
  };
  if (problems.length > 0) throw new NodeEnvError(problems);
  return out;
}

/** Constant-time check of `X-Node-Token` (both sides hashed: neither the length nor where they differ leaks). */
export class NodeTokenCheck {
  private readonly digest: Buffer;
  constructor(token: string) {
    this.digest = createHash("sha256").update(token).digest();
  }
  /** Whether `presented` (the header value, or null when absent) is the node's token. */
  matches(presented: string | null | undefined): boolean {
    if (presented === null || presented === undefined) return false;
    return timingSafeEqual(createHash("sha256").update(presented).digest(), this.digest);
  }
  /** Whether a request carries the node's token. */
  allows(req: Request): boolean {
    return this.matches(req.headers.get("x-node-token"));
  }
}

/**
 * The resume number of a player connection: the gateway sets `X-Resume: <n>` when it moves a room
 * here after its node was lost (n counts the room's resumes). Undefined for an ordinary connection.
 */
export function resumeAttempt(req: Request): number | undefined {
  const v = req.headers.get("x-resume");
  if (v === null) return undefined;
  const n = Number(v);
  return Number.isInteger(n) && n > 0 ? n : 1;
}

/** The `GET /health` body of the node contract. */
export function healthBody(s: { draining: boolean; rooms: number; players: number; nodeId: string; version?: string }): { state: "ready" | "draining"; rooms: number; players: number; nodeId: string; version?: string } {
  return { state: s.draining ? "draining" : "ready", rooms: s.rooms, players: s.players, nodeId: s.nodeId, ...(s.version !== undefined ? { version: s.version } : {}) };
}

/** `POST /drain {deadlineSeconds}`: the deadline, or a problem to answer 400 with. */
export async function parseDrainRequest(req: Request, maxSeconds = 86_400): Promise<{ ok: true; deadlineSeconds: number } | { ok: false; code: "BAD_JSON" | "BAD_DEADLINE"; problem: string }> {
  let seconds: unknown;
  try {
    seconds = ((await req.json()) as { deadlineSeconds?: unknown } | null)?.deadlineSeconds;
  } catch {
    return { ok: false, code: "BAD_JSON", problem: "body must be JSON {deadlineSeconds}" };
  }
  if (typeof seconds !== "number" || !Number.isFinite(seconds) || seconds < 0 || seconds > maxSeconds) return { ok: false, code: "BAD_DEADLINE", problem: `deadlineSeconds must be a number from 0 to ${maxSeconds}` };
  return { ok: true, deadlineSeconds: seconds };
}

/** The path of a request URL; an HTTP/1.0 request without Host (HAProxy's default check) arrives as a bare path. */
export function requestPath(raw: string): string {
  if (raw.startsWith("/")) {
    const q = raw.search(/[?#]/);
    return q < 0 ? raw : raw.slice(0, q);
  }
  try {
    return new URL(raw).pathname;
  } catch {
    return "";
  }
}

function errorJson(status: number, code: string, message: string): Response {
  return Response.json({ error: { code, message } }, { status });
}

/** What {@link nodeRoutes} needs from the game server. */
export interface NodeRoutesOptions {
  nodeId: string;
  token: NodeTokenCheck;
  /** The build, shown in /health (NODE_VERSION). */
  version?: string;
  /** The node's state now, for `GET /health`. */
  status(): { draining: boolean; rooms: number; players: number };
  /**
   * `POST /drain {deadlineSeconds}` was accepted: stop taking rooms, tell the players in the game's
   * own words, close whoever is left (4009) at the deadline. `first` is false for a repeated call.
   * Answer with the players still connected (shown in the 202 body).
   */
  drain(deadlineSeconds: number): { first: boolean; players: number };
  /** Longest deadline accepted. Default one day. */
  maxDrainSeconds?: number;
}

/**
 * The node contract's own HTTP endpoints: `GET /health` (200 with the contract body) and
 * `POST /drain` (the node token, `{deadlineSeconds}`, 202). Returns undefined for any other path,
 * which is the game's (its `/rooms/:code` upgrades).
 */
export function nodeRoutes(opts: NodeRoutesOptions): (req: Request) => Response | Promise<Response> | undefined {
  return (req) => {
    const path = requestPath(req.url);
    if (path === "/health") {
      if (req.method !== "GET" && req.method !== "HEAD") return errorJson(405, "METHOD_NOT_ALLOWED", "use GET");
      const s = opts.status();
      return Response.json(healthBody({ ...s, nodeId: opts.nodeId, ...(opts.version !== undefined ? { version: opts.version } : {}) }));
    }
    if (path === "/drain") {
      if (req.method !== "POST") return errorJson(405, "METHOD_NOT_ALLOWED", "use POST");
      if (!opts.token.allows(req)) return errorJson(401, "BAD_NODE_TOKEN", "missing or wrong X-Node-Token");
      return parseDrainRequest(req, opts.maxDrainSeconds).then((asked) => {
        if (!asked.ok) return errorJson(400, asked.code, asked.problem);
        const { players } = opts.drain(asked.deadlineSeconds);
        return Response.json({ state: "draining", deadlineSeconds: asked.deadlineSeconds, players }, { status: 202 });
      });
    }
    return undefined;
  };
}

/** Snapshot calls failed (network, or the gateway answered an error). */
export class SnapshotError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = "SnapshotError";
  }
}

/** The gateway's snapshot API (CONTRACT "Session resume"), called with the node's token. */
export class SnapshotClient {
  private readonly base: string;
  constructor(
    fleetgateUrl: string,
    private readonly token: string,
    private readonly opts: { timeoutMs?: number; fetch?: typeof fetch } = {},
  ) {
    this.base = fleetgateUrl.replace(/\/+$/, "");
  }

  private url(room: string): string {
    return `${this.base}/v1/node/rooms/${encodeURIComponent(room)}/snapshot`;
  }

  /** Saves the room's snapshot. Throws SnapshotError (413 too large, 403 the room is not on this node). */
  async save(room: string, data: string | Uint8Array): Promise<void> {
    const f = this.opts.fetch ?? fetch;
    const body = typeof data === "string" ? new TextEncoder().encode(data) : data;
    let res: Response;
    try {
      res = await f(this.url(room), { method: "PUT", headers: { "x-node-token": this.token, "content-type": "application/octet-stream" }, body: body as Uint8Array<ArrayBuffer>, signal: AbortSignal.timeout(this.opts.timeoutMs ?? 2000) });
    } catch (err) {
      throw new SnapshotError(`snapshot save failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (res.status !== 204 && res.status !== 200) throw new SnapshotError(`snapshot save answered ${res.status}: ${(await res.text()).slice(0, 200)}`, res.status);
  }

  /** The room's last snapshot, or undefined when it has none (204). Throws SnapshotError. */
  async load(room: string): Promise<Uint8Array | undefined> {
    const f = this.opts.fetch ?? fetch;
    let res: Response;
    try {
      res = await f(this.url(room), { headers: { "x-node-token": this.token }, signal: AbortSignal.timeout(this.opts.timeoutMs ?? 2000) });
    } catch (err) {
      throw new SnapshotError(`snapshot load failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (res.status === 204) return undefined;
    if (res.status !== 200) throw new SnapshotError(`snapshot load answered ${res.status}: ${(await res.text()).slice(0, 200)}`, res.status);
    return new Uint8Array(await res.arrayBuffer());
  }
}

/** What the game tells RoomSnapshots: how its room state becomes bytes and back. */
export interface RoomStateCodec<S> {
  /** A fresh room's state. */
  empty(): S;
  encode(state: S): string | Uint8Array;
  /** Decodes a snapshot; throw to treat it as absent (the room starts empty). */
  decode(bytes: Uint8Array): S;
}

/** How a room started on this node: fresh, or a resume (with the last snapshot, if the old node saved one). */
export interface RoomStart<S> {
  state: S;
  /** X-Resume of the connection that brought the room here, or undefined for a new room. */
  resume: number | undefined;
  /** Whether the state came from a snapshot (false on a resume of a room that never saved one). */
  fromSnapshot: boolean;
}

/**
 * Per-room game state kept across node loss. Call {@link open} before accepting a player's
 * connection (it loads the last snapshot once when the connection is a resume), {@link changed}
 * after each change (saved at most every `intervalMs`, one request per room at a time, the latest
 * state wins), {@link close} when the room ends on this node.
 */
export class RoomSnapshots<S> {
  private readonly rooms = new Map<string, { start: Promise<RoomStart<S>>; state: S | undefined; dirty: boolean; saving: boolean }>();
  private timer: ReturnType<typeof setInterval> | undefined;
  /** Saves that failed (logged by the caller through `onError`). */
  failures = 0;
  saves = 0;

  constructor(
    private readonly client: SnapshotClient | undefined,
    private readonly codec: RoomStateCodec<S>,
    private readonly opts: { intervalMs?: number; onError?: (err: unknown, room: string) => void } = {},
  ) {}

  /**
   * The room's state on this node, loading the last snapshot the first time a room arrives with
   * `X-Resume` (a node without FLEETGATE_URL, or a failed load, starts empty and says so).
   */
  open(room: string, resume: number | undefined): Promise<RoomStart<S>> {
    const have = this.rooms.get(room);
    if (have) return have.start;
    const entry = { start: undefined as unknown as Promise<RoomStart<S>>, state: undefined as S | undefined, dirty: false, saving: false };
    entry.start = (async (): Promise<RoomStart<S>> => {
      let state = this.codec.empty();
      let fromSnapshot = false;
      if (resume !== undefined && this.client) {
        try {
          const bytes = await this.client.load(room);
          if (bytes) {
            state = this.codec.decode(bytes);
            fromSnapshot = true;
          }
        } catch (err) {
          this.opts.onError?.(err, room);
        }
      }
      entry.state = state;
      return { state, resume, fromSnapshot };
    })();
    this.rooms.set(room, entry);
    this.ensureTimer();
    return entry.start;
  }

  /** The room's current state (undefined until {@link open} has resolved). */
  state(room: string): S | undefined {
    return this.rooms.get(room)?.state;
  }

  /** The state changed (or was replaced): it is saved within `intervalMs`. */
  changed(room: string, state?: S): void {
    const e = this.rooms.get(room);
    if (!e) return;
    if (state !== undefined) e.state = state;
    e.dirty = true;
  }

  /** The room ended on this node: its last change is saved, then it is forgotten here (the snapshot stays with the gateway until the room closes). */
  async close(room: string): Promise<void> {
    const e = this.rooms.get(room);
    if (!e) return;
    await e.start.catch(() => {});
    await this.saveRoom(room);
    if (this.rooms.get(room) === e) this.rooms.delete(room);
  }

  /** Saves every changed room now (on drain, before exit). */
  async flush(): Promise<void> {
    await Promise.all([...this.rooms.keys()].map((room) => this.saveRoom(room)));
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private ensureTimer(): void {
    if (this.timer || !this.client) return;
    this.timer = setInterval(() => {
      for (const room of this.rooms.keys()) void this.saveRoom(room);
    }, this.opts.intervalMs ?? 100);
    // A save timer alone never keeps the process alive.
    (this.timer as { unref?: () => void }).unref?.();
  }

  private async saveRoom(room: string): Promise<void> {
    const e = this.rooms.get(room);
    if (!e || !e.dirty || e.saving || e.state === undefined || !this.client) return;
    e.dirty = false;
    e.saving = true;
    try {
      await this.client.save(room, this.codec.encode(e.state));
      this.saves++;
    } catch (err) {
      this.failures++;
      e.dirty = true; // try again next interval
      this.opts.onError?.(err, room);
    } finally {
      e.saving = false;
    }
  }
}
