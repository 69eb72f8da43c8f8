/**
 * The gateway's own RFC 6455 client (upstream-socket.ts + ws-frame.ts) facing a buggy or hostile
 * game server: a raw-TCP fake node (test/support/hostile-node.ts) behind a real gateway on real
 * Redis. For every scenario the player sees either the byte-exact message or the right close —
 * 1002 (the node broke the protocol), 1007 (invalid UTF-8 in a text message), 1009 (a frame above
 * MAX_FRAME_BYTES) — within a deadline; the node gets a close frame with the same code; and the
 * gateway goes on serving (never a crash, never a hang).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { closedWithin, openSocket, startTestGateway, type TestGateway, type TestSocket } from "../support/gateway-fixtures.ts";
import { goodHandshake, rawFrame, startHostileNode, type Handshake, type HostileNode, type Scenario } from "../support/hostile-node.ts";
import { makeNode } from "../support/nodes.ts";
import { need, testRedis, type TestRedis } from "../support/services.ts";

const MAX_FRAME = 64 * 1024;
const FIN = 0x80;
const TEXT = 0x1;
const BINARY = 0x2;
const CLOSE = 0x8;
const PING = 0x9;

const u8 = (...b: number[]) => new Uint8Array(b);
const PING_FLOOD = 200_000;
const closeFrame = (code: number, reason = "") => rawFrame(FIN | CLOSE, Buffer.concat([Buffer.from([code >> 8, code & 0xff]), Buffer.from(reason)]));
/** 300 bytes of every value, for byte-exact checks. */
const BIG = Uint8Array.from({ length: 300 }, (_, i) => (i * 7) & 0xff);

const scenarios: Record<string, Scenario> = {
  // A text message in three fragments with pings between them; "ö" is split across two fragments.
  "frag-ping": (w) => {
    const all = Buffer.from("Hello, wörld", "utf8");
    w(rawFrame(TEXT, all.subarray(0, 3)));
    w(rawFrame(FIN | PING, "p1"));
    w(rawFrame(0x0, all.subarray(3, 9))); // ends inside "ö" (0xc3 | 0xb6)
    w(rawFrame(FIN | PING, "p2"));
    w(rawFrame(FIN | 0x0, all.subarray(9)));
  },
  // A binary frame dribbled over 40 writes, 3 ms apart (header split too).
  "split-writes": async (w) => {
    const f = rawFrame(FIN | BINARY, BIG);
    const step = Math.ceil(f.length / 40);
    for (let i = 0; i < f.length; i += step) {
      w(f.subarray(i, i + step));
      await Bun.sleep(3);
    }
  },
  "empty-both": (w) => {
    w(rawFrame(FIN | TEXT, ""));
    w(rawFrame(FIN | BINARY, new Uint8Array(0)));
    w(rawFrame(FIN | TEXT, "end"));
  },
  "bad-utf8": (w) => w(rawFrame(FIN | TEXT, u8(0xce, 0xba, 0xe1, 0xbd, 0x80, 0xed, 0xa0, 0x80))),
  "bad-utf8-fragmented": (w) => {
    w(rawFrame(TEXT, "valid start "));
    w(rawFrame(FIN | 0x0, u8(0xf4, 0x90, 0x80, 0x80))); // above U+10FFFF
  },
  rsv1: (w) => w(rawFrame(FIN | 0x40 | TEXT, "x")),
  rsv3: (w) => w(rawFrame(FIN | 0x10 | BINARY, u8(1))),
  "opcode-3": (w) => w(rawFrame(FIN | 0x3, "x")),
  "opcode-b": (w) => w(rawFrame(FIN | 0xb, "x")),
  // 2^63: the 64-bit length with its high bit set (RFC 6455 §5.2: MUST be 0).
  "len-2-63": (w) => w(rawFrame(FIN | BINARY, "", { lengthBytes: u8(127, 0x80, 0, 0, 0, 0, 0, 0, 0) })),
  // 2^62: legal on the wire, far above MAX_FRAME_BYTES.
  "len-2-62": (w) => w(rawFrame(FIN | BINARY, "", { lengthBytes: u8(127, 0x40, 0, 0, 0, 0, 0, 0, 0) })),
  oversize: (w) => w(rawFrame(FIN | BINARY, new Uint8Array(MAX_FRAME + 1))),
  "oversize-fragments": (w) => {
    w(rawFrame(BINARY, new Uint8Array(MAX_FRAME / 2)));
    w(rawFrame(0x0, new Uint8Array(MAX_FRAME / 2)));
    w(rawFrame(FIN | 0x0, u8(1)));
  },
  "close-code-999": (w) => w(closeFrame(999)),
  "close-code-1005": (w) => w(closeFrame(1005)),
  "close-code-1100": (w) => w(closeFrame(1100)),
  "close-1-byte": (w) => w(rawFrame(FIN | CLOSE, u8(0x03))),
  "close-bad-utf8-reason": (w) => w(rawFrame(FIN | CLOSE, u8(0x03, 0xe8, 0xff, 0xfe))),
  masked: (w) => w(rawFrame(FIN | TEXT, "masked", { mask: u8(1, 2, 3, 4) })),
  "ping-126": (w) => w(rawFrame(FIN | PING, new Uint8Array(126))),
  "ping-fragmented": (w) => w(rawFrame(PING, "x")),
  "continuation-first": (w) => w(rawFrame(FIN | 0x0, "x")),
  "text-inside-fragments": (w) => {
    w(rawFrame(TEXT, "a"));
    w(rawFrame(FIN | TEXT, "b"));
  },
  "close-normal": (w) => w(closeFrame(1000, "bye")),
  // 200,000 pings (25 MB) from a node that has stopped reading: the gateway must not queue a pong
  // for each (RFC 6455 §5.5.3: answering the latest is enough), then "done".
  "ping-flood": (w, read) => {
    read.pause();
    const p = Buffer.alloc(125, 0x2e);
    for (let i = 0; i < PING_FLOOD; i++) {
      p.writeUInt32BE(i, 0);
      w(rawFrame(FIN | PING, p));
    }
    w(rawFrame(FIN | TEXT, "done"));
  },
  hello: (w) => w(rawFrame(FIN | TEXT, "hello")),
};

const latin1 = (s: string) => Buffer.from(s, "latin1");

/** Upgrades answered wrong: the player gets 1011 (the node could not be reached), never a hang. */
const handshakes: Record<string, Handshake> = {
  "hs-200": () => [latin1("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")],
  "hs-401": () => [latin1("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")],
  "hs-bad-accept": () => [latin1(goodHandshake("not-the-key"))],
  "hs-no-upgrade": (key) => [latin1(goodHandshake(key).replace("Upgrade: websocket\r\n", ""))],
  "hs-deflate": (key) => [latin1(goodHandshake(key, "Sec-WebSocket-Extensions: permessage-deflate\r\n"))],
  "hs-protocol": (key) => [latin1(goodHandshake(key, "Sec-WebSocket-Protocol: chat\r\n"))],
  "hs-http10": (key) => [latin1(goodHandshake(key).replace("HTTP/1.1", "HTTP/1.0"))],
  "hs-garbage": () => [latin1("\x00\x01\x02 not http at all\r\n\r\n")],
  "hs-endless-headers": () => [latin1("HTTP/1.1 101 Switching Protocols\r\n" + "X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n".repeat(400))],
  "hs-silent": () => undefined,
  // Right answers in odd shapes: byte by byte, and with a frame in the 101's own segment.
  "hs-dribbled": (key) => [...latin1(goodHandshake(key))].map((b) => Uint8Array.of(b)).slice(0, 60).concat([latin1(goodHandshake(key)).subarray(60)]),
  "hs-frame-in-101": (key) => [Buffer.concat([latin1(goodHandshake(key)), rawFrame(FIN | TEXT, "right behind the 101")])],
};

/** [scenario, the player's close code]. */
const violations: [string, number][] = [
  ["bad-utf8", 1007],
  ["bad-utf8-fragmented", 1007],
  ["close-bad-utf8-reason", 1007],
  ["rsv1", 1002],
  ["rsv3", 1002],
  ["opcode-3", 1002],
  ["opcode-b", 1002],
  ["len-2-63", 1002],
  ["close-code-999", 1002],
  ["close-code-1005", 1002],
  ["close-code-1100", 1002],
  ["close-1-byte", 1002],
  ["masked", 1002],
  ["ping-126", 1002],
  ["ping-fragmented", 1002],
  ["continuation-first", 1002],
  ["text-inside-fragments", 1002],
  ["len-2-62", 1009],
  ["oversize", 1009],
  ["oversize-fragments", 1009],
];

describe.skipIf(!need("redis"))("the gateway's WebSocket client facing a hostile node", () => {
  let tr: TestRedis;
  let gw: TestGateway;
  let node: HostileNode;

  beforeAll(async () => {
    tr = testRedis("gwhostile");
    // Resume off: this suite checks the relay's own answer to a broken node, not a move to another.
    gw = await startTestGateway(tr.prefix, { maxFrameBytes: MAX_FRAME, resume: false, upstreamConnectTimeoutMs: 1500 });
    node = startHostileNode(scenarios, handshakes);
    await gw.deps.nodes.create(makeNode({ id: `hostile-${crypto.randomUUID().slice(0, 8)}`, port: node.port, capacity: 100_000, maxRooms: 100_000, startedAt: Date.now(), lastSeenAt: Date.now() }), Date.now());
  });

  afterAll(async () => {
    await gw?.stop();
    node?.stop();
    await tr?.cleanup();
  });

  async function play(room: string): Promise<TestSocket> {
    const s = openSocket(`${gw.wsUrl}/v1/connect?room=${room}`, ["bearer", await gw.token()]);
    await s.opened;
    return s;
  }

  /** Waits (bounded) until the node has a frame from the gateway matching `pred`. */
  async function nodeGot(room: string, pred: (op: number, p: Buffer) => boolean, ms = 3000): Promise<Buffer> {
    const end = Date.now() + ms;
    for (;;) {
      const hit = node.received.get(room)?.find((f) => pred(f.opcode, f.payload));
      if (hit) return hit.payload;
      if (Date.now() > end) throw new Error(`node never got the frame; it got ${JSON.stringify(node.received.get(room)?.map((f) => f.opcode))}`);
      await Bun.sleep(10);
    }
  }

  test("fragments with pings between them arrive as one byte-exact message; both pings are answered", async () => {
    const s = await play("frag-ping");
    await s.waitMessages(1);
    expect(s.messages).toEqual(["Hello, wörld"]);
    expect((await nodeGot("frag-ping", (op, p) => op === 0xa && p.toString() === "p1")).toString()).toBe("p1");
    expect((await nodeGot("frag-ping", (op, p) => op === 0xa && p.toString() === "p2")).toString()).toBe("p2");
    expect(s.ws.readyState).toBe(WebSocket.OPEN);
    s.ws.close(1000);
  });

  test("a frame split across 40 TCP writes arrives whole and byte-exact", async () => {
    const s = await play("split-writes");
    await s.waitMessages(1);
    expect(new Uint8Array(s.messages[0] as ArrayBuffer)).toEqual(BIG);
    s.ws.close(1000);
  });

  test("empty text and binary messages from the node reach the player", async () => {
    const s = await play("empty-both");
    await s.waitMessages(3);
    expect(s.messages[0]).toBe("");
    expect(new Uint8Array(s.messages[1] as ArrayBuffer).length).toBe(0);
    expect(s.messages[2]).toBe("end");
    s.ws.close(1000);
  });

  test.each(violations)("%s: the player sees %i, the node gets a close frame with it", async (room, code) => {
    const s = await play(room);
    const c = await closedWithin(s, 3000);
    expect(c.code).toBe(code);
    // The reason tells the player it was the game server's connection that broke.
    if (code !== 1009) expect(c.reason).toStartWith("game server: ");
    expect(s.messages).toEqual([]); // nothing from a broken frame leaks through
    const p = await nodeGot(room, (op) => op === 0x8);
    expect(p.readUInt16BE(0)).toBe(code);
  });

  test.each([
    ["hs-dribbled", undefined],
    ["hs-frame-in-101", "right behind the 101"],
  ] as const)("an upgrade answered right in an odd shape (%s) opens", async (room, first) => {
    const s = await play(room);
    if (first) {
      await s.waitMessages(1);
      expect(s.messages).toEqual([first]);
    }
    await Bun.sleep(100);
    expect(s.ws.readyState).toBe(WebSocket.OPEN);
    s.ws.close(1000);
  });

  test("a normal close from the node reaches the player with its code and reason", async () => {
    const s = await play("close-normal");
    const c = await closedWithin(s, 3000);
    expect(c).toEqual({ code: 1000, reason: "bye" });
  });

  test("a node that pings without reading gets one pong for the latest ping, not a queue of them", async () => {
    const s = await play("ping-flood");
    await s.waitMessages(1, 20_000); // "done": every ping before it has been parsed
    expect(s.messages).toEqual(["done"]);
    const d = gw.app.decorator.gateway.hub.connections().find((c) => c.roomCode === "ping-flood");
    // 200,000 pongs would be 26 MB; the kernel's buffers take a few MB at most.
    expect(d?.upstream?.bufferedAmount ?? -1).toBeGreaterThanOrEqual(0);
    expect(d!.upstream!.bufferedAmount).toBeLessThan(64 * 1024);
    node.control.get("ping-flood")!.resume();
    // Once it reads again, the answer to the latest ping arrives.
    const last = await nodeGot("ping-flood", (op, p) => op === 0xa && p.readUInt32BE(0) === PING_FLOOD - 1, 10_000);
    expect(last.length).toBe(125);
    s.ws.close(1000);
  }, 30_000);

  test("after all of it the gateway still relays", async () => {
    const s = await play("hello");
    await s.waitMessages(1);
    expect(s.messages).toEqual(["hello"]);
    const h = await fetch(`${gw.url}/health`);
    expect(h.status).toBe(200);
    s.ws.close(1000);
  });
});

describe.skipIf(!need("redis"))("the gateway's WebSocket client facing a node that answers the upgrade wrong", () => {
  let tr: TestRedis;
  let gw: TestGateway;
  let node: HostileNode;
  let nodeId: string;

  beforeAll(async () => {
    tr = testRedis("gwhostilehs");
    gw = await startTestGateway(tr.prefix, { resume: false, upstreamConnectTimeoutMs: 1500 });
    node = startHostileNode({}, handshakes);
    nodeId = `hostile-hs-${crypto.randomUUID().slice(0, 8)}`;
    await gw.deps.nodes.create(makeNode({ id: nodeId, port: node.port, capacity: 100_000, maxRooms: 100_000, startedAt: Date.now(), lastSeenAt: Date.now() }), Date.now());
  });

  afterAll(async () => {
    await gw?.stop();
    node?.stop();
    await tr?.cleanup();
  });

  // A failed dial takes the node out of placement at once (model/node-loss.ts: the health check
  // brings a node that answers back); each case starts from a ready node, as that check would.
  beforeEach(async () => {
    const n = await gw.deps.nodes.get(nodeId);
    if (n && n.state !== "ready") await gw.deps.nodes.transition(nodeId, "ready", Date.now(), { expectFrom: [n.state] });
  });

  async function play(room: string): Promise<TestSocket> {
    const s = openSocket(`${gw.wsUrl}/v1/connect?room=${room}`, ["bearer", await gw.token()]);
    await s.opened;
    return s;
  }

  test.each(["hs-200", "hs-401", "hs-bad-accept", "hs-no-upgrade", "hs-deflate", "hs-protocol", "hs-http10", "hs-garbage", "hs-endless-headers", "hs-silent"])(
    "upgrade answered wrong (%s): the player gets 1011 within the connect timeout",
    async (room) => {
      const t0 = performance.now();
      const s = await play(room);
      const c = await closedWithin(s, 4000);
      expect(c.code).toBe(1011);
      expect(s.messages).toEqual([]);
      expect(performance.now() - t0).toBeLessThan(3500);
    },
    10_000,
  );

});
