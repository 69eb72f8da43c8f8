/**
 * Backpressure and limits of the relay: a node that stops reading pauses the client (nothing
 * dropped, everything delivered in order once it reads again); a client that stops reading is
 * closed 4029 once WS_BUFFER_BYTES is exceeded; the per-IP upgrade rate answers 4029.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { ServerWebSocket } from "bun";
import type { Socket } from "node:net";
import { closedWithin, openSocket, startTestGateway, startTestNode, type TestGateway } from "../support/gateway-fixtures.ts";
import { makeNode } from "../support/nodes.ts";
import { clientFrame, rawConnect } from "../support/raw-ws.ts";
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
      const chunks: Buffer[] = [];
      const raw = await rawConnect(gw.port, "bp-slow-client", token, (c) => void chunks.push(c));
      sock = raw.socket;
      expect(raw.handshake.startsWith("HTTP/1.1 101")).toBe(true);
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
