/**
 * The relay's upstream: a minimal RFC 6455 client on a `Bun.connect` TCP socket, in place of Bun's
 * client `WebSocket`. Measured on this machine (5,000 idle connections), Bun's client WebSocket
 * held ~7 KB per connection more than a plain socket, and it has no `drain` event (the relay had
 * to poll `bufferedAmount` to resume a paused client). Here:
 * - every socket shares one handler object; the per-connection state is this object and its
 *   parser (no closures per connection, none per frame);
 * - writes the kernel does not take are queued in order and flushed on `drain`, which the owner
 *   hears about once the queue is empty (backpressure without timers);
 * - text stays text and binary stays binary, byte for byte; messages above `maxMessageBytes`
 *   close 1009; pings are answered; the close handshake is done both ways.
 *
 * The owner gets exactly one `close` for a connection it did not close itself; `close()` by the
 * owner produces no event (the owner already knows).
 */
import type { Socket } from "bun";
import { clientFrameLength, closePayload, encodeClientFrame, encodeClientFrameInto, FrameParser, isValidWireCloseCode, OPCODE, RandomMasks, WS_CLOSE, type FrameSink, type MaskSource } from "./ws-frame.ts";
import { checkHandshakeResponse, handshakeRequest, MAX_HANDSHAKE_RESPONSE_BYTES, newWebSocketKey } from "./ws-handshake.ts";

/** What the owner of upstream sockets implements, once, for all of them (`ctx` tells them apart). */
export interface UpstreamHandler<C> {
  open(ctx: C): void;
  /** A whole message: text as a string, binary as bytes (a view: copy it to keep it past this call). */
  message(ctx: C, data: string | Uint8Array, byteLength: number): void;
  /** Everything queued has gone to the kernel. */
  drain(ctx: C): void;
  /** The connection ended without the owner closing it: 1006 when there was no close frame. */
  close(ctx: C, code: number, reason: string, wasOpen: boolean): void;
}

/** Where to connect and what to send in the upgrade request. */
export interface UpstreamDial {
  host: string;
  port: number;
  path: string;
  headers: Record<string, string>;
}

/** Seconds a closing socket may wait for the node's close frame before it is torn down. */
const CLOSE_WAIT_SECONDS = 5;

const enum Phase {
  Connecting,
  Handshake,
  Open,
  /** Our close frame is sent; waiting for the node's. */
  Closing,
  Closed,
}

/** Masking keys for every upstream socket of this process (a pooled CSPRNG buffer). */
const defaultMasks = new RandomMasks();

/**
 * One encode buffer for every upstream socket of this process (one JS thread): a frame is encoded
 * here and written at once; only bytes the kernel does not take are copied into the socket's queue.
 * Frames above its size get a buffer of their own.
 */
const SCRATCH_BYTES = 64 * 1024;
const scratch = Buffer.allocUnsafe(SCRATCH_BYTES);

export class UpstreamSocket<C> implements FrameSink {
  private phase = Phase.Connecting;
  private socket: Socket<UpstreamSocket<C>> | undefined;
  private key: string | undefined;
  private handshakeBytes: Buffer | undefined;
  /** Frames (or the tail of one) the kernel has not taken yet, in order. */
  private queue: Uint8Array[] | undefined;
  private queued = 0;
  /**
   * The latest ping's payload while the node is not reading (our queue is not empty): answered
   * once the queue drains. RFC 6455 §5.5.3 lets an endpoint answer only the most recent ping, so a
   * node that pings without reading cannot grow our queue with pongs.
   */
  private pendingPong: Uint8Array | undefined;
  private readonly parser: FrameParser;
  /** Where to dial; dropped once the request is written (an idle connection keeps no copy). */
  private target: UpstreamDial | undefined;

  constructor(
    private readonly handler: UpstreamHandler<C>,
    readonly ctx: C,
    maxMessageBytes: number,
    target: UpstreamDial,
    private readonly masks: MaskSource = defaultMasks,
  ) {
    this.parser = new FrameParser(maxMessageBytes);
    this.target = target;
  }

  /** Bytes accepted by `send` that the kernel has not taken yet. */
  get bufferedAmount(): number {
    return this.queued;
  }

  /** Whether the handshake is done and no close has begun. */
  get isOpen(): boolean {
    return this.phase === Phase.Open;
  }

  /** Dials the node. Failures arrive as `close(ctx, 1006, reason, false)`. */
  connect(): void {
    const t = this.target!;
    Bun.connect<UpstreamSocket<C>>({ hostname: t.host, port: t.port, data: this, socket: SOCKET_HANDLERS as Bun.SocketHandler<UpstreamSocket<C>> }).catch(() => {
      /* connectError has reported it */
    });
  }

  /** Sends one message; `byteLength` is its UTF-8 (text) or byte length. Ignored unless open. */
  send(data: string | Uint8Array, byteLength: number): void {
    if (this.phase !== Phase.Open) return;
    const opcode = typeof data === "string" ? OPCODE.TEXT : OPCODE.BINARY;
    const s = this.socket;
    if (this.queue || !s || clientFrameLength(byteLength) > SCRATCH_BYTES) {
      this.write(encodeClientFrame(opcode, data, byteLength, this.masks));
      return;
    }
    // The hot path: no allocation unless the kernel leaves part of the frame behind.
    const len = encodeClientFrameInto(scratch, opcode, data, byteLength, this.masks);
    const n = Math.max(0, s.write(scratch, 0, len));
    if (n < len) {
      this.queue = [Buffer.from(scratch.subarray(n, len))];
      this.queued = len - n;
    }
  }

  /** Starts the close handshake (or drops the connection when it is not open yet). No event follows. */
  close(code: number, reason: string): void {
    const phase = this.phase;
    if (phase === Phase.Closed || phase === Phase.Closing) return;
    if (phase !== Phase.Open) {
      this.phase = Phase.Closed;
      this.socket?.terminate();
      return;
    }
    this.phase = Phase.Closing;
    const payload = closePayload(isValidWireCloseCode(code) ? code : WS_CLOSE.NORMAL, reason);
    this.write(encodeClientFrame(OPCODE.CLOSE, payload, payload.length, this.masks));
    this.socket?.timeout(CLOSE_WAIT_SECONDS);
  }

  private write(frame: Uint8Array): void {
    const s = this.socket;
    if (!s) return;
    if (this.queue) {
      this.queue.push(frame);
      this.queued += frame.length;
      return;
    }
    const n = Math.max(0, s.write(frame));
    if (n < frame.length) {
      this.queue = [n === 0 ? frame : frame.subarray(n)];
      this.queued = frame.length - n;
    }
  }

  /** The owner's `close`, once, and only when it did not close the connection itself. */
  private finish(code: number, reason: string): void {
    const phase = this.phase;
    this.phase = Phase.Closed;
    this.queue = undefined;
    this.queued = 0;
    if (phase === Phase.Closed || phase === Phase.Closing) return;
    this.handler.close(this.ctx, code, reason, phase === Phase.Open);
  }

  // --- socket events (called from SOCKET_HANDLERS) ---

  onSocketOpen(s: Socket<UpstreamSocket<C>>): void {
    this.socket = s;
    if (this.phase === Phase.Closed) {
      s.terminate();
      return;
    }
    this.phase = Phase.Handshake;
    this.key = newWebSocketKey();
    const t = this.target!;
    this.target = undefined;
    let req: string;
    try {
      req = handshakeRequest(t.host, t.port, t.path, this.key, t.headers);
    } catch (err) {
      this.finish(1006, err instanceof Error ? err.message : "invalid request");
      s.terminate();
      return;
    }
    this.write(Buffer.from(req, "latin1"));
  }

  onSocketData(chunk: Buffer): void {
    const phase = this.phase;
    if (phase === Phase.Open || phase === Phase.Closing) {
      this.parser.push(chunk, this);
      return;
    }
    if (phase !== Phase.Handshake) return;
    const all = this.handshakeBytes ? Buffer.concat([this.handshakeBytes, chunk]) : chunk;
    const end = all.indexOf("\r\n\r\n");
    if (end < 0) {
      if (all.length > MAX_HANDSHAKE_RESPONSE_BYTES) this.fail("handshake response too long");
      else this.handshakeBytes = Buffer.from(all); // the chunk may be a view Bun reuses
      return;
    }
    this.handshakeBytes = undefined;
    const verdict = checkHandshakeResponse(all.toString("latin1", 0, end), this.key!);
    this.key = undefined;
    if (!verdict.ok) {
      this.fail(verdict.reason);
      return;
    }
    this.phase = Phase.Open;
    this.handler.open(this.ctx);
    // Frames the node sent right behind its 101 (same segment).
    if (all.length > end + 4 && this.phase === Phase.Open) this.parser.push(all.subarray(end + 4), this);
  }

  onSocketDrain(): void {
    const q = this.queue;
    const s = this.socket;
    if (!q || !s) return;
    // One write of everything queued: many small frames cost one syscall, and no O(n) shifts.
    const all = q.length === 1 ? q[0]! : Buffer.concat(q);
    const n = Math.max(0, s.write(all));
    if (n < all.length) {
      this.queue = [all.subarray(n)];
      this.queued = all.length - n;
      return;
    }
    this.queue = undefined;
    this.queued = 0;
    const pong = this.pendingPong;
    this.pendingPong = undefined;
    if (pong && this.phase === Phase.Open) this.write(encodeClientFrame(OPCODE.PONG, pong, pong.length, this.masks));
    if (this.phase === Phase.Open && !this.queue) this.handler.drain(this.ctx);
  }

  onSocketClosed(reason: string): void {
    this.finish(1006, reason);
  }

  /** Reports first: terminating fires the socket's close at once, which would report a vaguer reason. */
  private fail(reason: string): void {
    this.finish(1006, reason);
    this.socket?.terminate();
  }

  // --- FrameSink: what the parser found ---

  text(data: string, byteLength: number): void {
    if (this.phase === Phase.Open) this.handler.message(this.ctx, data, byteLength);
  }

  binary(data: Uint8Array): void {
    if (this.phase === Phase.Open) this.handler.message(this.ctx, data, data.length);
  }

  ping(data: Uint8Array): void {
    if (this.phase !== Phase.Open) return;
    // `data` may be a view of the socket's read buffer: keep a copy.
    if (this.queue) this.pendingPong = data.slice();
    else this.write(encodeClientFrame(OPCODE.PONG, data, data.length, this.masks));
  }

  pong(): void {
    /* unsolicited pongs are allowed and mean nothing */
  }

  closeFrame(code: number, reason: string): void {
    const s = this.socket;
    if (this.phase === Phase.Open) {
      // Answer with the same code (none when it sent none), then end our side.
      const payload = closePayload(code === WS_CLOSE.NO_STATUS ? WS_CLOSE.NO_STATUS : code, "");
      this.write(encodeClientFrame(OPCODE.CLOSE, payload, payload.length, this.masks));
      this.finish(code, reason);
    } else this.phase = Phase.Closed;
    s?.end();
  }

  violation(code: number, reason: string): void {
    if (this.phase === Phase.Open) {
      const payload = closePayload(code, reason);
      this.write(encodeClientFrame(OPCODE.CLOSE, payload, payload.length, this.masks));
    }
    this.finish(code, reason);
    this.socket?.end();
  }
}

/** One handler object for every upstream socket: the socket's `data` is its UpstreamSocket. */
const SOCKET_HANDLERS: Bun.SocketHandler<UpstreamSocket<unknown>> = {
  open: (s) => s.data.onSocketOpen(s),
  data: (s, chunk) => s.data.onSocketData(chunk),
  drain: (s) => s.data.onSocketDrain(),
  close: (s) => s.data.onSocketClosed("connection to the game server lost"),
  end: (s) => {
    // The node half-closed without a close frame: nothing more will come.
    s.data.onSocketClosed("game server ended the connection");
    s.terminate();
  },
  error: (s, err) => s.data.onSocketClosed(err.message),
  connectError: (s, err) => s.data.onSocketClosed(`connect failed: ${err.message}`),
  timeout: (s) => {
    // Only armed while closing: the node never answered our close frame.
    s.terminate();
  },
};
