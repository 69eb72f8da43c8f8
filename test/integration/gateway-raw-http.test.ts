/** Requests a fetch() client cannot send: raw bytes on a socket, answered in the contract's shape. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect } from "node:net";
import { startTestGateway, type TestGateway } from "../support/gateway-fixtures.ts";
import { need, testRedis, type TestRedis } from "../support/services.ts";

function raw(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, "127.0.0.1", () => sock.write(request));
    let buf = "";
    sock.on("data", (d) => (buf += d.toString()));
    sock.on("end", () => resolve(buf));
    sock.on("error", reject);
    setTimeout(() => (sock.destroy(), resolve(buf)), 2000);
  });
}

describe.skipIf(!need("redis"))("gateway: raw HTTP", () => {
  let t: TestRedis;
  let gw: TestGateway;
  beforeAll(async () => {
    t = testRedis("gwraw");
    gw = await startTestGateway(t.prefix);
  });
  afterAll(async () => {
    await gw?.stop();
    await t?.cleanup();
  });

  test.each(["/health", "/v1/servers", "/v1/connect?room=abcd"])("HTTP/1.0 without Host to %s: 400 HOST_REQUIRED in JSON, never a 500", async (path) => {
    const res = await raw(gw.port, `GET ${path} HTTP/1.0\r\n\r\n`);
    expect(res.split("\r\n")[0]).toBe("HTTP/1.1 400 Bad Request");
    expect(res).toContain('"code":"HOST_REQUIRED"');
    expect(res).not.toContain("<html");
  });

  test("the same request with a Host header is served", async () => {
    const res = await raw(gw.port, "GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    expect(res.split("\r\n")[0]).toBe("HTTP/1.1 200 OK");
    expect(res).toContain('"status":"ok"');
  });
});
