/**
 * The relay's upstream client (UpstreamSocket: RFC 6455 over Bun.connect) against real servers on
 * 127.0.0.1: a Bun WebSocket server (what the reference node is), and a raw TCP server that
 * writes frames by hand (fragments, a ping between them, frames in the 101's own segment).
 */
import { afterEach, describe, expect, test } from "bun:test";
import type { Server, ServerWebSocket, TCPSocketListener } from "bun";
import { UpstreamSocket, type UpstreamHandler } from "../../gateway/ws/upstream-socket.ts";
import { acceptFor } from "../../gateway/ws/ws-handshake.ts";

type Ev = { type: "open" } | { type: "message"; data: string | Uint8Array; n: number } | { type: "drain" } | { type: "close"; code: number; reason: string; wasOpen: boolean };

/** Records events per connection; `next` waits (bounded) for the next one of a type. */
class Recorder {
  readonly events: Ev[] = [];
  private waiters: (() => void)[] = [];
  readonly handler: UpstreamHandler<Recorder> = {
    open: (r) => r.push({ type: "open" }),
    message: (r, data, n) => r.push({ type: "message", data: typeof data === "string" ? data : data.slice(), n }),
    drain: (r) => r.push({ type: "drain" }),
    close: (r, code, reason, wasOpen) => r.push({ type: "close", code, reason, wasOpen }),
  };
  private push(e: Ev): void {
    this.events.push(e);
    for (const w of this.waiters.splice(0)) w();
  }
  async until(pred: (evs: Ev[]) => boolean, ms = 3000): Promise<void> {
    const end = Date.now() + ms;
    while (!pred(this.events)) {
      if (Date.now() > end) throw new Error(`timed out; events: ${JSON.stringify(this.events.map((e) => e.type))}`);
      await Promise.race([new Promise<void>((r) => this.waiters.push(r)), Bun.sleep(50)]);
    }
  }
  messages(): (string | Uint8Array)[] {
    return this.events.flatMap((e) => (e.type === "message" ? [e.data] : []));
  }
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

interface NodeSide {
  server: Server<{ path: string; headers: Record<string, string> }>;
  sockets: ServerWebSocket<{ path: string; headers: Record<string, string> }>[];
  closes: { code: number; reason: string }[];
  pongs: string[];
}

/** A Bun WebSocket server that echoes, like the reference node in echo mode. */
function startNode(opts: { refuse?: boolean } = {}): NodeSide {
  const side: NodeSide = { server: undefined as never, sockets: [], closes: [], pongs: [] };
  side.server = Bun.serve<{ path: string; headers: Record<string, string> }>({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req, srv) {
      if (opts.refuse) return new Response("no", { status: 401 });
      const headers: Record<string, string> = {};
      req.headers.forEach((v, k) => (headers[k] = v));
      return srv.upgrade(req, { data: { path: new URL(req.url).pathname, headers } }) ? undefined : new Response("upgrade", { status: 400 });
    },
    websocket: {
      perMessageDeflate: false,
      maxPayloadLength: 4 * 1024 * 1024,
      open: (ws) => void side.sockets.push(ws),
      message: (ws, m) => void ws.send(m),
      pong: (_ws, d) => void side.pongs.push(Buffer.from(d).toString()),
      close: (_ws, code, reason) => void side.closes.push({ code, reason }),
    },
  });
  cleanups.push(() => side.server.stop(true));
  return side;
}

function dial(port: number, rec: Recorder, max = 2 * 1024 * 1024, headers: Record<string, string> = { "X-Node-Token": "t" }): UpstreamSocket<Recorder> {
  const up = new UpstreamSocket(rec.handler, rec, max, { host: "127.0.0.1", port, path: "/rooms/abcd", headers });
  up.connect();
  cleanups.push(() => up.close(1000, "test over"));
  return up;
}

describe("UpstreamSocket against a Bun WebSocket server", () => {
  test("handshake with the node headers; text and binary echo byte for byte and in order", async () => {
    const node = startNode();
    const rec = new Recorder();
    const up = dial(node.server.port!, rec, 2 * 1024 * 1024, { "X-Node-Token": "tok", "X-Player-Id": "p_1" });
    await rec.until((e) => e.some((x) => x.type === "open"));
    expect(node.sockets[0]!.data.path).toBe("/rooms/abcd");
    expect(node.sockets[0]!.data.headers).toMatchObject({ "x-node-token": "tok", "x-player-id": "p_1" });
    const big = Uint8Array.from({ length: 1024 * 1024 }, (_, i) => (i * 31) & 0xff);
    const sent: (string | Uint8Array)[] = ['{"a":  1}', Uint8Array.of(0, 255, 1), "é漢😀", "x".repeat(70_000), big];
    for (let i = 0; i < 200; i++) sent.push(`m${i}`);
    for (const m of sent) up.send(m, typeof m === "string" ? Buffer.byteLength(m) : m.length);
    await rec.until(() => rec.messages().length === sent.length, 5000);
    const got = rec.messages();
    for (let i = 0; i < sent.length; i++) {
      const a = sent[i]!;
      const b = got[i]!;
      if (typeof a === "string") expect(b).toBe(a);
      else {
        expect(typeof b).not.toBe("string");
        expect(Buffer.from(b as Uint8Array).equals(Buffer.from(a))).toBe(true);
      }
    }
    const texts = rec.events.filter((e): e is Extract<Ev, { type: "message" }> => e.type === "message" && typeof e.data === "string");
    expect(texts.find((e) => e.data === "é漢😀")!.n).toBe(Buffer.byteLength("é漢😀"));
  });

  test("a ping from the node is answered with its payload", async () => {
    const node = startNode();
    const rec = new Recorder();
    dial(node.server.port!, rec);
    await rec.until((e) => e.some((x) => x.type === "open"));
    node.sockets[0]!.ping("are you there");
    for (let i = 0; i < 60 && node.pongs.length === 0; i++) await Bun.sleep(25);
    expect(node.pongs).toEqual(["are you there"]);
  });

  test("the node's close code and reason reach the owner once", async () => {
    const node = startNode();
    const rec = new Recorder();
    dial(node.server.port!, rec);
    await rec.until((e) => e.some((x) => x.type === "open"));
    node.sockets[0]!.close(4009, "draining; reconnect after 1000 ms");
    await rec.until((e) => e.some((x) => x.type === "close"));
    await Bun.sleep(100);
    expect(rec.events.filter((e) => e.type === "close")).toEqual([{ type: "close", code: 4009, reason: "draining; reconnect after 1000 ms", wasOpen: true }]);
  });

  test("the owner's close reaches the node with its code and reason, and no event comes back", async () => {
    const node = startNode();
    const rec = new Recorder();
    const up = dial(node.server.port!, rec);
    await rec.until((e) => e.some((x) => x.type === "open"));
    up.close(4003, "kicked from the room");
    for (let i = 0; i < 60 && node.closes.length === 0; i++) await Bun.sleep(25);
    expect(node.closes).toEqual([{ code: 4003, reason: "kicked from the room" }]);
    await Bun.sleep(100);
    expect(rec.events.some((e) => e.type === "close")).toBe(false);
  });

  test("a message above the limit closes 1009 both ways", async () => {
    const node = startNode();
    const rec = new Recorder();
    dial(node.server.port!, rec, 1024);
    await rec.until((e) => e.some((x) => x.type === "open"));
    node.sockets[0]!.send(new Uint8Array(2048));
    await rec.until((e) => e.some((x) => x.type === "close"));
    expect(rec.events.at(-1)).toMatchObject({ type: "close", code: 1009, wasOpen: true });
    for (let i = 0; i < 60 && node.closes.length === 0; i++) await Bun.sleep(25);
    expect(node.closes[0]?.code).toBe(1009);
    expect(rec.messages()).toHaveLength(0);
  });

  test("a refused upgrade and a closed port end as not-opened closes", async () => {
    const node = startNode({ refuse: true });
    const rec = new Recorder();
    dial(node.server.port!, rec);
    await rec.until((e) => e.some((x) => x.type === "close"));
    expect(rec.events).toEqual([{ type: "close", code: 1006, reason: "node answered 401", wasOpen: false }]);

    const gone = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = gone.port;
    gone.stop(true);
    const rec2 = new Recorder();
    dial(port, rec2);
    await rec2.until((e) => e.some((x) => x.type === "close"));
    expect(rec2.events).toHaveLength(1);
    expect(rec2.events[0]).toMatchObject({ type: "close", code: 1006, wasOpen: false });
  });

  test("closing before the connection is up opens nothing and reports nothing", async () => {
    const node = startNode();
    const rec = new Recorder();
    const up = dial(node.server.port!, rec);
    up.close(1000, "client gone");
    await Bun.sleep(200);
    expect(rec.events).toEqual([]);
    expect(node.sockets).toHaveLength(0);
  });
});

describe("UpstreamSocket against a hand-written server", () => {
  test("frames in the 101's segment, fragments with a ping between them, masked client frames, close handshake", async () => {
    const fromClient: Buffer[] = [];
    let clientEnded = false;
    const frame = (first: number, payload: string | Uint8Array) => {
      const p = typeof payload === "string" ? Buffer.from(payload) : Buffer.from(payload);
      return Buffer.concat([Buffer.from([first, p.length]), p]);
    };
    const listener: TCPSocketListener<{ buf: string; up: boolean }> = Bun.listen<{ buf: string; up: boolean }>({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        open(s) {
          s.data = { buf: "", up: false };
        },
        data(s, chunk) {
          if (s.data.up) {
            fromClient.push(Buffer.from(chunk));
            return;
          }
          s.data.buf += chunk.toString("latin1");
          const end = s.data.buf.indexOf("\r\n\r\n");
          if (end < 0) return;
          const key = /sec-websocket-key: (.+)\r\n/i.exec(s.data.buf)![1]!.trim();
          s.data.up = true;
          // The 101 and the first frames in one write: the client must not lose them.
          s.write(
            Buffer.concat([
              Buffer.from(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptFor(key)}\r\n\r\n`, "latin1"),
              frame(0x01, "Hel"), // text, not FIN
              frame(0x89, "png"), // ping between the fragments
              frame(0x00, "lo "), // continuation
              frame(0x80, "wörld"), // continuation, FIN
              frame(0x82, Uint8Array.of(0, 1, 2, 255)), // binary
              frame(0x88, Uint8Array.of(0x03, 0xe8, ...Buffer.from("done"))), // close 1000 "done"
            ]),
          );
        },
        end() {
          clientEnded = true;
        },
        close() {
          clientEnded = true;
        },
      },
    });
    cleanups.push(() => listener.stop(true));
    const rec = new Recorder();
    dial(listener.port, rec);
    await rec.until((e) => e.some((x) => x.type === "close"));
    expect(rec.events.map((e) => (e.type === "message" ? (typeof e.data === "string" ? e.data : [...e.data]) : e.type))).toEqual(["open", "Hello wörld", [0, 1, 2, 255], "close"]);
    expect(rec.events.at(-1)).toEqual({ type: "close", code: 1000, reason: "done", wasOpen: true });
    for (let i = 0; i < 60 && !clientEnded; i++) await Bun.sleep(25);
    expect(clientEnded).toBe(true);
    // What the client sent: a masked pong with the ping's payload, then a masked close 1000.
    const bytes = Buffer.concat(fromClient);
    const frames: { op: number; payload: Buffer }[] = [];
    for (let at = 0; at < bytes.length; ) {
      expect(bytes[at + 1]! & 0x80).toBe(0x80); // masked
      const len = bytes[at + 1]! & 0x7f;
      const key = bytes.subarray(at + 2, at + 6);
      const payload = Buffer.from(bytes.subarray(at + 6, at + 6 + len).map((b, i) => b ^ key[i % 4]!));
      frames.push({ op: bytes[at]! & 0x0f, payload });
      at += 6 + len;
    }
    expect(frames.map((f) => f.op)).toEqual([0x0a, 0x08]);
    expect(frames[0]!.payload.toString()).toBe("png");
    expect(frames[1]!.payload.readUInt16BE(0)).toBe(1000);
  });
});
