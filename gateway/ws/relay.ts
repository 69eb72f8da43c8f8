/**
 * The frame relay: one client socket (Bun ServerWebSocket) paired with one upstream socket to the
 * node that owns the room. The per-frame path is plain functions stored in `ws.data` (Elysia's Bun
 * adapter dispatches socket events to `ws.data.<event>`), with no token check, no Redis call, no
 * parsing and no re-serialising: text stays text, binary stays binary, byte for byte, in order.
 *
 * Per frame the relay only counts (frames for the rate limit, bytes for metrics) and marks the
 * node active; the RelayHub's one-second tick turns those marks into one
 * `NodeRegistry.touchActivity` per node and resets the rate windows.
 *
 * The upstream is an UpstreamSocket (a minimal RFC 6455 client on a TCP socket, see
 * upstream-socket.ts): its events go to one shared handler (`upstreamEvents`) with the
 * connection's state as context, so a connection costs no closures.
 *
 * Backpressure, both ways, bounded by WS_BUFFER_BYTES per connection:
 * - client → node: when the upstream's bufferedAmount passes half the bound the client socket is
 *   paused (Bun stops reading it, so TCP pushes back on the client) and resumed on the upstream's
 *   `drain` (its queue has gone to the kernel).
 * - node → client: when `ws.send` answers -1 the frames queue in the connection and are flushed
 *   on the client's `drain`.
 * Past the bound in either direction the connection closes 4029: nothing is ever dropped silently.
 */
import type { ServerWebSocket } from "bun";
import { CloseCode } from "../../core/errors.ts";
import type { UpstreamHandler, UpstreamSocket } from "./upstream-socket.ts";
import { admitFrame, queuedFrame, RateVerdict, releaseFrame, waitCheck, type FrameBucket, type FrameRateLimits } from "./frame-rate.ts";
import type { ResumeState, Resumer } from "./resume.ts";

/** A frame as Bun hands it over: text as string, binary as bytes. */
export type Frame = string | Buffer | ArrayBuffer | Uint8Array;

/** What the relay needs from its owner (the hub): limits, accounting, registration. */
export interface RelayOwner {
  readonly maxFrameBytes: number;
  readonly bufferBytes: number;
  /**
   * Upstream bytes queued above which the client is paused: half the buffer, or less when the
   * rest would not hold one largest frame (so a frame that arrives unpaused always fits).
   */
  readonly pauseBytes: number;
  /** The per-connection token bucket's limits (WS_RATE_LIMIT, WS_RATE_BURST, WS_RATE_GRACE). */
  readonly rateLimits: FrameRateLimits;
  /** Milliseconds, for the token bucket (the hub's clock). */
  now(): number;
  readonly upstreamConnectTimeoutMs: number;
  reconnectReason(why: string): string;
  /** Byte and frame counters (plain numbers; flushed into metrics by the hub). */
  readonly stats: RelayStats;
  added(d: RelayState): void;
  removed(d: RelayState): void;
  /**
   * Creates and dials the upstream socket, with `upstreamEvents` as its handler and `d` as its
   * context (a seam so tests can count upstream opens).
   */
  openUpstream(d: RelayState, dial: { host: string; port: number; path: string; headers: Record<string, string> }): UpstreamSocket<RelayState>;
  /**
   * The upstream to the node failed — refused, timed out, or dropped without a close frame — so the
   * node is likely lost: the owner reports it (model/node-loss.ts) so it leaves placement at once.
   */
  upstreamLost?(d: RelayState, why: string): void;
  /** Session resume (gateway/ws/resume.ts); absent or off: a lost node closes its players 4009. */
  readonly resumer?: Resumer | undefined;
}

export interface RelayStats {
  framesUp: number;
  bytesUp: number;
  framesDown: number;
  bytesDown: number;
}

/** Where the relay dials, decided before the upgrade. */
export interface UpstreamTarget {
  nodeId: string;
  host: string;
  port: number;
  token: string;
}

/**
 * Per-connection state, kept in `ws.data`. The event functions are shared, not per-connection
 * closures. The frame-rate token bucket's fields (FrameBucket) live here too: no object per bucket.
 */
export interface RelayState extends FrameBucket {
  readonly open: (ws: ServerWebSocket<RelayState>) => void;
  readonly message: (ws: ServerWebSocket<RelayState>, msg: Frame) => void;
  readonly drain: (ws: ServerWebSocket<RelayState>) => void;
  readonly close: (ws: ServerWebSocket<RelayState>, code: number, reason: string) => void;
  readonly owner: RelayOwner;
  readonly id: number;
  readonly roomCode: string;
  readonly playerId: string;
  readonly playerName: string;
  /** The player holds a seat in a room with a record: the hub reports this socket's open and close (RoomPresence). */
  readonly tracked: boolean;
  /** Set when the upgrade only exists to deliver a close code the browser can see (bad token...). */
  readonly reject: { code: number; reason: string } | undefined;
  /** The node dialled; a resume moves it to the room's new node. */
  target: UpstreamTarget | undefined;
  /** Player seats the room takes (its maxPlayers when it has a record; 0 = one), for placing it again on a resume. */
  readonly seats: number;
  /** The player's region (placing the room again on a resume). */
  readonly region: string | undefined;
  /** The client asked for gateway notices (`?notices=1`): it gets the "paused"/"resumed" text frames of a resume. */
  readonly notices: boolean;
  /** Set while the room resumes on another node (allocated only then). */
  resume: ResumeState | undefined;
  client: ServerWebSocket<RelayState> | undefined;
  upstream: UpstreamSocket<RelayState> | undefined;
  upstreamOpen: boolean;
  /** Client frames waiting for the upstream to open (allocated only when one does: idle connections are most). */
  pending: Frame[] | undefined;
  pendingBytes: number;
  /** Node frames waiting for the client to drain (allocated only under backpressure). */
  downQueue: Frame[] | undefined;
  /** Index of the first unsent frame in downQueue (a moving head, so a drain costs what it sends). */
  downAt: number;
  downBytes: number;
  downPaused: boolean;
  /** The client is paused because the node is behind (upstream backpressure). */
  clientPaused: boolean;
  /** The client is paused because it is above WS_RATE_LIMIT: its frames wait here for tokens (`rateTimer`). */
  ratePaused: boolean;
  rateQueue: Frame[] | undefined;
  /** Index of the first waiting frame in rateQueue (a moving head). */
  rateAt: number;
  rateBytes: number;
  rateTimer: ReturnType<typeof setTimeout> | undefined;
  connectTimer: ReturnType<typeof setTimeout> | undefined;
  /** Set per frame, cleared by the hub's tick after touching the node's activity. */
  active: boolean;
  closed: boolean;
}

let nextId = 1;

/** A close reason that already names the reconnect delay ("... reconnect after 1000 ms"). */
export const RECONNECT_AFTER_RE = /reconnect after (\d+) ms/;

export function newRelayState(
  owner: RelayOwner,
  init: { roomCode: string; playerId: string; playerName: string; tracked?: boolean; target?: UpstreamTarget; reject?: { code: number; reason: string }; seats?: number; region?: string; notices?: boolean },
): RelayState {
  return {
    open: onOpen,
    message: onMessage,
    drain: onDrain,
    close: onClose,
    owner,
    id: nextId++,
    roomCode: init.roomCode,
    playerId: init.playerId,
    playerName: init.playerName,
    tracked: init.tracked ?? false,
    reject: init.reject,
    target: init.target,
    seats: init.seats ?? 0,
    region: init.region,
    notices: init.notices ?? false,
    resume: undefined,
    client: undefined,
    upstream: undefined,
    upstreamOpen: false,
    pending: undefined,
    pendingBytes: 0,
    downQueue: undefined,
    downAt: 0,
    downBytes: 0,
    downPaused: false,
    clientPaused: false,
    ratePaused: false,
    rateQueue: undefined,
    rateAt: 0,
    rateBytes: 0,
    rateTimer: undefined,
    connectTimer: undefined,
    milliTokens: owner.rateLimits.burst * 1000,
    refilledAt: owner.now(),
    overSince: -1,
    waiting: 0,
    active: false,
    closed: false,
  };
}

/** Longest X-Player-Id / X-Player-Name value sent to a node (the reference node refuses longer). */
export const MAX_PLAYER_HEADER = 256;

/**
 * The X-Player-Name value: percent-encoded UTF-8 (`encodeURIComponent`), so any display name
 * (emoji, CJK, control characters) makes a valid header; nodes decode it with
 * `decodeURIComponent`. Cut at a code point so the encoded value fits MAX_PLAYER_HEADER.
 */
export function encodePlayerName(name: string): string {
  let chars = [...name];
  let enc = encodeURIComponent(chars.join(""));
  while (enc.length > MAX_PLAYER_HEADER) {
    chars = chars.slice(0, -1);
    enc = encodeURIComponent(chars.join(""));
  }
  return enc;
}

/** Whether a player id can travel as a header as it is (printable ASCII, no spaces). */
export function isHeaderSafeId(id: string): boolean {
  return id.length > 0 && id.length <= MAX_PLAYER_HEADER && /^[\x21-\x7e]+$/.test(id);
}

/** Bytes of a frame (UTF-8 length for text). */
export function frameBytes(f: Frame): number {
  return typeof f === "string" ? Buffer.byteLength(f) : f.byteLength;
}

/** Close reasons are limited to 123 bytes on the wire. */
function clip(reason: string): string {
  return Buffer.byteLength(reason) <= 123 ? reason : Buffer.from(reason).subarray(0, 120).toString("utf8");
}

/** Close codes a peer may send (1005/1006/1015 are never on the wire). */
function sendableCode(code: number): boolean {
  return code === 1000 || (code >= 1001 && code <= 1003) || (code >= 1007 && code <= 1014 && code !== 1010) || (code >= 3000 && code <= 4999);
}

/** Closes both sides once; the client gets `code`, the node a normal close. */
export function closeRelay(d: RelayState, code: number, reason: string): void {
  if (d.closed) return;
  d.closed = true;
  cleanup(d);
  try {
    d.client?.close(code, clip(reason));
  } catch {
    /* already closed */
  }
  closeUpstream(d, 1000, "client gone");
}

function closeUpstream(d: RelayState, code: number, reason: string): void {
  const up = d.upstream;
  if (!up) return;
  d.upstream = undefined;
  try {
    up.close(sendableCode(code) ? code : 1000, clip(reason));
  } catch {
    /* already closing */
  }
}

function cleanup(d: RelayState): void {
  if (d.resume) d.owner.resumer?.cancel(d);
  if (d.connectTimer) clearTimeout(d.connectTimer);
  d.connectTimer = undefined;
  if (d.rateTimer) clearTimeout(d.rateTimer);
  d.rateTimer = undefined;
  d.rateQueue = undefined;
  d.pending = undefined;
  d.downQueue = undefined;
  d.downAt = 0;
  d.owner.removed(d);
}

function onOpen(ws: ServerWebSocket<RelayState>): void {
  const d = ws.data;
  d.client = ws;
  if (d.reject) {
    // The upgrade happened only so a browser can read the code; nothing upstream was opened.
    d.closed = true;
    ws.close(d.reject.code, clip(d.reject.reason));
    return;
  }
  const t = d.target!;
  d.owner.added(d);
  let up: UpstreamSocket<RelayState>;
  try {
    up = d.owner.openUpstream(d, {
      host: t.host,
      port: t.port,
      path: `/rooms/${d.roomCode}`,
      headers: { "X-Node-Token": t.token, "X-Player-Id": d.playerId, "X-Player-Name": encodePlayerName(d.playerName) },
    });
  } catch {
    closeRelay(d, CloseCode.UPSTREAM_ERROR, "upstream unavailable");
    return;
  }
  d.upstream = up;
  // Extra timer arguments instead of a closure: nothing per connection but the timer itself.
  d.connectTimer = setTimeout(onConnectTimeout, d.owner.upstreamConnectTimeoutMs, d);
}

function onConnectTimeout(d: RelayState): void {
  d.connectTimer = undefined;
  if (d.upstreamOpen) return;
  d.owner.upstreamLost?.(d, "upstream did not open in time");
  closeRelay(d, CloseCode.UPSTREAM_ERROR, "upstream did not open in time");
}

/** The upstream's events, for every connection (the context is the connection's state). */
export const upstreamEvents: UpstreamHandler<RelayState> = {
  open(d) {
    const up = d.upstream;
    if (d.closed || !up) return;
    d.upstreamOpen = true;
    if (d.connectTimer) clearTimeout(d.connectTimer);
    d.connectTimer = undefined;
    const q = d.pending;
    d.pending = undefined;
    d.pendingBytes = 0;
    if (q) for (const f of q) up.send(asSendable(f), frameBytes(f));
    if (d.resume) d.owner.resumer?.resumed(d);
    checkUpstreamPressure(d, up);
  },

  message(d, data, n) {
    if (d.closed) return;
    const st = d.owner.stats;
    st.framesDown++;
    st.bytesDown += n;
    d.active = true;
    if (d.downPaused) {
      // `data` may be a view of the socket's read buffer: keep a copy.
      queueDown(d, typeof data === "string" ? data : data.slice(), n);
      return;
    }
    const ws = d.client!;
    const r = ws.send(data);
    if (r === -1) d.downPaused = true;
    // Bun answers 0 both for "dropped" and for an empty message sent whole (0 bytes of payload).
    else if (r === 0 && n > 0) closeRelay(d, CloseCode.UPSTREAM_ERROR, "frame could not be delivered");
  },

  drain(d) {
    if (d.closed || !d.clientPaused) return;
    d.clientPaused = false;
    // Still above its frame rate: the rate timer goes on releasing its frames, and resumes it.
    if (!d.ratePaused) d.client?.resume();
    else if (!d.rateTimer) d.rateTimer = setTimeout(onRateTimer, 0, d);
  },

  close(d, code, reason, wasOpen) {
    if (d.closed) return;
    d.upstream = undefined;
    // A refused dial, or (without session resume, which probes the node itself) an open connection
    // cut without a close frame — a killed container: the node is reported before anything else,
    // so a reconnect or a resume is placed elsewhere. A node that refused the handshake itself (an
    // HTTP answer) is alive and is not reported.
    if (code === 1006 && ((wasOpen && !d.owner.resumer) || reason.startsWith("connect failed"))) d.owner.upstreamLost?.(d, reason || "connection lost");
    // A lost node (or a failed dial while resuming): the player stays, the room moves (resume.ts).
    if ((wasOpen || d.resume) && d.owner.resumer?.begin(d, code, reason)) return;
    if (!wasOpen) {
      closeRelay(d, CloseCode.UPSTREAM_ERROR, "game server unavailable");
      return;
    }
    if (code === CloseCode.RECONNECT || code === 1006 || code === 1001 || code === 1012) {
      const given = RECONNECT_AFTER_RE.test(reason) ? reason : d.owner.reconnectReason(code === 1006 ? "node lost" : "node draining");
      closeRelay(d, CloseCode.RECONNECT, given);
    } else if (code === 1000 || code === 1002 || code === 1007 || code === 1009 || code === 1011 || (code >= 4000 && code <= 4999)) {
      // 1002 / 1007 / 1009 also come from our own RFC 6455 client when the node broke the protocol,
      // sent invalid UTF-8 or too big a frame: the player learns which (ws-frame.ts names it), and
      // that it was the game server's connection, not its own.
      closeRelay(d, code, code === 1002 || code === 1007 ? `game server: ${reason || "protocol error"}` : reason || "closed by game server");
    } else {
      closeRelay(d, CloseCode.UPSTREAM_ERROR, "game server closed unexpectedly");
    }
  },
};

/**
 * A text frame of the gateway's own to the client (resume notices), in order with the node's
 * frames: queued behind them while the client is not reading.
 */
export function sendToClient(d: RelayState, text: string): void {
  const ws = d.client;
  if (d.closed || !ws) return;
  if (d.downPaused) {
    queueDown(d, text, Buffer.byteLength(text));
    return;
  }
  const r = ws.send(text);
  if (r === -1) d.downPaused = true;
  else if (r === 0) closeRelay(d, CloseCode.UPSTREAM_ERROR, "frame could not be delivered");
}

/** Bun hands binary client frames over as Buffer (a Uint8Array); an ArrayBuffer gets a view. */
function asSendable(f: Frame): string | Uint8Array {
  return typeof f === "string" || f instanceof Uint8Array ? f : new Uint8Array(f);
}

function queueDown(d: RelayState, data: Frame, n: number): void {
  (d.downQueue ??= []).push(data);
  d.downBytes += n;
  if (d.downBytes + (d.client?.getBufferedAmount() ?? 0) > d.owner.bufferBytes) {
    closeRelay(d, CloseCode.RATE_LIMITED, "client is not reading fast enough: buffer limit exceeded");
  }
}

function onDrain(ws: ServerWebSocket<RelayState>): void {
  const d = ws.data;
  if (d.closed || !d.downPaused) return;
  const q = d.downQueue ?? [];
  let i = d.downAt;
  for (; i < q.length; i++) {
    const f = q[i]!;
    const r = ws.send(f);
    const fn = frameBytes(f);
    d.downBytes -= fn;
    if (r === 0 && fn > 0) {
      closeRelay(d, CloseCode.UPSTREAM_ERROR, "frame could not be delivered");
      return;
    }
    if (r === -1) {
      // Bun took this frame into its own buffer: the next drain starts after it.
      d.downAt = i + 1;
      // Drop the sent head now and then (amortised O(1) per frame), so a queue that never
      // empties does not keep every frame it ever held.
      if (d.downAt > 1024 && d.downAt * 2 > q.length) {
        q.splice(0, d.downAt);
        d.downAt = 0;
      }
      return;
    }
  }
  d.downQueue = undefined;
  d.downAt = 0;
  d.downBytes = 0;
  d.downPaused = false;
}

function onMessage(ws: ServerWebSocket<RelayState>, msg: Frame): void {
  const d = ws.data;
  if (d.closed) return;
  // The token bucket (frame-rate.ts): a frame without a token waits here, in order, while the
  // client is paused; 4029 only after WS_RATE_GRACE above the rate.
  const v = d.rateQueue ? queuedFrame(d, d.owner.rateLimits, d.owner.now()) : admitFrame(d, d.owner.rateLimits, d.owner.now());
  if (v !== RateVerdict.Ok) {
    if (v === RateVerdict.Close) closeRelay(d, CloseCode.RATE_LIMITED, RATE_CLOSE_REASON);
    else waitForRate(d, msg, typeof msg === "string" ? Buffer.byteLength(msg) : msg.byteLength);
    return;
  }
  relayUp(d, msg);
}

/** A frame within the rate: counted, and sent to the node (or held until the upstream opens). */
function relayUp(d: RelayState, msg: Frame): void {
  d.active = true;
  const n = typeof msg === "string" ? Buffer.byteLength(msg) : msg.byteLength;
  const st = d.owner.stats;
  st.framesUp++;
  st.bytesUp += n;
  const up = d.upstream;
  if (!d.upstreamOpen || !up) {
    (d.pending ??= []).push(msg);
    d.pendingBytes += n;
    if (d.resume) d.owner.resumer?.held(d);
    else if (d.pendingBytes > d.owner.bufferBytes) closeRelay(d, CloseCode.RATE_LIMITED, "too much data before the game server answered");
    return;
  }
  up.send(typeof msg === "string" || msg instanceof Uint8Array ? msg : new Uint8Array(msg), n);
  checkUpstreamPressure(d, up);
}

const RATE_CLOSE_REASON = "frame rate above WS_RATE_LIMIT for WS_RATE_GRACE";

/**
 * Holds a frame above the rate, in order, and stops reading the client (TCP pushes back on it)
 * until its waiting frames have gone on. Bounded by WS_BUFFER_BYTES like every other queue.
 */
function waitForRate(d: RelayState, msg: Frame, n: number): void {
  (d.rateQueue ??= []).push(msg);
  d.rateBytes += n;
  if (d.rateBytes > d.owner.bufferBytes) {
    closeRelay(d, CloseCode.RATE_LIMITED, "too much data above WS_RATE_LIMIT: buffer limit exceeded");
    return;
  }
  if (d.ratePaused) return;
  d.ratePaused = true;
  d.client?.pause();
  // Extra timer arguments instead of a closure: nothing per connection but the timer itself.
  d.rateTimer = setTimeout(onRateTimer, Math.max(1, waitCheck(d, d.owner.rateLimits, d.owner.now())), d);
}

/** Releases waiting frames as tokens come back; resumes the client once none wait. */
function onRateTimer(d: RelayState): void {
  d.rateTimer = undefined;
  if (d.closed) return;
  const limits = d.owner.rateLimits;
  const q = d.rateQueue!;
  let i = d.rateAt;
  let now = d.owner.now();
  // Not while the node is behind: its `drain` re-arms this timer.
  while (i < q.length && !d.clientPaused && releaseFrame(d, limits, now)) {
    const f = q[i]!;
    q[i++] = ""; // let the frame go once sent
    d.rateBytes -= frameBytes(f);
    relayUp(d, f);
    if (d.closed) return;
  }
  if (i < q.length) {
    d.rateAt = i;
    if (d.clientPaused) return;
    now = d.owner.now();
    const w = waitCheck(d, limits, now);
    if (w === -1) {
      closeRelay(d, CloseCode.RATE_LIMITED, RATE_CLOSE_REASON);
      return;
    }
    d.rateTimer = setTimeout(onRateTimer, Math.max(1, w), d);
    return;
  }
  d.rateQueue = undefined;
  d.rateAt = 0;
  d.rateBytes = 0;
  d.ratePaused = false;
  if (!d.clientPaused) d.client?.resume();
}

/** Pauses reading the client while the node is behind; the upstream's `drain` resumes it. */
function checkUpstreamPressure(d: RelayState, up: UpstreamSocket<RelayState>): void {
  const buffered = up.bufferedAmount;
  if (buffered <= d.owner.pauseBytes) return;
  // Checked while paused too: frames Bun had already read when the pause began still arrive.
  if (buffered > d.owner.bufferBytes) {
    closeRelay(d, CloseCode.RATE_LIMITED, "game server is not reading fast enough: buffer limit exceeded");
    return;
  }
  if (d.clientPaused) return;
  d.clientPaused = true;
  d.client?.pause();
}

function onClose(ws: ServerWebSocket<RelayState>, code: number, reason: string): void {
  const d = ws.data;
  if (d.closed) return;
  d.closed = true;
  cleanup(d);
  // The node hears about the client at once (CONTRACT: within 1 s), with the client's code when sendable.
  closeUpstream(d, code, reason || "client closed");
}
