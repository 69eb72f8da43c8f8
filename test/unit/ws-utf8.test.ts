/**
 * The relay's in-place UTF-8 check (ws-frame.ts `isValidUtf8`, used for small text messages from a
 * node) accepts exactly what `TextDecoder` with `fatal: true` accepts: differential tests over
 * every 1- and 2-byte sequence, every lead/second byte pair with the boundary values of the rest,
 * and random sequences; and the parser's answer is the same on both of its paths.
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";

// Exhaustive sweeps: ~1 s on a quiet machine, several on a loaded CI box.
setDefaultTimeout(30_000);
import { FrameParser, isValidUtf8, type FrameSink } from "../../gateway/ws/ws-frame.ts";

const fatal = new TextDecoder("utf-8", { fatal: true });
function reference(b: Uint8Array): boolean {
  try {
    fatal.decode(b);
    return true;
  } catch {
    return false;
  }
}

const EDGES = [0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff];

describe("isValidUtf8 agrees with TextDecoder (fatal)", () => {
  test("every 1- and 2-byte sequence", () => {
    const b = new Uint8Array(2);
    let bad = 0;
    for (let x = 0; x < 256; x++) {
      if (isValidUtf8(Uint8Array.of(x), 0, 1) !== reference(Uint8Array.of(x))) bad++;
      for (let y = 0; y < 256; y++) {
        b[0] = x;
        b[1] = y;
        if (isValidUtf8(b, 0, 2) !== reference(b)) bad++;
      }
    }
    expect(bad).toBe(0);
  });

  test("every multi-byte lead (C2-F4) and second byte with the boundary values of the third (a continuation fourth)", () => {
    const b = new Uint8Array(4);
    const mismatches: string[] = [];
    for (let x = 0xc2; x <= 0xf4; x++)
      for (let y = 0; y < 256; y++)
        for (const z of EDGES)
          for (const w of [0x80]) {
            b[0] = x;
            b[1] = y;
            b[2] = z;
            b[3] = w;
            if (isValidUtf8(b, 0, 3) !== reference(b.subarray(0, 3))) mismatches.push([x, y, z].map((v) => v.toString(16)).join(" "));
            if (isValidUtf8(b, 0, 4) !== reference(b)) mismatches.push([x, y, z, w].map((v) => v.toString(16)).join(" "));
          }
    expect(mismatches.slice(0, 10)).toEqual([]);
  });

  test("100,000 random sequences, and offsets inside a larger buffer", () => {
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) & 0xff;
    let bad = 0;
    for (let i = 0; i < 100_000; i++) {
      const len = 1 + (rnd() % 12);
      const buf = new Uint8Array(len + 4);
      for (let j = 0; j < buf.length; j++) buf[j] = i % 3 === 0 ? EDGES[rnd() % EDGES.length]! : rnd();
      if (isValidUtf8(buf, 2, 2 + len) !== reference(buf.subarray(2, 2 + len))) bad++;
    }
    expect(bad).toBe(0);
  });
});

describe("FrameParser: small text messages (checked in place) and large ones (TextDecoder) agree", () => {
  const frame = (payload: Buffer) => {
    const n = payload.length;
    const head = n < 126 ? Buffer.from([0x81, n]) : Buffer.from([0x81, 126, n >> 8, n & 0xff]);
    return Buffer.concat([head, payload]);
  };
  const parse = (bytes: Buffer): unknown[] => {
    const out: unknown[] = [];
    const sink: FrameSink = {
      text: (t, n) => void out.push(["text", t, n]),
      binary: (b) => void out.push(["binary", b.length]),
      ping() {},
      pong() {},
      closeFrame: (c) => void out.push(["close", c]),
      violation: (c) => void out.push(["violation", c]),
    };
    new FrameParser(1 << 20).push(bytes, sink);
    return out;
  };
  test("20,000 random payloads: the in-place path delivers exactly what TextDecoder decodes, or 1007", () => {
    let seed = 777;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) & 0xff;
    const wrong: string[] = [];
    for (let i = 0; i < 20_000; i++) {
      const len = rnd() % 40;
      const p = Buffer.alloc(len);
      for (let j = 0; j < len; j++) p[j] = i % 2 ? EDGES[rnd() % EDGES.length]! : rnd() % 3 === 0 ? rnd() : 0x20 + (rnd() % 90);
      const got = parse(frame(p));
      const want = reference(p) ? [["text", fatal.decode(p), len]] : [["violation", 1007]];
      if (!Bun.deepEquals(got, want)) wrong.push(p.toString("hex"));
    }
    expect(wrong.slice(0, 5)).toEqual([]);
  });

  test.each([
    ["ascii", Buffer.from("hello")],
    ["a real U+FFFD (valid)", Buffer.from("a\uFFFDb")],
    ["multi-byte", Buffer.from("Zoë 🚀 日本")],
    ["surrogate (invalid)", Buffer.from([0x61, 0xed, 0xa0, 0x80])],
    ["truncated (invalid)", Buffer.from([0x61, 0xe2, 0x82])],
    ["above U+10FFFF (invalid)", Buffer.from([0xf4, 0x90, 0x80, 0x80])],
  ])("%s", (_what, p) => {
    const small = parse(frame(p));
    // The same content padded with ASCII past the in-place limit goes through TextDecoder.
    const pad = Buffer.alloc(5000, 0x20);
    const large = parse(frame(Buffer.concat([p, pad])));
    if (reference(p)) {
      expect(small).toEqual([["text", p.toString("utf8"), p.length]]);
      expect(large).toEqual([["text", p.toString("utf8") + pad.toString(), p.length + pad.length]]);
    } else {
      expect(small).toEqual([["violation", 1007]]);
      expect(large).toEqual([["violation", 1007]]);
    }
  });
});
