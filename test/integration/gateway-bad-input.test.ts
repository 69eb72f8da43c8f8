/** Odd input on every write route: an answer in the contract's error shape, never a 5xx (but 503 NO_CAPACITY). */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startTestGateway, type TestGateway } from "../support/gateway-fixtures.ts";
import { need, testRedis, type TestRedis } from "../support/services.ts";

describe.skipIf(!need("redis"))("gateway: bad input never gets a 5xx", () => {
  let t: TestRedis;
  let gw: TestGateway;
  let token = "";
  beforeAll(async () => {
    t = testRedis("badinput");
    gw = await startTestGateway(t.prefix, { joinWaitTimeoutMs: 200 });
    token = await gw.token();
  });
  afterAll(async () => {
    await gw?.stop();
    await t?.cleanup();
  });

  test("join body: empty or a JSON object of region, mode, latencies — anything else 400 before any wait", async () => {
    const post = (body: string) => fetch(gw.url + "/v1/players/join", { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${token}` }, body });
    // No node runs: an accepted body waits JOIN_WAIT_TIMEOUT (200 ms) and gets 503 NO_CAPACITY.
    for (const ok of ["", "  ", "{}", '{"region":"eu","mode":"ctf"}', '{"latencies":{"eu":20}}']) expect({ body: ok, status: (await post(ok)).status }).toEqual({ body: ok, status: 503 });
    for (const bad of ["null", "[]", "123", '"x"', "{", '{"visibility":null}', '{"region":"../x"}', '{"mode":{"a":1}}', "\u0000", '{"latencies":{"eu":"fast"}}']) {
      const r = await post(bad);
      expect({ body: bad, status: r.status }).toEqual({ body: bad, status: 400 });
      expect(((await r.json()) as { error: { code: string } }).error.code).toMatch(/^(BAD_JSON|VALIDATION)$/);
    }
  });

  const bodies = ["null", "[]", "123", '"x"', "{", '{"visibility":null}', '{"mode":{"a":1}}', '{"maxPlayers":"8"}', '{"region":"../x"}', "\u0000", '{"__proto__":{"x":1}}'];
  const routes = [
    "/v1/rooms",
    "/v1/rooms/ABCDEF/join",
    "/v1/rooms/ABCDEF/kick",
    "/v1/players/join",
    "/v1/players/heartbeat",
    "/v1/players/leave",
    "/v1/matchmaking/tickets",
    "/v1/auth/guest",
    "/v1/auth/refresh",
    "/v1/admin/scale",
    "/v1/admin/nodes/x/drain",
    "/v1/rooms/%00abc/join",
    `/v1/rooms/${"a".repeat(5000)}/join`,
  ];

  test("POST: every route × odd bodies × content types", async () => {
    const bad: string[] = [];
    for (const r of routes)
      for (const b of bodies)
        for (const ct of ["application/json", "text/plain"]) {
          const res = await fetch(gw.url + r, { method: "POST", headers: { "content-type": ct, authorization: `Bearer ${token}` }, body: b });
          const text = await res.text();
          let shaped = false;
          try {
            shaped = typeof (JSON.parse(text) as { error?: { code?: unknown } }).error?.code === "string";
          } catch {
            shaped = false;
          }
          // 2xx answers are allowed (e.g. a guest sign-in ignores junk); errors must be shaped and not 5xx.
          const ok = res.status < 300 || (shaped && (res.status < 500 || (res.status === 503 && text.includes("NO_CAPACITY"))));
          if (!ok) bad.push(`${res.status} POST ${r.slice(0, 40)} ${ct} ${JSON.stringify(b)} → ${text.slice(0, 80)}`);
          // A join with a malformed body is refused before it waits for capacity.
          if (r === "/v1/players/join" && res.status === 503) bad.push(`join waited for capacity on a bad body ${JSON.stringify(b)} (${ct})`);
        }
    expect(bad).toEqual([]);
  }, 60_000);
});
