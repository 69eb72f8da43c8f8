/**
 * Backpressure and limits of the relay: a node that stops reading pauses the client (nothing
 * dropped, everything delivered in order once it reads again); a client that stops reading is
 * closed 4029 once WS_BUFFER_BYTES is exceeded; the per-IP upgrade rate answers 4029.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { ServerWebSocket } from "bun";
import { connect as tcpConnect, type Socket } from "node:net";
import { randomBytes } from "node:crypto";
import { closedWithin, openSocket, startTestGateway, startTestNode, type TestGateway } from "../support/gateway-fixtures.ts";
import { makeNode } from "../support/nodes.ts";
import { need, testRedis, waitFor, type TestRedis } from "../support/services.ts";

/** A node that accepts one room socket and does not read it until told to. */
function startStubbornNode() {
  const received: Buffer[] = [];
  let sock: ServerWebSocket<undefined> | undefined;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req, srv) {
      if (srv.upgrade(req)) return undefined;
      return new Response("no", { status: 400 });
    },
    websocket: {
      perMessageDeflate: false,
      maxPayloadLength: 16 * 1024 * 1024,
      open(ws) {
        sock = ws;
        ws.pause();
      },
      message(_ws, m) {
        received.push(Buffer.from(m as Buffer));
      },
    },
  });
  return { server, received, resume: () => sock?.resume(), stop: () => server.stop(true) };
}

/** Minimal masked client frame (binary). */
function clientFrame(payload: Buffer): Buffer {
  const mask = randomBytes(4);
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x82, 0x80 | len]) : len < 65536 ? Buffer.from([0x82, 0x80 | 126, len >> 8, len & 0xff]) : Buffer.concat([Buffer.from([0x82, 0x80 | 127]), (() => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(len)); return b; })()]);
  const body = Buffer.alloc(len);
  for (let i = 0; i < len; i++) body[i] = payload[i]! ^ mask[i & 3]!;
  return Buffer.concat([head, mask, body]);
}

/** The close code in a stream of server frames, if a close frame is in it. */
function findCloseCode(buf: Buffer): number | undefined {
  let i = 0;
  while (i + 2 <= buf.length) {
    const op = buf[i]! & 0x0f;
    let len = buf[i + 1]! & 0x7f;
    let off = i + 2;
    if (len === 126) {
      len = buf.readUInt16BE(off);
      off += 2;
    } else if (len === 127) {
      len = Number(buf.readBigUInt64BE(off));
      off += 8;
    }
    if (off + len > buf.length) return undefined;
    if (op === 0x8) return len >= 2 ? buf.readUInt16BE(off) : 1005;
    i = off + len;
  }
  return undefined;
}

describe.skipIf(!need("redis"))("relay backpressure and limits", () => {
  let tr: TestRedis;
  let gw: TestGateway;

  beforeAll(async () => {
    tr = testRedis("gwbp");
    gw = await startTestGateway(tr.prefix, { wsBufferBytes: 1024 * 1024, wsIpRateLimit: 100_000 });
  });
  afterAll(async () => {
    await gw?.stop();
    await tr?.cleanup();
  });

  test("a node that stops reading pauses the client; once it reads, every frame arrives in order", async () => {
    const stub = startStubbornNode();
    const rec = makeNode({ id: `stubborn-${crypto.randomUUID().slice(0, 6)}`, port: stub.server.port!, capacity: 10, maxRooms: 10 });
    await gw.deps.nodes.create(rec, Date.now());
    try {
      const s = openSocket(`${gw.wsUrl}/v1/connect?room=bp-slow-node`, ["bearer", await gw.token()]);
      await s.opened;
      const frames = Array.from({ length: 200 }, (_, i) => Buffer.alloc(64 * 1024, i & 0xff));
      for (const f of frames) s.ws.send(f);
      const hub = gw.app.decorator.gateway.hub;
      await waitFor(() => hub.connections().some((d) => d.clientPaused), 5000, "client paused");
      const d = hub.connections().find((x) => x.roomCode === "bp-slow-node")!;
      expect(d.upstream!.bufferedAmount).toBeLessThanOrEqual(1024 * 1024 + 64 * 1024);
      stub.resume();
      await waitFor(() => stub.received.length === 200, 10_000, "all frames at the node");
      stub.received.forEach((b, i) => expect(b.equals(frames[i]!)).toBe(true));
      expect(d.closed).toBe(false);
      s.ws.close();
    } finally {
      stub.stop();
      await gw.deps.nodes.remove(rec.id, Date.now());
    }
  }, 30_000);

  test("a client that stops reading is closed 4029 past WS_BUFFER_BYTES; nothing is dropped silently", async () => {
    const node = await startTestNode(gw.deps, { roomMode: "echo" });
    let sock: Socket | undefined;
    try {
      const token = await gw.token();
      sock = tcpConnect(gw.port, "127.0.0.1");
      const chunks: Buffer[] = [];
      let handshake = "";
      await new Promise<void>((resolve, reject) => {
        sock!.once("error", reject);
        sock!.on("data", (c: Buffer) => {
          if (!handshake.includes("\r\n\r\n")) {
            handshake += c.toString("latin1");
            const end = handshake.indexOf("\r\n\r\n");
            if (end >= 0) {
              const rest = Buffer.from(handshake.slice(end + 4), "latin1");
              if (rest.length) chunks.push(rest);
              resolve();
            }
          } else chunks.push(c);
        });
        sock!.write(
          `GET /v1/connect?room=bp-slow-client HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: bearer, ${token}\r\n\r\n`,
        );
      });
      expect(handshake.startsWith("HTTP/1.1 101")).toBe(true);
      sock.pause(); // stop reading: the kernel buffers fill, then the gateway's queue
      await waitFor(() => node.server.health().players === 1, 2000, "upstream open");
      const payload = Buffer.alloc(32 * 1024, 7);
      for (let i = 0; i < 400; i++) sock.write(clientFrame(payload)); // 12.8 MB echoed back at a client that never reads
      const hub = gw.app.decorator.gateway.hub;
      await waitFor(() => hub.connections().every((d) => d.roomCode !== "bp-slow-client"), 10_000, "slow client closed");
      await waitFor(() => node.server.health().players === 0, 2000, "upstream closed too");
      sock.resume();
      await waitFor(() => findCloseCode(Buffer.concat(chunks)) !== undefined, 5000, "close frame in the stream");
      expect(findCloseCode(Buffer.concat(chunks))).toBe(4029);
    } finally {
      sock?.destroy();
      await node.stop();
      await gw.deps.nodes.remove(node.record.id, Date.now());
    }
  }, 30_000);

  test("per-IP upgrade rate above WS_IP_RATE_LIMIT → 4029 before any upstream", async () => {
    const tr2 = testRedis("gwiprl");
    const g2 = await startTestGateway(tr2.prefix, { wsIpRateLimit: 3 });
    const node = await startTestNode(g2.deps);
    try {
      const token = await g2.token();
      const sockets = Array.from({ length: 6 }, () => openSocket(`${g2.wsUrl}/v1/connect?room=iprate`, ["bearer", token]));
      const before = g2.app.decorator.gateway.hub.upstreamOpens;
      const results = await Promise.all(sockets.map((s) => Promise.race([closedWithin(s, 1500).then((c) => c.code), s.opened.then(() => Bun.sleep(300)).then(() => 0)])));
      expect(results.filter((c) => c === 4029).length).toBeGreaterThanOrEqual(2);
      expect(g2.app.decorator.gateway.hub.upstreamOpens - before).toBeLessThanOrEqual(3);
      for (const s of sockets) s.ws.close();
    } finally {
      await g2.stop();
      await node.stop();
      await tr2.cleanup();
    }
  });
});
