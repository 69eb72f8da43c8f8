/**
 * Frames of every size up to MAX_FRAME_BYTES through a real gateway to a real echo node, with
 * WS_BUFFER_BYTES at the smallest value loadConfig accepts for it (one largest frame plus its
 * 14-byte header). Autobahn's 9.x cases (8–16 MiB messages with MAX_FRAME_BYTES=16 MiB) closed 4029
 * with the default 4 MiB buffer; that configuration is now refused at start, and the smallest
 * accepted one relays them, byte-exact, both ways.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { loadConfig, WS_MAX_FRAME_HEADER } from "../../core/config.ts";
import { openSocket, startTestGateway, startTestNode, type TestGateway, type TestNode } from "../support/gateway-fixtures.ts";
import { need, testRedis, type TestRedis } from "../support/services.ts";

const MAX = 16 * 1024 * 1024;
const BUFFER = MAX + WS_MAX_FRAME_HEADER;

describe.skipIf(!need("redis"))("frame sizes up to MAX_FRAME_BYTES", () => {
  let tr: TestRedis;
  let gw: TestGateway;
  let node: TestNode;

  beforeAll(async () => {
    // The pair the test runs with is one loadConfig accepts (and one byte less it refuses).
    const env = { MAX_FRAME_BYTES: String(MAX), WS_BUFFER_BYTES: String(BUFFER), RESUME_BUFFER_BYTES: String(MAX) };
    expect(loadConfig(env).wsBufferBytes).toBe(BUFFER);
    expect(() => loadConfig({ ...env, WS_BUFFER_BYTES: String(BUFFER - 1) })).toThrow("cannot hold one frame");
    tr = testRedis("gwsizes");
    gw = await startTestGateway(tr.prefix, { maxFrameBytes: MAX, wsBufferBytes: BUFFER, resumeBufferBytes: MAX });
    node = await startTestNode(gw.deps, { roomMode: "echo" });
  });

  afterAll(async () => {
    await gw?.stop();
    await node?.stop();
    await tr?.cleanup();
  });

  test("binary and text messages from 0 B to 16 MiB come back byte-exact, one after another", async () => {
    const s = openSocket(`${gw.wsUrl}/v1/connect?room=sizes-1`, ["bearer", await gw.token()]);
    await s.opened;
    const sizes = [0, 1, 125, 126, 65535, 65536, 1024 * 1024, 8 * 1024 * 1024, MAX];
    let expected = 0;
    for (const n of sizes) {
      const bin = new Uint8Array(n);
      for (let i = 0; i < n; i += 4093) bin[i] = (i / 4093) & 0xff;
      bin[n - 1] = 0x5a;
      s.ws.send(bin);
      await s.waitMessages(++expected, 20_000);
      const got = new Uint8Array(s.messages[expected - 1] as ArrayBuffer);
      expect(got.length).toBe(n);
      expect(Buffer.compare(Buffer.from(got), Buffer.from(bin))).toBe(0);
    }
    for (const n of [0, 1000, 8 * 1024 * 1024]) {
      const text = "é".repeat(n / 2); // 2 bytes each in UTF-8
      s.ws.send(text);
      await s.waitMessages(++expected, 20_000);
      expect(s.messages[expected - 1]).toBe(text);
    }
    expect(s.ws.readyState).toBe(WebSocket.OPEN);
    s.ws.close(1000);
    await s.closed;
  }, 60_000);

  test("one byte above MAX_FRAME_BYTES closes 1009", async () => {
    const s = openSocket(`${gw.wsUrl}/v1/connect?room=sizes-2`, ["bearer", await gw.token()]);
    await s.opened;
    s.ws.send(new Uint8Array(MAX + 1));
    const c = await Promise.race([s.closed, Bun.sleep(10_000).then(() => ({ code: -1, reason: "timeout" }))]);
    expect(c.code).toBe(1009);
  }, 20_000);
});
