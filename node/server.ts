/**
 * The reference game-server node: a plain Bun WebSocket room server that fulfils the node contract
 * (CONTRACT.md "The node contract"). A library — it never reads the environment; `node/main.ts`
 * parses the contract env and calls {@link startNodeServer}.
 *
 * The per-frame path is deliberately bare: Bun's native pub/sub (`ws.publish` sends to every other
 * subscriber of the room topic, never back to the sender) in relay mode, `ws.send` in echo mode, no
 * compression, no parsing. Frames go out exactly as they came in — text as text, binary as binary.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { Server, ServerWebSocket } from "bun";
import { realClock, type Clock, type TimerHandle } from "../core/clock.ts";
import type { RoomMode } from "../core/config.ts";
import { CloseCode } from "../core/errors.ts";
import { silentLogger, type Logger } from "../core/log.ts";
import { healthBody, nodeRoutes, NodeTokenCheck, requestPath, resumeAttempt, RoomSnapshots, SnapshotClient, type RoomStateCodec } from "../sdk/server/src/index.ts";

/** Room codes: 4–32 characters of `[A-Za-z0-9_-]` (CONTRACT). */
export const ROOM_CODE_RE = /^[A-Za-z0-9_-]{4,32}$/;
const ROOM_PATH_PREFIX = "/rooms/";
/** Longest player id / name header accepted; longer is bad input, not something to store. */
const MAX_PLAYER_HEADER = 256;

export type NodeHealthState = "ready" | "draining";

/** The `GET /health` body (CONTRACT). `nodeId` is extra, so a checker can tell a reused port apart. */
export interface NodeHealthBody {
  state: NodeHealthState;
  rooms: number;
  players: number;
  nodeId: string;
  /** The build this node runs (NODE_VERSION, baked into the image by `npm run node:image -- --tag`). */
  version?: string;
}

/** Longest drain deadline `POST /drain` accepts: one day. */
const MAX_DRAIN_SECONDS = 86_400;

/** The notice a drained node sends each player (a text frame) when told `POST /drain`. */
export function drainNotice(deadlineSeconds: number): string {
  return JSON.stringify({ type: "fleetgate.drain", deadlineSeconds, message: `this server restarts in ${Math.ceil(deadlineSeconds)} s; your match may finish` });
}

/** Options of {@link startNodeServer}; every value is explicit (no env, no hidden defaults for limits). */
export interface NodeServerOptions {
  /** NODE_ID. */
  nodeId: string;
  /** PORT; 0 picks a free port (read it back from `NodeServer.port`). */
  port: number;
  /** Bind address (HOST). Default `0.0.0.0`. */
  hostname?: string;
  /** MAX_ROOMS: a connection that would open a room beyond it is refused (503) before the upgrade. */
  maxRooms: number;
  /** MAX_PLAYERS: total connections on this node; beyond it refused (503) before the upgrade. */
  maxPlayers: number;
  /** NODE_TOKEN: the `X-Node-Token` header must equal it. */
  token: string;
  /** NODE_VERSION: the build, shown in /health. Default "dev". */
  version?: string;
  /** ROOM_MODE: `relay` (to the room's other players) or `echo` (back to the sender). */
  roomMode: RoomMode;
  /** Delay a drained client is told to wait before reconnecting (in the 4009 close reason). Default 1000. */
  reconnectDelayMs?: number;
  /** Largest accepted frame; Bun closes the socket with 1009 above it. Default 16 MiB. */
  maxPayloadBytes?: number;
  /**
   * Bytes queued for one slow player before its connection is closed instead of
   * silently losing frames. Default 16 MiB (Bun's default limit).
   */
  backpressureLimitBytes?: number;
  /** How long `drain` waits for closed players' close handshakes after sending 4009. Default 1000. */
  closeGraceMs?: number;
  /**
   * Session resume (server SDK): FLEETGATE_URL and how often a changed room's state is saved.
   * Unset: rooms keep their state only while they live here (a resumed room starts empty).
   */
  snapshots?: { fleetgateUrl: string; intervalMs?: number } | undefined;
  clock?: Clock;
  logger?: Logger;
}

/** A running node server. */
export interface NodeServer {
  readonly nodeId: string;
  /** The port actually bound (differs from the option when it was 0). */
  readonly port: number;
  readonly hostname: string;
  state(): NodeHealthState;
  health(): NodeHealthBody;
  /**
   * Stops taking new rooms and connections, waits up to `deadlineMs` for the rooms to empty, then
   * closes every remaining player with 4009 and resolves once they are gone (or after the close
   * grace). Calling it again returns the same promise.
   */
  drain(deadlineMs: number): Promise<void>;
  /** Closes the listener and every connection at once (no 4009). Idempotent. */
  stop(): Promise<void>;
}

/** What the node keeps per connection (`ws.data`). */
/**
 * The reference game's per-room state, kept across node loss in snapshots: how many messages the
 * room has seen and the last few (text as sent, binary as `<N bytes>`), 200 characters each.
 */
export interface RoomGameState {
  count: number;
  last: string[];
}

/** Messages kept in RoomGameState.last. */
export const ROOM_STATE_LAST = 8;

export const roomStateCodec: RoomStateCodec<RoomGameState> = {
  empty: () => ({ count: 0, last: [] }),
  encode: (s) => JSON.stringify(s),
  decode: (b) => {
    const v = JSON.parse(new TextDecoder().decode(b)) as Partial<RoomGameState>;
    if (typeof v.count !== "number" || !Array.isArray(v.last)) throw new Error("not a room state");
    return { count: v.count, last: v.last.filter((x): x is string => typeof x === "string").slice(-ROOM_STATE_LAST) };
  },
};

/** `GET /rooms/:code/state` (with the node token): the room's state and how it started here (tests, operators). */
export interface RoomStateBody extends RoomGameState {
  resume: number | null;
  fromSnapshot: boolean;
  /** The count the room started with here (the snapshot's on a resume, else 0). */
  startCount: number;
}

interface PlayerData {
  room: string;
  playerId: string;
  playerName: string;
}

type PlayerSocket = ServerWebSocket<PlayerData>;

function jsonResponse(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

function errorResponse(status: number, code: string, message: string): Response {
  return jsonResponse(status, { error: { code, message } });
}

/**
 * Constant-time token check. Both sides are hashed first so the comparison never depends on where
 * the strings differ nor leaks the token's length.
 */
export function tokenMatches(expectedDigest: Buffer, presented: string | null): boolean {
  if (presented === null) return false;
  const digest = createHash("sha256").update(presented).digest();
  return timingSafeEqual(digest, expectedDigest);
}

/** The 4009 reason: the contract says a client reconnects after the delay named in it. */
export function drainCloseReason(reconnectDelayMs: number): string {
  return `node draining; reconnect after ${reconnectDelayMs} ms`;
}

/** Starts a node server; it listens when this returns (Bun.serve binds synchronously, throwing if it cannot). */
export function startNodeServer(opts: NodeServerOptions): NodeServer {
  const clock = opts.clock ?? realClock;
  const log = opts.logger ?? silentLogger;
  const hostname = opts.hostname ?? "0.0.0.0";
  const reconnectDelayMs = opts.reconnectDelayMs ?? 1000;
  const closeGraceMs = opts.closeGraceMs ?? 1000;
  const relay = opts.roomMode === "relay";
  const roomStates = new RoomSnapshots(opts.snapshots ? new SnapshotClient(opts.snapshots.fleetgateUrl, opts.token) : undefined, roomStateCodec, {
    intervalMs: opts.snapshots?.intervalMs ?? 100,
    onError: (err, room) => log.warn("room snapshot", { room, error: err instanceof Error ? err.message : String(err) }),
  });
  /** How each room started here (X-Resume, snapshot or not), for GET /rooms/:code/state. */
  const roomStarts = new Map<string, { resume: number | null; fromSnapshot: boolean; startCount: number }>();
  // The server SDK's checks (sdk/server): the token, /health's body, POST /drain's input, X-Resume, snapshots.
  const nodeToken = new NodeTokenCheck(opts.token);

  /**
   * Players per room, counted from the moment an upgrade is accepted (not from `open`), so two
   * upgrades racing for the last seat or room cannot both pass the limit check.
   */
  const rooms = new Map<string, number>();
  let players = 0;
  const sockets = new Set<PlayerSocket>();
  let draining = false;
  let drainPromise: Promise<void> | undefined;
  let stopped = false;
  /** Resolvers waiting for the node to hold no players (drain). */
  let emptyWaiters: Array<() => void> = [];

  const release = (room: string) => {
    players--;
    const n = (rooms.get(room) ?? 1) - 1;
    if (n <= 0) {
      rooms.delete(room);
      roomStarts.delete(room);
      void roomStates.close(room);
    }
    else rooms.set(room, n);
    if (players === 0 && emptyWaiters.length > 0) {
      const waiters = emptyWaiters;
      emptyWaiters = [];
      for (const w of waiters) w();
    }
  };

  /** Resolves when no player is left or after `ms`, whichever comes first. */
  const waitEmpty = (ms: number): Promise<void> => {
    if (players === 0) return Promise.resolve();
    return new Promise((resolve) => {
      let timer: TimerHandle | undefined;
      const done = () => {
        timer?.cancel();
        resolve();
      };
      emptyWaiters.push(done);
      timer = clock.setTimeout(() => {
        emptyWaiters = emptyWaiters.filter((w) => w !== done);
        resolve();
      }, ms);
    });
  };

  const version = opts.version ?? "dev";
  const health = (): NodeHealthBody => healthBody({ draining, rooms: rooms.size, players, nodeId: opts.nodeId, version });

  /**
   * `POST /drain {deadlineSeconds}` (node contract, optional): told by the scheduler before
   * SIGTERM. Stops new rooms, tells every player (a text frame, drainNotice) and closes whoever is
   * left with 4009 exactly at the deadline.
   */
  // `GET /health` and `POST /drain` are the server SDK's (sdk/server nodeRoutes); the game part is the drain's notice.
  const contractRoutes = nodeRoutes({
    nodeId: opts.nodeId,
    token: nodeToken,
    version,
    maxDrainSeconds: MAX_DRAIN_SECONDS,
    status: () => ({ draining, rooms: rooms.size, players }),
    drain(seconds) {
      const first = drainPromise === undefined;
      void drain(Math.round(seconds * 1000));
      if (first) {
        const notice = drainNotice(seconds);
        for (const ws of sockets) ws.send(notice);
      }
      return { first, players };
    },
  });

  const server: Server<PlayerData> = Bun.serve<PlayerData>({
    hostname,
    port: opts.port,
    // Never Bun's HTML error page (it carries source and stack) — errors answer JSON.
    development: false,
    error() {
      return errorResponse(500, "INTERNAL", "internal error");
    },
    fetch(req, srv) {
      const path = pathOf(req.url);
      if (path === "/health" || path === "/drain") return contractRoutes(req);
      if (!path.startsWith(ROOM_PATH_PREFIX)) return errorResponse(404, "NOT_FOUND", "unknown path");
      // The token first: a caller without it learns nothing, not even whether a room code is valid.
      if (!nodeToken.allows(req)) return errorResponse(401, "BAD_NODE_TOKEN", "missing or wrong X-Node-Token");
      const room = path.slice(ROOM_PATH_PREFIX.length);
      if (room.endsWith("/state") && ROOM_CODE_RE.test(room.slice(0, -6))) {
        const code = room.slice(0, -6);
        const st = roomStates.state(code);
        if (!st) return errorResponse(404, "NO_SUCH_ROOM", "the room is not on this node");
        const started = roomStarts.get(code) ?? { resume: null, fromSnapshot: false, startCount: 0 };
        return jsonResponse(200, { count: st.count, last: st.last, ...started } satisfies RoomStateBody);
      }
      if (!ROOM_CODE_RE.test(room)) return errorResponse(400, "BAD_ROOM_CODE", "room code must be 4-32 characters of [A-Za-z0-9_-]");
      if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") return errorResponse(426, "UPGRADE_REQUIRED", "WebSocket upgrade required");
      const playerId = req.headers.get("x-player-id") ?? "";
      if (playerId === "" || playerId.length > MAX_PLAYER_HEADER) return errorResponse(400, "BAD_PLAYER_ID", "X-Player-Id is required (at most 256 characters)");
      // The gateway percent-encodes the display name (UTF-8) so any name is a valid header value.
      const playerName = decodeHeader(req.headers.get("x-player-name")) ?? playerId;
      if (playerName.length > MAX_PLAYER_HEADER) return errorResponse(400, "BAD_PLAYER_NAME", "X-Player-Name is longer than 256 characters");
      if (draining || stopped) return errorResponse(503, "NODE_DRAINING", "node is draining");
      if (players >= opts.maxPlayers) return errorResponse(503, "NODE_FULL", `node holds its maximum of ${opts.maxPlayers} players`);
      const inRoom = rooms.get(room) ?? 0;
      if (inRoom === 0 && rooms.size >= opts.maxRooms) return errorResponse(503, "NODE_ROOMS_FULL", `node holds its maximum of ${opts.maxRooms} rooms`);

      // Reserve before upgrading: `open` runs later, and the limits must hold for racing upgrades.
      players++;
      rooms.set(room, inRoom + 1);
      const upgrade = (): Response | undefined => {
        if (srv.upgrade(req, { data: { room, playerId, playerName } })) return undefined;
        release(room);
        return errorResponse(400, "BAD_UPGRADE", "WebSocket upgrade failed");
      };
      if (roomStates.state(room) !== undefined) return upgrade();
      // A room new on this node: a resume (X-Resume) loads its last snapshot before any frame of it is handled.
      return roomStates.open(room, resumeAttempt(req)).then((start) => {
        if (!roomStarts.has(room)) roomStarts.set(room, { resume: start.resume ?? null, fromSnapshot: start.fromSnapshot, startCount: start.state.count });
        if (start.resume !== undefined) log.info("room resumed here", { room, resume: start.resume, fromSnapshot: start.fromSnapshot, count: start.state.count });
        return upgrade();
      });
    },
    websocket: {
      perMessageDeflate: false,
      maxPayloadLength: opts.maxPayloadBytes ?? 16 * 1024 * 1024,
      // Past the limit Bun would skip frames for that player; a relay that promises every frame in
      // order must rather close the connection (the gateway then tells the client to reconnect).
      backpressureLimit: opts.backpressureLimitBytes ?? 16 * 1024 * 1024,
      closeOnBackpressureLimit: true,
      open(ws) {
        sockets.add(ws);
        if (relay) ws.subscribe(ws.data.room);
      },
      message(ws, message) {
        const st = roomStates.state(ws.data.room);
        if (st) {
          st.count++;
          st.last.push(typeof message === "string" ? message.slice(0, 200) : `<${message.byteLength} bytes>`);
          if (st.last.length > ROOM_STATE_LAST) st.last.shift();
          roomStates.changed(ws.data.room);
        }
        // publish() reaches every subscriber of the room but the sender; strings go out as text
        // frames, buffers as binary — the same bytes and frame type that came in.
        if (relay) ws.publish(ws.data.room, message);
        else ws.send(message);
      },
      close(ws) {
        sockets.delete(ws);
        release(ws.data.room);
      },
    },
  });

  const boundPort = server.port ?? opts.port;
  log.info("node listening", { nodeId: opts.nodeId, hostname, port: boundPort, roomMode: opts.roomMode, maxRooms: opts.maxRooms, maxPlayers: opts.maxPlayers });

  const drain = (deadlineMs: number): Promise<void> => {
    if (drainPromise) return drainPromise;
    draining = true;
    log.info("node draining", { nodeId: opts.nodeId, rooms: rooms.size, players, deadlineMs });
    drainPromise = (async () => {
      await waitEmpty(Math.max(0, deadlineMs));
      if (sockets.size > 0) {
        const reason = drainCloseReason(reconnectDelayMs);
        log.info("drain deadline reached; closing players", { nodeId: opts.nodeId, players: sockets.size });
        // The latest room states go to the gateway before the players move (their rooms resume elsewhere).
        await roomStates.flush();
        for (const ws of [...sockets]) ws.close(CloseCode.RECONNECT, reason);
        await roomStates.flush();
        // The close handler (and so the count) follows the peer's close frame; bounded wait.
        await waitEmpty(closeGraceMs);
      }
      log.info("node drained", { nodeId: opts.nodeId, players });
    })();
    return drainPromise;
  };

  return {
    nodeId: opts.nodeId,
    port: boundPort,
    hostname,
    state: () => (draining ? "draining" : "ready"),
    health,
    drain,
    async stop() {
      if (stopped) return;
      stopped = true;
      draining = true;
      roomStates.stop();
      await server.stop(true);
    },
  };
}

/** The path of a request URL (the server SDK's `requestPath`: bare HTTP/1.0 paths included). */
export const pathOf = requestPath;

/** A percent-encoded header value, decoded; a value that is not valid percent-encoding is kept as sent. */
export function decodeHeader(v: string | null): string | undefined {
  if (v === null) return undefined;
  try {
    return decodeURIComponent(v);
  } catch {
    return v;
  }
}
