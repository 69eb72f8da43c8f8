/**
 * The node → client queue of the relay: a client that stops reading for a while (but within
 * WS_BUFFER_BYTES) gets every frame once it reads again, in order and byte for byte — the frames
 * Bun could not take went through the relay's queue and its `drain`.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Socket } from "node:net";
import { FrameParser, type FrameSink } from "../../gateway/ws/ws-frame.ts";
import { startTestGateway, startTestNode, type TestGateway } from "../support/gateway-fixtures.ts";
import { clientFrame, rawConnect } from "../support/raw-ws.ts";
import { need, testRedis, waitFor, type TestRedis } from "../support/services.ts";

describe.skipIf(!need("redis"))("relay: a client that pauses within the buffer bound", () => {
  let tr: TestRedis;
  let gw: TestGateway;

  beforeAll(async () => {
    tr = testRedis("gwbpd");
    gw = await startTestGateway(tr.prefix, { wsBufferBytes: 64 * 1024 * 1024, maxFrameBytes: 1024 * 1024, wsIpRateLimit: 100_000, wsRateLimit: 100_000 });
  });
  afterAll(async () => {
    await gw?.stop();
    await tr?.cleanup();
  });

  test("every frame arrives, in order and byte for byte, once it reads again", async () => {
    const node = await startTestNode(gw.deps, { roomMode: "echo" });
    let sock: Socket | undefined;
    try {
      const token = await gw.token();
      const received: Buffer[] = [];
      const problems: string[] = [];
      const parser = new FrameParser(2 * 1024 * 1024);
      const sink: FrameSink = {
        text: (t) => problems.push(`text ${t.slice(0, 20)}`),
        binary: (b) => void received.push(Buffer.from(b)),
        ping: () => {},
        pong: () => {},
        closeFrame: (c, r) => problems.push(`close ${c} ${r}`),
        violation: (c, r) => problems.push(`violation ${c} ${r}`),
      };
      const raw = await rawConnect(gw.port, "bp-pause-client", token, (c) => parser.push(c, sink));
      sock = raw.socket;
      expect(raw.handshake.startsWith("HTTP/1.1 101")).toBe(true);
      await waitFor(() => node.server.health().players === 1, 2000, "upstream open");
      sock.pause(); // stop reading: kernel buffers fill, then Bun's, then the relay's queue
      const hub = gw.app.decorator.gateway.hub;
      const frames = 600;
      const size = 32 * 1024; // 19.7 MB in all: more than loopback's socket buffers hold
      for (let i = 0; i < frames; i++) {
        const p = Buffer.alloc(size, i & 0xff);
        p.writeUInt32BE(i, 0);
        sock.write(clientFrame(p));
      }
      // The relay had to queue: the client is paused and the echoes keep coming.
      await waitFor(() => hub.connections().find((d) => d.roomCode === "bp-pause-client")?.downPaused, 10_000, "node → client queue in use");
      await Bun.sleep(300);
      sock.resume();
      await waitFor(() => received.length === frames || problems.length > 0, 20_000, "every echo");
      expect(problems).toEqual([]);
      for (let i = 0; i < frames; i++) {
        const f = received[i]!;
        expect(f.length).toBe(size);
        expect(f.readUInt32BE(0)).toBe(i);
        expect(f[size - 1]).toBe(i & 0xff);
      }
      const d = hub.connections().find((x) => x.roomCode === "bp-pause-client")!;
      expect(d.downPaused).toBe(false);
      expect(d.downBytes).toBe(0);
    } finally {
      sock?.destroy();
      await node.stop();
      await gw.deps.nodes.remove(node.record.id, Date.now());
    }
  }, 40_000);
});
