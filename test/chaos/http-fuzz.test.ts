/**
 * Bad input, bounded (issue 10, Deliver 6): an HTTP fuzzer over every route the gateway serves
 * (read from the Elysia app itself, so new routes are fuzzed too) against a gateway PROCESS —
 * random methods, paths with odd parameters, query strings, headers, bodies (random JSON, broken
 * JSON, invalid UTF-8, 10 MB), and random or invalid JWTs (bad signature, alg none, expired,
 * garbage, huge). Counted: 0 answers of 5xx, 0 hangs, and the gateway never exits. A seeded PRNG
 * makes a failure reproducible (FUZZ_SEED=<printed seed>); FUZZ_REQUESTS scales the run.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { JwtAuthenticator, jwtKeysFromConfig } from "../../gateway/auth/jwt.ts";
import { testConfig } from "../../core/config.ts";
import { RedisNodeRegistry } from "../../model/node-registry.ts";
import { TEST_JWT_SECRET, startTestGateway, startTestNode, type TestNode } from "../support/gateway-fixtures.ts";
import { REDIS_URL, freePort, need, testRedis, type TestRedis } from "../support/services.ts";
import { gatewayUp, reportChaos, spawnStackProcess, type StackProcess } from "../support/chaos.ts";

const REQUESTS = Number(process.env.FUZZ_REQUESTS ?? 1500);
const BIG_BODIES = 6;
const BUDGET_MS = 90_000;
const REQUEST_TIMEOUT_MS = 10_000;
const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));

/** mulberry32: small, seeded, good enough to pick inputs. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const b64url = (s: string | Uint8Array) => Buffer.from(s).toString("base64url");

describe.skipIf(!need("redis"))("chaos: HTTP fuzzer over every gateway route", () => {
  let t: TestRedis;
  let gw: StackProcess;
  let url = "";
  let node: TestNode;
  let routes: { method: string; path: string }[] = [];
  const auth = new JwtAuthenticator(jwtKeysFromConfig(testConfig({ jwtSecret: TEST_JWT_SECRET }), TEST_JWT_SECRET), 600_000);

  beforeAll(async () => {
    t = testRedis("fuzz");
    // The routes, from the app itself (an in-process instance, only to read its route table).
    const probe = await startTestGateway(t.prefix);
    routes = probe.app.routes.map((r) => ({ method: r.method, path: r.path })).filter((r) => r.path.startsWith("/"));
    await probe.stop();
    // A node with room for every join, so "503 no capacity" is not what a join meets.
    node = await startTestNode({ nodes: new RedisNodeRegistry(t.redis, t.keys, () => t.connect()) }, { roomMode: "echo", capacity: 1_000_000, maxRooms: 1_000_000 });
    const port = freePort();
    url = `http://127.0.0.1:${port}`;
    gw = spawnStackProcess("gateway", "gateway/main.ts", {
      REDIS_URL,
      REDIS_PREFIX: t.prefix,
      JWT_SECRET: TEST_JWT_SECRET,
      HOST: "127.0.0.1",
      PORT: String(port),
      HTTP_RATE_LIMIT: "1000000",
      WS_IP_RATE_LIMIT: "1000000",
      JOIN_WAIT_TIMEOUT: "1",
      SCHEDULER_METRICS_PORT: "0",
      LOG_LEVEL: "error",
    });
    await gatewayUp(url, gw);
  }, 60_000);

  afterAll(async () => {
    await gw?.stop();
    await node?.stop();
    await t?.cleanup();
  }, 30_000);

  test(
    `${REQUESTS} random requests (seed ${SEED}): 0 answers of 5xx, 0 hangs, the gateway never exits`,
    async () => {
      const rnd = prng(SEED);
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
      const int = (n: number) => Math.floor(rnd() * n);
      const now = Math.floor(Date.now() / 1000);
      const player = (await auth.sign({ sub: "p_fuzz", name: "fuzz", region: "local", roles: ["player"] }, Date.now())).token;
      const admin = (await auth.sign({ sub: "p_fuzz_admin", name: "admin", region: "local", roles: ["admin"] }, Date.now())).token;
      const expired = (await auth.sign({ sub: "p_old", name: "old", region: "local", roles: ["player"] }, Date.now() - 3_600_000, 1000)).token;
      const [h, p] = player.split(".");
      const badJwts = [
        "",
        "x",
        "a.b.c",
        `${h}.${p}.${b64url("not the signature")}`, // bad signature
        `${b64url('{"alg":"none","typ":"JWT"}')}.${p}.`, // alg none
        `${b64url('{"alg":"HS512"}')}.${p}.${player.split(".")[2]}`,
        `${h}.${b64url(`{"sub":"p_x","roles":["admin"],"exp":${now + 600}}`)}.${player.split(".")[2]}`, // forged claims
        `${h}.${b64url("{not json")}.sig`,
        `${h}.${b64url(`{"sub":${"1".repeat(400)},"exp":"soon"}`)}.sig`,
        `${"A".repeat(20_000)}.${"B".repeat(20_000)}.${"C".repeat(100)}`,
        "Bearer Bearer",
        "\u00ff\u00fe.\u0000.\u0001",
        expired,
      ];
      const authHeaders = (): Record<string, string> => {
        const r = rnd();
        if (r < 0.15) return {};
        if (r < 0.35) return { authorization: `Bearer ${player}` };
        if (r < 0.45) return { authorization: `Bearer ${admin}` };
        if (r < 0.5) return { authorization: pick(["Basic YTpi", "bearer", "Bearer", `Token ${player}`, "Bearer  " + player]) };
        if (r < 0.55) return { "sec-websocket-protocol": `bearer, ${pick(badJwts)}` };
        if (r < 0.6) return { cookie: `fg_admin=${pick([...badJwts, admin])}` };
        return { authorization: `Bearer ${pick(badJwts)}` };
      };
      const segment = (): string =>
        pick([
          "ABCD",
          "abcd-1234",
          "x",
          "%00",
          "%ff%fe",
          "..",
          "%2e%2e%2f",
          "a".repeat(5_000),
          "é漢字",
          "%F0%9F%98%80",
          "n-" + crypto.randomUUID().slice(0, 8),
          node.record.id,
          "<script>",
          "null",
          "-1",
          "1e309",
          "%",
        ]);
      const fillPath = (path: string) => path.replace(/:[A-Za-z_]+/g, () => segment()).replace(/\*/g, () => segment());
      const query = () => (rnd() < 0.5 ? "" : "?" + Array.from({ length: 1 + int(3) }, () => `${pick(["room", "token", "seat", "mode", "region", "x", "%00", "a[b]"])}=${pick(["1", "", "%ff", "ABCD", "a".repeat(3000), "%00", "[]"])}`).join("&"));
      const randomJson = (depth = 0): unknown => {
        const r = rnd();
        if (depth > 3 || r < 0.2) return pick([null, true, false, 0, -1, 1e308, 2 ** 53 + 1, "", "x", "é", "\u0000", "a".repeat(1000), -0.5]);
        if (r < 0.5) return Array.from({ length: int(4) }, () => randomJson(depth + 1));
        const o: Record<string, unknown> = {};
        for (let i = 0; i < int(5); i++)
          o[pick(["displayName", "region", "mode", "visibility", "password", "maxPlayers", "nodes", "deadlineSeconds", "sessionId", "refreshToken", "playerId", "image", "canaryPercent", "latencies", "settings", "__proto__", "constructor", "results"])] = randomJson(depth + 1);
        return o;
      };
      const body = (): { body?: BodyInit; ct?: string } => {
        const r = rnd();
        if (r < 0.15) return {};
        if (r < 0.55) return { body: JSON.stringify(randomJson()), ct: pick(["application/json", "application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/octet-stream", ""]) };
        if (r < 0.7) return { body: pick(["{", "[", '{"a":', "nul", "{}}", "\u0000", "a=1&b=2", "--x\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--x--"]), ct: pick(["application/json", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]) };
        // Invalid UTF-8 (lone continuation bytes, overlongs, surrogates), as JSON or text.
        const bytes = new Uint8Array(1 + int(64));
        for (let i = 0; i < bytes.length; i++) bytes[i] = pick([0x80, 0xbf, 0xc0, 0xc1, 0xed, 0xa0, 0xf5, 0xff, 0xfe, 0x7b, 0x22, 0x7d]);
        return { body: bytes, ct: pick(["application/json", "text/plain; charset=utf-8", "application/json; charset=utf-8"]) };
      };
      const methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "PROPFIND", "PURGE"];

      const counts = new Map<number, number>();
      const fives: string[] = [];
      let hangs = 0;
      const closedSamples: string[] = [];
      let notSent = 0;
      let sent = 0;
      let big = 0;
      const t0 = Date.now();
      const one = async (i: number) => {
        const route = pick(routes);
        const method = rnd() < 0.6 ? route.method.replace("ALL", "GET") : pick(methods);
        const path = fillPath(route.path) + query();
        const headers: Record<string, string> = { ...authHeaders() };
        if (rnd() < 0.2) headers["x-forwarded-for"] = pick(["1.2.3.4", "::1", "garbage", "1.1.1.1, 2.2.2.2", "%00"]);
        if (rnd() < 0.1) headers["x-node-token"] = pick(["", "x", node.record.token]);
        if (rnd() < 0.1) headers["accept"] = pick(["text/html", "*/*", "application/xml"]);
        let b = method === "GET" || method === "HEAD" ? {} : body();
        if (big < BIG_BODIES && method !== "GET" && method !== "HEAD" && i % Math.floor(REQUESTS / BIG_BODIES) === 0) {
          big++;
          b = { body: new Uint8Array(10 * 1024 * 1024).fill(0x61), ct: pick(["application/json", "application/octet-stream", "text/plain"]) };
        }
        if (b.ct) headers["content-type"] = b.ct;
        sent++;
        try {
          const res = await fetch(url + path, { method, headers, body: b.body, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS), redirect: "manual" });
          await res.arrayBuffer().catch(() => undefined);
          counts.set(res.status, (counts.get(res.status) ?? 0) + 1);
          if (res.status >= 500) fives.push(`${res.status} ${method} ${path.slice(0, 120)} ${headers["content-type"] ?? ""}`);
        } catch (e) {
          // A refused big body (connection closed early) is an answer of sorts; a timeout is a hang.
          if (e instanceof Error && (e.name === "TimeoutError" || e.name === "AbortError")) {
            hangs++;
            fives.push(`HANG ${method} ${path.slice(0, 120)}`);
          } else if (e instanceof Error && /has invalid value/.test(e.message)) {
            // fetch itself refuses a header value (a control character): nothing was sent.
            sent--;
            notSent++;
          } else {
            counts.set(-1, (counts.get(-1) ?? 0) + 1);
            if (closedSamples.length < 10) closedSamples.push(`${method} ${path.slice(0, 80)} ${b.body instanceof Uint8Array ? `${b.body.length} B` : ""}: ${e instanceof Error ? e.message : String(e)}`);
          }
        }
      };
      // Eight at a time, bounded in count and time.
      let next = 0;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          while (next < REQUESTS && Date.now() - t0 < BUDGET_MS) await one(next++);
        }),
      );
      const alive = gw.proc.exitCode === null && gw.proc.signalCode === null;
      const health = await fetch(`${url}/health`).then((r) => r.status).catch(() => 0);
      const summary = [...counts].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s === -1 ? "closed" : s}: ${n}`).join(", ");
      console.log(`[fuzz] seed ${SEED}: ${sent} requests over ${routes.length} routes in ${((Date.now() - t0) / 1000).toFixed(1)} s (${big} of 10 MB; ${notSent} refused by fetch itself, not sent); statuses ${summary}; 5xx/hangs ${fives.length}; gateway ${alive ? "alive" : "EXITED"}`);
      if (fives.length) console.log(fives.slice(0, 20).join("\n"));
      if (closedSamples.length) console.log(`[fuzz] closed without an answer, e.g.:\n${closedSamples.join("\n")}`);
      reportChaos({
        scenario: "HTTP fuzzer",
        done: `${sent} random requests over ${routes.length} routes (${big} × 10 MB, invalid UTF-8, bad JWTs), seed ${SEED}`,
        players: `${fives.length - hangs} answers of 5xx, ${hangs} hangs; gateway ${alive ? "never exited" : "EXITED"}`,
        recoveryMs: undefined,
        ok: fives.length === 0 && alive && health === 200,
      });
      expect(fives).toEqual([]);
      expect(alive).toBe(true);
      expect(health).toBe(200);
      expect(sent).toBeGreaterThan(REQUESTS / 2);
    },
    BUDGET_MS + 30_000,
  );
});
