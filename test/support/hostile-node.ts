/**
 * A game server that misbehaves on purpose: a raw TCP server (Bun.listen) that answers the
 * WebSocket upgrade correctly and then writes whatever bytes a scenario gives — fragmented messages
 * with pings between the fragments, invalid UTF-8, reserved bits, unknown opcodes, absurd lengths,
 * bad close frames, masked frames, one frame dribbled over many TCP writes. The scenario is the
 * room code (`/rooms/<scenario>`). It records what the gateway's RFC 6455 client sent back (pongs,
 * close frames), so tests can check that side too.
 */
import type { Socket, TCPSocketListener } from "bun";
import { acceptFor } from "../../gateway/ws/ws-handshake.ts";

/** One server frame (unmasked unless `mask` is given), with full control over the first byte. */
export function rawFrame(b0: number, payload: Uint8Array | string, opts: { mask?: Uint8Array; lengthBytes?: Uint8Array } = {}): Buffer {
  const p = typeof payload === "string" ? Buffer.from(payload, "utf8") : Buffer.from(payload);
  const n = p.length;
  let head: Buffer;
  if (opts.lengthBytes) head = Buffer.concat([Buffer.from([b0]), Buffer.from(opts.lengthBytes)]);
  else if (n < 126) head = Buffer.from([b0, n | (opts.mask ? 0x80 : 0)]);
  else if (n < 65536) head = Buffer.from([b0, 126 | (opts.mask ? 0x80 : 0), n >> 8, n & 0xff]);
  else {
    head = Buffer.alloc(10);
    head[0] = b0;
    head[1] = 127 | (opts.mask ? 0x80 : 0);
    head.writeBigUInt64BE(BigInt(n), 2);
  }
  if (!opts.mask) return Buffer.concat([head, p]);
  const body = Buffer.alloc(n);
  for (let i = 0; i < n; i++) body[i] = p[i]! ^ opts.mask[i & 3]!;
  return Buffer.concat([head, Buffer.from(opts.mask), body]);
}

/** What the gateway sent to the hostile node after the upgrade, parsed (client frames are masked). */
export interface FromGateway {
  opcode: number;
  payload: Buffer;
}

/** Stops and restarts reading what the gateway sends (TCP pushes back on it meanwhile). */
export interface ReadControl {
  pause(): void;
  resume(): void;
}

/**
 * A scenario writes to the socket (in order: what the kernel does not take is queued and sent on
 * drain); it may wait between writes (a frame split across many writes) and stop reading.
 */
export type Scenario = (write: (b: Uint8Array) => void, read: ReadControl) => Promise<void> | void;

export interface HostileNode {
  port: number;
  /** Frames received from the gateway per scenario (room code). */
  received: Map<string, FromGateway[]>;
  /** Per scenario: its reading control, and bytes written but not yet taken by the kernel. */
  control: Map<string, ReadControl & { unsent(): number }>;
  stop(): void;
}

interface ConnState {
  head: string;
  room: string | undefined;
  rest: Buffer;
  /** Bytes the kernel has not taken yet, in order. */
  unsent: Buffer[];
}

function flush(s: Socket<ConnState>): void {
  const q = s.data.unsent;
  while (q.length) {
    const b = q[0]!;
    const n = Math.max(0, s.write(b));
    if (n < b.length) {
      q[0] = b.subarray(n);
      return;
    }
    q.shift();
  }
}

function parseClientFrames(buf: Buffer, out: FromGateway[]): Buffer {
  let off = 0;
  while (buf.length - off >= 2) {
    const b0 = buf[off]!;
    const b1 = buf[off + 1]!;
    let len = b1 & 0x7f;
    let h = 2;
    if (len === 126) {
      if (buf.length - off < 4) break;
      len = buf.readUInt16BE(off + 2);
      h = 4;
    } else if (len === 127) {
      if (buf.length - off < 10) break;
      len = Number(buf.readBigUInt64BE(off + 2));
      h = 10;
    }
    const masked = (b1 & 0x80) !== 0;
    const total = h + (masked ? 4 : 0) + len;
    if (buf.length - off < total) break;
    const mask = masked ? buf.subarray(off + h, off + h + 4) : undefined;
    const payload = Buffer.from(buf.subarray(off + total - len, off + total));
    if (mask) for (let i = 0; i < len; i++) payload[i] = payload[i]! ^ mask[i & 3]!;
    out.push({ opcode: b0 & 0x0f, payload });
    off += total;
  }
  return buf.subarray(off);
}

/**
 * A hand-made answer to the upgrade request (given the client's key): the bytes to write, in
 * pieces written 5 ms apart, or `undefined` to answer nothing at all.
 */
export type Handshake = (key: string) => Uint8Array[] | undefined;

/** The correct 101 for `key`. */
export function goodHandshake(key: string, extraHeaders = ""): string {
  return `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptFor(key)}\r\n${extraHeaders}\r\n`;
}

/**
 * Starts the hostile node on 127.0.0.1 with `scenarios` by name (after a correct 101), and
 * `handshakes` by name (an upgrade answered the scenario's own way, then the scenario if any).
 */
export function startHostileNode(scenarios: Record<string, Scenario>, handshakes: Record<string, Handshake> = {}): HostileNode {
  const received = new Map<string, FromGateway[]>();
  const control = new Map<string, ReadControl & { unsent(): number }>();
  const sockets = new Set<Socket<ConnState>>();
  const listener: TCPSocketListener<ConnState> = Bun.listen<ConnState>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(s) {
        s.data = { head: "", room: undefined, rest: Buffer.alloc(0), unsent: [] };
        sockets.add(s);
      },
      data(s, chunk) {
        const st = s.data;
        if (st.room !== undefined) {
          st.rest = parseClientFrames(Buffer.concat([st.rest, chunk]), received.get(st.room)!);
          return;
        }
        st.head += chunk.toString("latin1");
        const end = st.head.indexOf("\r\n\r\n");
        if (end < 0) return;
        const lines = st.head.slice(0, end).split("\r\n");
        const path = lines[0]!.split(" ")[1] ?? "";
        const room = path.replace(/^\/rooms\//, "");
        const key = lines.find((l) => l.toLowerCase().startsWith("sec-websocket-key:"))?.split(":")[1]?.trim() ?? "";
        const scenario = scenarios[room];
        const handshake = handshakes[room];
        if (!scenario && !handshake) {
          s.end("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
          return;
        }
        st.room = room;
        received.set(room, []);
        const read: ReadControl & { unsent(): number } = {
          pause: () => s.pause(),
          resume: () => s.resume(),
          unsent: () => st.unsent.reduce((a, b) => a + b.length, 0),
        };
        control.set(room, read);
        const after = Buffer.from(st.head.slice(end + 4), "latin1");
        if (after.length) st.rest = parseClientFrames(after, received.get(room)!);
        const write = (b: Uint8Array) => {
          if (!sockets.has(s)) return;
          st.unsent.push(Buffer.from(b));
          if (st.unsent.length === 1) flush(s);
        };
        void (async () => {
          if (handshake) {
            const pieces = handshake(key);
            if (!pieces) return; // never answers
            for (const [i, p] of pieces.entries()) {
              if (i > 0) await Bun.sleep(5);
              write(p);
            }
          } else write(Buffer.from(goodHandshake(key), "latin1"));
          await scenario?.(write, read);
        })().catch(() => {});
      },
      drain(s) {
        flush(s);
      },
      close(s) {
        sockets.delete(s);
      },
      error(s) {
        sockets.delete(s);
      },
    },
  });
  return {
    port: listener.port,
    received,
    control,
    stop() {
      for (const s of sockets) s.terminate();
      sockets.clear();
      listener.stop(true);
    },
  };
}
