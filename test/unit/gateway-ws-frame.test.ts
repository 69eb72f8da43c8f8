import { describe, expect, test } from "bun:test";
import { closePayload, encodeClientFrame, FrameParser, OPCODE, RandomMasks, type FrameSink, type MaskSource } from "../../gateway/ws/ws-frame.ts";
import { acceptFor, checkHandshakeResponse, handshakeRequest } from "../../gateway/ws/ws-handshake.ts";

/** Always the same key, so encoded frames can be checked byte for byte. */
class FixedMasks implements MaskSource {
  constructor(private readonly key: number[]) {}
  next(out: Uint8Array, offset: number): void {
    out.set(this.key, offset);
  }
}

type Event = ["text", string, number] | ["binary", number[]] | ["ping", number[]] | ["pong", number[]] | ["close", number, string] | ["violation", number, string];

/** Records what the parser delivers. */
function recorder(): { sink: FrameSink; events: Event[] } {
  const events: Event[] = [];
  return {
    events,
    sink: {
      text: (d, n) => events.push(["text", d, n]),
      binary: (d) => events.push(["binary", [...d]]),
      ping: (d) => events.push(["ping", [...d]]),
      pong: (d) => events.push(["pong", [...d]]),
      closeFrame: (c, r) => events.push(["close", c, r]),
      violation: (c, r) => events.push(["violation", c, r]),
    },
  };
}

/** A server frame (unmasked unless `mask`), with explicit FIN/RSV bits for the bad cases. */
function serverFrame(opcode: number, payload: Uint8Array | string, opts: { fin?: boolean; rsv?: number; mask?: boolean; len?: number } = {}): Uint8Array {
  const p = typeof payload === "string" ? Buffer.from(payload, "utf8") : payload;
  const n = opts.len ?? p.length;
  const head: number[] = [((opts.fin ?? true) ? 0x80 : 0) | ((opts.rsv ?? 0) << 4) | opcode];
  const m = opts.mask ? 0x80 : 0;
  if (n < 126) head.push(m | n);
  else if (n < 65536) head.push(m | 126, n >>> 8, n & 0xff);
  else head.push(m | 127, 0, 0, 0, 0, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
  if (opts.mask) head.push(0, 0, 0, 0);
  return Buffer.concat([Buffer.from(head), p]);
}

function parseAll(bytes: Uint8Array, max = 1 << 20, chunkSize = bytes.length || 1): Event[] {
  const { sink, events } = recorder();
  const parser = new FrameParser(max);
  for (let i = 0; i < bytes.length; i += chunkSize) parser.push(bytes.subarray(i, i + chunkSize), sink);
  return events;
}

/** Unmasks a client frame and returns its opcode, FIN and payload. */
function decodeClientFrame(f: Uint8Array): { fin: boolean; opcode: number; masked: boolean; payload: Buffer; headerLength: number } {
  let len = f[1]! & 0x7f;
  let h = 2;
  if (len === 126) {
    len = (f[2]! << 8) | f[3]!;
    h = 4;
  } else if (len === 127) {
    len = Buffer.from(f).readUInt32BE(6);
    h = 10;
  }
  const key = f.subarray(h, h + 4);
  const payload = Buffer.from(f.subarray(h + 4, h + 4 + len)).map((b, i) => b ^ key[i % 4]!);
  expect(h + 4 + len).toBe(f.length);
  return { fin: (f[0]! & 0x80) !== 0, opcode: f[0]! & 0x0f, masked: (f[1]! & 0x80) !== 0, payload: Buffer.from(payload), headerLength: h + 4 };
}

describe("encodeClientFrame", () => {
  const masks = new FixedMasks([0x12, 0x34, 0x56, 0x78]);
  test.each([
    [0, 6],
    [1, 6],
    [125, 6],
    [126, 8],
    [65535, 8],
    [65536, 14],
    [200_001, 14],
  ])("binary of %d bytes: header %d bytes, masked, FIN, payload recovered exactly", (n, header) => {
    const payload = Uint8Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff);
    const f = encodeClientFrame(OPCODE.BINARY, payload, n, masks);
    const d = decodeClientFrame(f);
    expect(d).toMatchObject({ fin: true, opcode: OPCODE.BINARY, masked: true, headerLength: header });
    expect(d.payload.equals(Buffer.from(payload))).toBe(true);
    if (n > 0) expect(f[header]).toBe(payload[0]! ^ 0x12); // really masked, not copied
  });

  test.each([["hello"], ["{\"a\":  1}"], ["é漢😀"], ["x".repeat(126)], ["ü".repeat(40_000)]])("text %#: UTF-8 bytes masked and recovered", (s) => {
    const n = Buffer.byteLength(s);
    const d = decodeClientFrame(encodeClientFrame(OPCODE.TEXT, s, n, masks));
    expect(d.opcode).toBe(OPCODE.TEXT);
    expect(d.payload.toString("utf8")).toBe(s);
  });

  test("random masks differ from frame to frame", () => {
    const m = new RandomMasks();
    const keys = new Set<string>();
    for (let i = 0; i < 2000; i++) keys.add(Buffer.from(encodeClientFrame(OPCODE.TEXT, "", 0, m).subarray(2, 6)).toString("hex"));
    expect(keys.size).toBeGreaterThan(1990); // 2,000 draws from 2^32: a repeat or two at most
  });
});

describe("closePayload", () => {
  test.each([
    [1000, "bye", [0x03, 0xe8, ...Buffer.from("bye")]],
    [4009, "", [0x0f, 0xa9]],
    [1005, "ignored", []],
  ])("%d %p", (code, reason, bytes) => {
    expect([...closePayload(code, reason)]).toEqual(bytes);
  });

  test("a long reason is cut to 123 bytes, never inside a UTF-8 character", () => {
    const p = closePayload(1000, "é".repeat(100)); // 200 bytes of 2-byte characters
    expect(p.length).toBeLessThanOrEqual(125);
    expect(Buffer.from(p.subarray(2)).toString("utf8")).toBe("é".repeat(61));
  });
});

describe("FrameParser", () => {
  const lengths = [0, 1, 125, 126, 127, 65535, 65536, 70_000];
  test.each(lengths)("binary of %d bytes, whole and in 1,000-byte and 1-byte chunks", (n) => {
    const payload = Uint8Array.from({ length: n }, (_, i) => i & 0xff);
    const frame = serverFrame(OPCODE.BINARY, payload);
    for (const chunk of n > 2000 ? [frame.length, 1000] : [frame.length, 1000, 1]) {
      const ev = parseAll(frame, 1 << 20, chunk);
      expect(ev).toHaveLength(1);
      expect(ev[0]![0]).toBe("binary");
      expect(Buffer.from(ev[0]![1] as number[]).equals(Buffer.from(payload))).toBe(true);
    }
  });

  test("many frames in one chunk come out in order, text stays text and binary stays binary", () => {
    const bytes = Buffer.concat([serverFrame(OPCODE.TEXT, "a"), serverFrame(OPCODE.BINARY, Uint8Array.of(0, 255)), serverFrame(OPCODE.TEXT, "{\"a\":  1}"), serverFrame(OPCODE.PONG, "p")]);
    expect(parseAll(bytes)).toEqual([
      ["text", "a", 1],
      ["binary", [0, 255]],
      ["text", "{\"a\":  1}", 9],
      ["pong", [0x70]],
    ]);
  });

  test("a multi-byte character split across chunks arrives whole", () => {
    const frame = serverFrame(OPCODE.TEXT, "a😀b");
    for (let cut = 1; cut < frame.length; cut++) {
      const { sink, events } = recorder();
      const p = new FrameParser(1024);
      p.push(frame.subarray(0, cut), sink);
      p.push(frame.subarray(cut), sink);
      expect(events).toEqual([["text", "a😀b", 6]]);
    }
  });

  test("fragmented text with a ping in the middle: ping first, then the joined message", () => {
    const bytes = Buffer.concat([
      serverFrame(OPCODE.TEXT, "Hel", { fin: false }),
      serverFrame(OPCODE.CONTINUATION, "lo ", { fin: false }),
      serverFrame(OPCODE.PING, "!"),
      serverFrame(OPCODE.CONTINUATION, "wörld", { fin: true }),
      serverFrame(OPCODE.BINARY, Uint8Array.of(1), { fin: false }),
      serverFrame(OPCODE.CONTINUATION, Uint8Array.of(2), { fin: true }),
    ]);
    for (const chunk of [bytes.length, 3, 1]) {
      expect(parseAll(bytes, 1024, chunk)).toEqual([
        ["ping", [0x21]],
        ["text", "Hello wörld", 12],
        ["binary", [1, 2]],
      ]);
    }
  });

  test.each([
    ["close with code and reason", serverFrame(OPCODE.CLOSE, closePayload(4009, "draining; reconnect after 1000 ms")), ["close", 4009, "draining; reconnect after 1000 ms"]],
    ["close without a code", serverFrame(OPCODE.CLOSE, new Uint8Array(0)), ["close", 1005, ""]],
    ["close with a 1-byte payload", serverFrame(OPCODE.CLOSE, Uint8Array.of(3)), ["violation", 1002, "close frame with a 1-byte payload"]],
    ["close carrying 1005", serverFrame(OPCODE.CLOSE, Uint8Array.of(0x03, 0xed)), ["violation", 1002, "invalid close code 1005"]],
    ["close carrying 999", serverFrame(OPCODE.CLOSE, Uint8Array.of(0x03, 0xe7)), ["violation", 1002, "invalid close code 999"]],
    ["close reason not UTF-8", serverFrame(OPCODE.CLOSE, Uint8Array.of(0x03, 0xe8, 0xff)), ["violation", 1007, "close reason is not valid UTF-8"]],
    ["masked server frame", serverFrame(OPCODE.TEXT, "x", { mask: true }), ["violation", 1002, "server frames must not be masked"]],
    ["reserved bit", serverFrame(OPCODE.TEXT, "x", { rsv: 4 }), ["violation", 1002, "reserved bits set without an extension"]],
    ["unknown data opcode", serverFrame(0x3, "x"), ["violation", 1002, "unknown opcode 3"]],
    ["unknown control opcode", serverFrame(0xb, "x"), ["violation", 1002, "unknown opcode 11"]],
    ["fragmented ping", serverFrame(OPCODE.PING, "x", { fin: false }), ["violation", 1002, "fragmented control frame"]],
    ["126-byte ping", serverFrame(OPCODE.PING, "x".repeat(126)), ["violation", 1002, "control frame longer than 125 bytes"]],
    ["continuation without a start", serverFrame(OPCODE.CONTINUATION, "x"), ["violation", 1002, "continuation frame without a message to continue"]],
    ["text not UTF-8", serverFrame(OPCODE.TEXT, Uint8Array.of(0x61, 0xc3)), ["violation", 1007, "text frame is not valid UTF-8"]],
    ["frame above the limit", serverFrame(OPCODE.BINARY, new Uint8Array(1025)), ["violation", 1009, "frame from the game server exceeds MAX_FRAME_BYTES"]],
  ] as const)("%s", (_name, bytes, expected) => {
    expect(parseAll(bytes, 1024)).toEqual([expected as unknown as Event]);
  });

  test("a new message inside a fragmented one is a protocol error", () => {
    const bytes = Buffer.concat([serverFrame(OPCODE.TEXT, "a", { fin: false }), serverFrame(OPCODE.TEXT, "b")]);
    expect(parseAll(bytes)).toEqual([["violation", 1002, "new message inside a fragmented one"]]);
  });

  test("fragments adding up past the limit close 1009 before the whole message is held", () => {
    const bytes = Buffer.concat([serverFrame(OPCODE.BINARY, new Uint8Array(600), { fin: false }), serverFrame(OPCODE.CONTINUATION, new Uint8Array(600))]);
    expect(parseAll(bytes, 1024)).toEqual([["violation", 1009, "frame from the game server exceeds MAX_FRAME_BYTES"]]);
  });

  test("the limit is checked from the header: a huge declared length is refused before its payload", () => {
    const { sink, events } = recorder();
    const p = new FrameParser(1 << 20);
    p.push(Uint8Array.of(0x82, 127, 0, 0, 0, 1, 0, 0, 0, 0), sink); // 2^32 bytes announced
    expect(events).toEqual([["violation", 1009, "frame from the game server exceeds MAX_FRAME_BYTES"]]);
  });

  test("nothing is delivered after a close frame or a violation", () => {
    expect(parseAll(Buffer.concat([serverFrame(OPCODE.CLOSE, closePayload(1000, "")), serverFrame(OPCODE.TEXT, "late")]))).toEqual([["close", 1000, ""]]);
    expect(parseAll(Buffer.concat([serverFrame(OPCODE.TEXT, "x", { rsv: 1 }), serverFrame(OPCODE.TEXT, "late")]))).toHaveLength(1);
  });
});

describe("handshake", () => {
  test("Sec-WebSocket-Accept of the RFC 6455 example key", () => {
    expect(acceptFor("dGhlIHNhbXBsZSBub25jZQ==")).toBe("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  });

  test("the request carries the key, version 13 and the node headers", () => {
    const req = handshakeRequest("127.0.0.1", 8081, "/rooms/abcd", "k==", { "X-Node-Token": "t", "X-Player-Id": "p_1" });
    expect(req).toBe(
      "GET /rooms/abcd HTTP/1.1\r\nHost: 127.0.0.1:8081\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: k==\r\nSec-WebSocket-Version: 13\r\nX-Node-Token: t\r\nX-Player-Id: p_1\r\n\r\n",
    );
  });

  test.each([
    [{ "X-Player-Name": "a\r\nX-Evil: 1" }],
    [{ "X-Player-Name": "a\nb" }],
    [{ "Bad Name": "v" }],
  ])("a header that could break the request is refused (%#)", (headers) => {
    expect(() => handshakeRequest("h", 1, "/rooms/x", "k", headers)).toThrow();
  });

  const key = "dGhlIHNhbXBsZSBub25jZQ==";
  const good = ["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade", `Sec-WebSocket-Accept: ${acceptFor(key)}`];
  test.each([
    ["a proper 101", good, { ok: true }],
    ["header names in any case, Connection with more tokens", ["HTTP/1.1 101 OK", "upgrade: WebSocket", "connection: keep-alive, upgrade", `sec-websocket-accept: ${acceptFor(key)}`], { ok: true }],
    ["a refusal", ["HTTP/1.1 401 Unauthorized", "Content-Length: 0"], { ok: false, reason: "node answered 401" }],
    ["not HTTP", ["SSH-2.0-OpenSSH"], { ok: false, reason: "not an HTTP/1.1 response" }],
    ["wrong accept", [...good.slice(0, 3), "Sec-WebSocket-Accept: AAAA"], { ok: false, reason: "wrong Sec-WebSocket-Accept" }],
    ["no Upgrade", [good[0], good[2], good[3]], { ok: false, reason: "missing Upgrade: websocket" }],
    ["no Connection", [good[0], good[1], good[3]], { ok: false, reason: "missing Connection: Upgrade" }],
    ["an extension we did not offer", [...good, "Sec-WebSocket-Extensions: permessage-deflate"], { ok: false, reason: "node chose an extension that was not offered" }],
    ["a subprotocol we did not offer", [...good, "Sec-WebSocket-Protocol: chat"], { ok: false, reason: "node chose a subprotocol that was not offered" }],
  ] as const)("%s", (_name, lines, verdict) => {
    expect(checkHandshakeResponse(lines.join("\r\n"), key)).toEqual(verdict);
  });
});
