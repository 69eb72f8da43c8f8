/**
 * RFC 6455 framing for the relay's upstream client (gateway → node): frame encoding with the
 * client's mask, and an incremental parser of the server's frames. Pure: no sockets, no timers.
 *
 * The parser works on whatever chunks TCP delivers: a header split across chunks, many frames in
 * one chunk, a payload spread over many. Per frame it does O(1) work besides copying the payload
 * (and not even that when the frame sits whole in one chunk: the message is a view of it).
 * Protocol violations end parsing with the close code the RFC names (1002 protocol error,
 * 1007 invalid UTF-8, 1009 too big); nothing after a violation is delivered.
 */

export const OPCODE = { CONTINUATION: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa } as const;

/** Close codes this module produces. */
export const WS_CLOSE = { NORMAL: 1000, PROTOCOL_ERROR: 1002, NO_STATUS: 1005, INVALID_DATA: 1007, TOO_BIG: 1009 } as const;

/** Largest control-frame payload (RFC 6455 §5.5). */
export const MAX_CONTROL_PAYLOAD = 125;

/**
 * Masking keys from a strong random source (RFC 6455 §5.3: unpredictable per frame), drawn from a
 * pooled buffer refilled 1,024 keys at a time, so a frame costs no call into the CSPRNG.
 */
export class RandomMasks {
  private readonly pool = new Uint8Array(4096);
  private at = this.pool.length;

  /** Writes the next 4-byte key into `out` at `offset`. */
  next(out: Uint8Array, offset: number): void {
    if (this.at + 4 > this.pool.length) {
      crypto.getRandomValues(this.pool);
      this.at = 0;
    }
    const p = this.pool;
    const i = this.at;
    out[offset] = p[i]!;
    out[offset + 1] = p[i + 1]!;
    out[offset + 2] = p[i + 2]!;
    out[offset + 3] = p[i + 3]!;
    this.at = i + 4;
  }
}

/** Where masking keys come from (tests pass fixed keys). */
export interface MaskSource {
  next(out: Uint8Array, offset: number): void;
}

/** Header length of a client (masked) frame with this payload length. */
function maskedHeaderLength(n: number): number {
  return (n < 126 ? 2 : n < 65536 ? 4 : 10) + 4;
}

/**
 * One complete client frame (FIN set, masked): text is given as a string with its UTF-8 length
 * (the relay has measured it already), binary and control payloads as bytes.
 */
export function encodeClientFrame(opcode: number, payload: string | Uint8Array, byteLength: number, masks: MaskSource): Buffer {
  const out = Buffer.allocUnsafe(clientFrameLength(byteLength));
  encodeClientFrameInto(out, opcode, payload, byteLength, masks);
  return out;
}

/** Bytes of a client frame with a payload of `byteLength`. */
export function clientFrameLength(byteLength: number): number {
  return maskedHeaderLength(byteLength) + byteLength;
}

/**
 * Encodes one client frame at the start of `out` (at least `clientFrameLength(byteLength)` long)
 * and returns its length: the relay's hot path encodes into one reused buffer, so a frame the
 * kernel takes at once allocates nothing.
 */
export function encodeClientFrameInto(out: Buffer, opcode: number, payload: string | Uint8Array, byteLength: number, masks: MaskSource): number {
  const h = maskedHeaderLength(byteLength);
  out[0] = 0x80 | opcode;
  if (byteLength < 126) {
    out[1] = 0x80 | byteLength;
  } else if (byteLength < 65536) {
    out[1] = 0x80 | 126;
    out[2] = byteLength >>> 8;
    out[3] = byteLength & 0xff;
  } else {
    out[1] = 0x80 | 127;
    out.writeUInt32BE(Math.floor(byteLength / 0x1_0000_0000), 2);
    out.writeUInt32BE(byteLength >>> 0, 6);
  }
  masks.next(out, h - 4);
  const m0 = out[h - 4]!;
  const m1 = out[h - 3]!;
  const m2 = out[h - 2]!;
  const m3 = out[h - 1]!;
  if (typeof payload === "string") {
    out.write(payload, h, byteLength, "utf8");
    maskInPlace(out, h, byteLength, m0, m1, m2, m3);
  } else {
    let i = 0;
    for (; i + 4 <= byteLength; i += 4) {
      out[h + i] = payload[i]! ^ m0;
      out[h + i + 1] = payload[i + 1]! ^ m1;
      out[h + i + 2] = payload[i + 2]! ^ m2;
      out[h + i + 3] = payload[i + 3]! ^ m3;
    }
    for (; i < byteLength; i++) out[h + i] = payload[i]! ^ (i % 4 === 0 ? m0 : i % 4 === 1 ? m1 : m2);
  }
  return h + byteLength;
}

function maskInPlace(b: Uint8Array, at: number, n: number, m0: number, m1: number, m2: number, m3: number): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    b[at + i] = b[at + i]! ^ m0;
    b[at + i + 1] = b[at + i + 1]! ^ m1;
    b[at + i + 2] = b[at + i + 2]! ^ m2;
    b[at + i + 3] = b[at + i + 3]! ^ m3;
  }
  for (; i < n; i++) b[at + i] = b[at + i]! ^ (i % 4 === 0 ? m0 : i % 4 === 1 ? m1 : m2);
}

/** The payload of a close frame: code (when given) and UTF-8 reason, clipped to 123 bytes. */
export function closePayload(code: number, reason: string): Uint8Array {
  if (code === WS_CLOSE.NO_STATUS) return new Uint8Array(0);
  const r = Buffer.from(reason, "utf8");
  let n = Math.min(r.length, MAX_CONTROL_PAYLOAD - 2);
  // Never cut inside a UTF-8 sequence: back off continuation bytes (10xxxxxx).
  if (n < r.length) while (n > 0 && (r[n]! & 0xc0) === 0x80) n--;
  const out = Buffer.allocUnsafe(2 + n);
  out.writeUInt16BE(code, 0);
  r.copy(out, 2, 0, n);
  return out;
}

/** Codes a close frame may carry (RFC 6455 §7.4): not 1004-1006, 1015, the reserved ranges or < 1000. */
export function isValidWireCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

/** What the parser delivers. Implemented once per connection owner (no closures per frame). */
export interface FrameSink {
  /** A whole text message and its UTF-8 length. */
  text(data: string, byteLength: number): void;
  binary(data: Uint8Array): void;
  ping(data: Uint8Array): void;
  pong(data: Uint8Array): void;
  /** The peer's close frame: 1005 and "" when it carried no code. */
  closeFrame(code: number, reason: string): void;
  /** A protocol violation: the connection must close with `code`. */
  violation(code: number, reason: string): void;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Text messages up to this size are validated in JS and decoded straight from the chunk; larger ones by TextDecoder. */
const MAX_INLINE_TEXT = 4096;

/**
 * Whether `b[start, end)` is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing
 * above U+10FFFF) — what `TextDecoder` with `fatal: true` accepts, without allocating.
 */
export function isValidUtf8(b: Uint8Array, start: number, end: number): boolean {
  let i = start;
  while (i < end) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    if (c < 0xc2) return false; // a continuation byte first, or an overlong 2-byte form
    if (c < 0xe0) {
      if (i + 1 >= end || (b[i + 1]! & 0xc0) !== 0x80) return false;
      i += 2;
      continue;
    }
    if (c < 0xf0) {
      if (i + 2 >= end) return false;
      const c1 = b[i + 1]!;
      if ((c1 & 0xc0) !== 0x80 || (b[i + 2]! & 0xc0) !== 0x80) return false;
      if (c === 0xe0 && c1 < 0xa0) return false; // overlong
      if (c === 0xed && c1 > 0x9f) return false; // UTF-16 surrogates
      i += 3;
      continue;
    }
    if (c < 0xf5) {
      if (i + 3 >= end) return false;
      const c1 = b[i + 1]!;
      if ((c1 & 0xc0) !== 0x80 || (b[i + 2]! & 0xc0) !== 0x80 || (b[i + 3]! & 0xc0) !== 0x80) return false;
      if (c === 0xf0 && c1 < 0x90) return false; // overlong
      if (c === 0xf4 && c1 > 0x8f) return false; // above U+10FFFF
      i += 4;
      continue;
    }
    return false;
  }
  return true;
}

/** Incremental parser of server → client frames (unmasked). One per connection. */
export class FrameParser {
  /** Header bytes of a frame that has not fully arrived. */
  private head: Uint8Array | undefined;
  /** The payload being filled, its opcode and FIN. */
  private body: Uint8Array | undefined;
  private filled = 0;
  private bodyOpcode = 0;
  private bodyFin = false;
  /** Fragments of a message that began without FIN. */
  private fragments: Uint8Array[] | undefined;
  private fragmentBytes = 0;
  private fragmentOpcode = 0;
  private failed = false;

  constructor(private readonly maxMessageBytes: number) {}

  /** Feeds received bytes; events go to `sink` in order. */
  push(chunk: Uint8Array, sink: FrameSink): void {
    if (this.failed) return;
    let data = chunk;
    if (this.head) {
      const joined = new Uint8Array(this.head.length + chunk.length);
      joined.set(this.head, 0);
      joined.set(chunk, this.head.length);
      data = joined;
      this.head = undefined;
    }
    let off = 0;
    const end = data.length;
    while (off < end && !this.failed) {
      const body = this.body;
      if (body) {
        const take = Math.min(body.length - this.filled, end - off);
        body.set(data.subarray(off, off + take), this.filled);
        this.filled += take;
        off += take;
        if (this.filled === body.length) {
          this.body = undefined;
          this.frame(this.bodyOpcode, this.bodyFin, body, sink);
        }
        continue;
      }
      if (end - off < 2) {
        this.head = data.slice(off);
        return;
      }
      const b0 = data[off]!;
      const b1 = data[off + 1]!;
      const fin = (b0 & 0x80) !== 0;
      const opcode = b0 & 0x0f;
      let len = b1 & 0x7f;
      let h = 2;
      if (len === 126) h = 4;
      else if (len === 127) h = 10;
      if (end - off < h) {
        this.head = data.slice(off);
        return;
      }
      if (h === 4) len = (data[off + 2]! << 8) | data[off + 3]!;
      else if (h === 10) {
        const hi = ((data[off + 2]! << 24) >>> 0) + (data[off + 3]! << 16) + (data[off + 4]! << 8) + data[off + 5]!;
        const lo = ((data[off + 6]! << 24) >>> 0) + (data[off + 7]! << 16) + (data[off + 8]! << 8) + data[off + 9]!;
        if (hi >= 0x8000_0000) return this.fail(WS_CLOSE.PROTOCOL_ERROR, "64-bit length with the high bit set", sink);
        // Anything above 2^32 is far past any MAX_FRAME_BYTES: no need for exact arithmetic.
        len = hi > 0 ? Number.MAX_SAFE_INTEGER : lo;
      }
      if ((b0 & 0x70) !== 0) return this.fail(WS_CLOSE.PROTOCOL_ERROR, "reserved bits set without an extension", sink);
      if ((b1 & 0x80) !== 0) return this.fail(WS_CLOSE.PROTOCOL_ERROR, "server frames must not be masked", sink);
      if (opcode >= 0x8) {
        if (opcode > OPCODE.PONG) return this.fail(WS_CLOSE.PROTOCOL_ERROR, `unknown opcode ${opcode}`, sink);
        if (!fin) return this.fail(WS_CLOSE.PROTOCOL_ERROR, "fragmented control frame", sink);
        if (len > MAX_CONTROL_PAYLOAD) return this.fail(WS_CLOSE.PROTOCOL_ERROR, "control frame longer than 125 bytes", sink);
      } else {
        if (opcode > OPCODE.BINARY) return this.fail(WS_CLOSE.PROTOCOL_ERROR, `unknown opcode ${opcode}`, sink);
        if (opcode === OPCODE.CONTINUATION && !this.fragments) return this.fail(WS_CLOSE.PROTOCOL_ERROR, "continuation frame without a message to continue", sink);
        if (opcode !== OPCODE.CONTINUATION && this.fragments) return this.fail(WS_CLOSE.PROTOCOL_ERROR, "new message inside a fragmented one", sink);
        if (this.fragmentBytes + len > this.maxMessageBytes) return this.fail(WS_CLOSE.TOO_BIG, "frame from the game server exceeds MAX_FRAME_BYTES", sink);
      }
      off += h;
      if (end - off >= len) {
        if (opcode === OPCODE.TEXT && fin && len <= MAX_INLINE_TEXT && data instanceof Buffer) {
          // The common case, a small whole text message: decoded straight from the chunk, so it
          // costs the string and nothing else (no view of the chunk). Decoding replaces anything
          // invalid with U+FFFD, so only a string holding one needs the strict check.
          const at = off;
          off += len;
          const t = data.toString("utf8", at, at + len);
          if (t.indexOf("\uFFFD") >= 0 && !isValidUtf8(data, at, at + len)) return this.fail(WS_CLOSE.INVALID_DATA, "text frame is not valid UTF-8", sink);
          sink.text(t, len);
          continue;
        }
        // The whole payload is here: a view, no copy.
        const payload = data.subarray(off, off + len);
        off += len;
        this.frame(opcode, fin, payload, sink);
      } else {
        this.body = new Uint8Array(len);
        this.bodyOpcode = opcode;
        this.bodyFin = fin;
        this.filled = 0;
      }
    }
  }

  private fail(code: number, reason: string, sink: FrameSink): void {
    this.failed = true;
    this.head = undefined;
    this.body = undefined;
    this.fragments = undefined;
    sink.violation(code, reason);
  }

  private frame(opcode: number, fin: boolean, payload: Uint8Array, sink: FrameSink): void {
    switch (opcode) {
      case OPCODE.PING:
        return sink.ping(payload);
      case OPCODE.PONG:
        return sink.pong(payload);
      case OPCODE.CLOSE:
        return this.closeFrame(payload, sink);
    }
    if (opcode !== OPCODE.CONTINUATION) {
      if (fin) return this.message(opcode, payload, sink);
      // The chunk's buffer may be reused by whoever handed it over: fragments are copied.
      this.fragments = [payload.slice()];
      this.fragmentBytes = payload.length;
      this.fragmentOpcode = opcode;
      return;
    }
    const frags = this.fragments!;
    frags.push(payload.slice());
    this.fragmentBytes += payload.length;
    if (!fin) return;
    const whole = new Uint8Array(this.fragmentBytes);
    let at = 0;
    for (const f of frags) {
      whole.set(f, at);
      at += f.length;
    }
    const op = this.fragmentOpcode;
    this.fragments = undefined;
    this.fragmentBytes = 0;
    this.message(op, whole, sink);
  }

  private message(opcode: number, payload: Uint8Array, sink: FrameSink): void {
    if (opcode === OPCODE.BINARY) return sink.binary(payload);
    let text: string;
    try {
      text = utf8.decode(payload);
    } catch {
      return this.fail(WS_CLOSE.INVALID_DATA, "text frame is not valid UTF-8", sink);
    }
    sink.text(text, payload.length);
  }

  private closeFrame(payload: Uint8Array, sink: FrameSink): void {
    if (payload.length === 0) return sink.closeFrame(WS_CLOSE.NO_STATUS, "");
    if (payload.length === 1) return this.fail(WS_CLOSE.PROTOCOL_ERROR, "close frame with a 1-byte payload", sink);
    const code = (payload[0]! << 8) | payload[1]!;
    if (!isValidWireCloseCode(code)) return this.fail(WS_CLOSE.PROTOCOL_ERROR, `invalid close code ${code}`, sink);
    let reason: string;
    try {
      reason = utf8.decode(payload.subarray(2));
    } catch {
      return this.fail(WS_CLOSE.INVALID_DATA, "close reason is not valid UTF-8", sink);
    }
    this.failed = true; // nothing may follow a close frame
    sink.closeFrame(code, reason);
  }
}
