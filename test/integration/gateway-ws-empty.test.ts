/**
 * Empty WebSocket messages (zero-length text and binary) through a real gateway to a real reference
 * node in echo mode: client → gateway → node and back (the node's echo crosses the gateway's own
 * RFC 6455 client on the way down). Autobahn cases 1.1.1, 1.2.1, 6.1.1, 9.7.1 and 9.8.1 closed the
 * player 1011 "frame could not be delivered" before: Bun's `send` answers 0 for an empty message.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { openSocket, startTestGateway, startTestNode, type TestGateway, type TestNode, type TestSocket } from "../support/gateway-fixtures.ts";
import { need, testRedis, type TestRedis } from "../support/services.ts";

describe.skipIf(!need("redis"))("empty WebSocket messages through the relay", () => {
  let tr: TestRedis;
  let gw: TestGateway;
  let node: TestNode;

  beforeAll(async () => {
    tr = testRedis("gwempty");
    gw = await startTestGateway(tr.prefix);
    node = await startTestNode(gw.deps, { roomMode: "echo" });
  });

  afterAll(async () => {
    await gw?.stop();
    await node?.stop();
    await tr?.cleanup();
  });

  async function connect(room: string): Promise<TestSocket> {
    const s = openSocket(`${gw.wsUrl}/v1/connect?room=${room}`, ["bearer", await gw.token()]);
    await s.opened;
    return s;
  }

  /** Every message arrived as sent (type and bytes), and the socket is still open. */
  function expectEchoed(s: TestSocket, sent: (string | Uint8Array)[]): void {
    expect(s.messages.length).toBe(sent.length);
    sent.forEach((want, i) => {
      const got = s.messages[i]!;
      if (typeof want === "string") expect(got).toBe(want);
      else {
        expect(got).toBeInstanceOf(ArrayBuffer);
        expect(new Uint8Array(got as ArrayBuffer)).toEqual(new Uint8Array(want));
      }
    });
    expect(s.ws.readyState).toBe(WebSocket.OPEN);
  }

  test("one empty text message comes back empty, as text, and the connection stays open", async () => {
    const s = await connect("empty-text-1");
    s.ws.send("");
    s.ws.send("after"); // proves the relay still works after the empty one
    await s.waitMessages(2);
    expectEchoed(s, ["", "after"]);
    s.ws.close(1000);
    expect((await s.closed).code).toBe(1000);
  });

  test("one empty binary message comes back empty, as binary", async () => {
    const s = await connect("empty-bin-1");
    s.ws.send(new Uint8Array(0));
    s.ws.send(new Uint8Array([7]));
    await s.waitMessages(2);
    expectEchoed(s, [new Uint8Array(0), new Uint8Array([7])]);
    s.ws.close(1000);
    expect((await s.closed).code).toBe(1000);
  });

  test("a thousand empty text messages in a row, then a thousand empty binary ones, all in order", async () => {
    const s = await connect("empty-many");
    const sent: (string | Uint8Array)[] = [];
    for (let i = 0; i < 1000; i++) sent.push("");
    for (let i = 0; i < 1000; i++) sent.push(new Uint8Array(0));
    sent.push("end");
    for (const m of sent) s.ws.send(m);
    await s.waitMessages(sent.length, 15_000);
    expectEchoed(s, sent);
    s.ws.close(1000);
    expect((await s.closed).code).toBe(1000);
  });

  test("empty messages interleaved with non-empty ones keep their order and types", async () => {
    const s = await connect("empty-mixed");
    const sent: (string | Uint8Array)[] = [];
    for (let i = 0; i < 300; i++) sent.push(i % 3 === 0 ? "" : i % 3 === 1 ? new Uint8Array(0) : `m${i}`);
    for (const m of sent) s.ws.send(m);
    await s.waitMessages(sent.length, 10_000);
    expectEchoed(s, sent);
    s.ws.close(1000);
  });
});
