/**
 * A Redis outage, on a real redis-server this test starts on its own port (append-only file) and
 * SIGKILLs, under a real gateway (in-process) and a real templater + HAProxy:
 *   - requests that need Redis answer 503 REDIS_UNAVAILABLE in the contract's shape within the
 *     bound (REDIS_COMMAND_TIMEOUT), never hang; `/ready` is 503 during, 200 within 5 s after;
 *   - the outage is logged once when it starts and once when it ends, not per retry;
 *   - the HAProxy config never loses the gateway although the outage outlasts the registry TTL,
 *     and the gateway is registered again as soon as Redis is back;
 *   - a replica that died during the outage (its record expired, it never comes back) stays listed
 *     for the templater's grace of one TTL after Redis returns, then leaves.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { realClock } from "../../core/clock.ts";
import type { Logger } from "../../core/log.ts";
import { createKeys } from "../../core/keys.ts";
import { MetricsRegistry } from "../../core/metrics.ts";
import { createRedis, redisAnswers, type Redis } from "../../core/redis.ts";
import { RedisOutageWatch } from "../../core/redis-outage.ts";
import { createApp } from "../../gateway/app.ts";
import { buildGatewayDeps } from "../../gateway/ops/build-deps.ts";
import { startReplicaHeartbeat, type ReplicaPresence } from "../../gateway/ops/replica.ts";
import { HaproxyControl } from "../../haproxy/control.ts";
import { startTemplater, type Templater } from "../../haproxy/sync.ts";
import { GatewayRegistry } from "../../model/gateway-registry.ts";
import { RedisNodeRegistry } from "../../model/node-registry.ts";
import { TEST_JWT_SECRET, gatewayTestConfig } from "../support/gateway-fixtures.ts";
import { testEdgeConfig, type TestEdgeConfig } from "../support/haproxy-edge.ts";
import { freePort, need, waitFor } from "../support/services.ts";

/** A Logger that keeps every line (level and message) for the assertions. */
function captureLogger(lines: string[], component = "test"): Logger {
  const emit = (level: string) => (msg: string) => void lines.push(`${level} [${component}] ${msg}`);
  return { debug: () => {}, info: emit("info"), warn: emit("warn"), error: emit("error"), child: (c: string) => captureLogger(lines, `${component}:${c}`) };
}

describe.skipIf(!(need("redis") && need("haproxy")))("Redis outage under a gateway and the templater", () => {
  const dir = mkdtempSync(join(tmpdir(), "fg-outage-"));
  const port = freePort();
  const url = `redis://127.0.0.1:${port}`;
  const prefix = `fgtest-outage-${crypto.randomUUID().slice(0, 8)}`;
  let server: ReturnType<typeof Bun.spawn> | undefined;
  const gatewayLines: string[] = [];
  const templaterLines: string[] = [];
  let stopGateway: (() => Promise<void>) | undefined;
  let presence: ReplicaPresence | undefined;
  let templater: Templater | undefined;
  let edge: TestEdgeConfig | undefined;
  const tplConns: Redis[] = [];

  async function startRedis(): Promise<void> {
    server = Bun.spawn(["redis-server", "--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--appendonly", "yes", "--save", "", "--loglevel", "warning"], { stdout: "ignore", stderr: "ignore" });
    await waitFor(() => redisAnswers(url, 200), 10_000, "redis-server to answer", 50);
  }

  beforeAll(async () => {
    await startRedis();
  });

  afterAll(async () => {
    await presence?.stop().catch(() => {});
    await templater?.stop().catch(() => {});
    if (templater?.control instanceof HaproxyControl) await templater.control.stop();
    for (const r of tplConns) r.disconnect();
    await stopGateway?.().catch(() => {});
    server?.kill("SIGKILL");
    await server?.exited;
    await edge?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  test("requests answer 503 within the bound, /ready recovers, one log line each way, the edge keeps the gateway", async () => {
    const config = gatewayTestConfig(prefix, { redisUrl: url, redisCommandTimeoutMs: 500, gatewayHeartbeatMs: 200 });
    const built = buildGatewayDeps(config, { jwtSecret: TEST_JWT_SECRET, clock: realClock, log: captureLogger(gatewayLines, "gateway") });
    const app = createApp(built.deps);
    app.listen({ hostname: "127.0.0.1", port: 0 });
    await app.decorator.gateway.start();
    const api = `http://127.0.0.1:${app.server!.port}`;
    stopGateway = async () => {
      app.decorator.gateway.hub.closeAll();
      await app.stop(true).catch(() => {});
      await built.close();
    };
    presence = await startReplicaHeartbeat(
      built.deps.gateways,
      { id: "gw-outage", host: "127.0.0.1", port: app.server!.port!, startedAt: Date.now() },
      { clock: realClock, intervalMs: 200, log: captureLogger(gatewayLines, "replica"), onRedisRecovered: (fn) => built.outage.onRecover(fn) },
    );

    // The templater, with its own connections to the same Redis, and a real HAProxy.
    edge = await testEdgeConfig({ redisUrl: url, redisPrefix: prefix, gatewayHeartbeatMs: 200, templaterResyncMs: 60_000 });
    const tplLog = captureLogger(templaterLines, "templater");
    const tplOutage = new RedisOutageWatch(tplLog);
    const conn = () => {
      const r = tplOutage.watch(createRedis(url));
      tplConns.push(r);
      return r;
    };
    const tplRedis = conn();
    const keys = createKeys(prefix);
    templater = await startTemplater({
      config: edge.config,
      keys,
      redis: tplRedis,
      newRedis: conn,
      nodes: new RedisNodeRegistry(tplRedis, keys, conn),
      // A longer TTL on the templater's side than the replicas' record expiry (600 ms): the grace
      // after the outage is long enough to observe.
      gateways: new GatewayRegistry(tplRedis, keys, 5000),
      clock: realClock,
      log: tplLog,
      metrics: new MetricsRegistry(),
      haproxyMode: "child",
    });
    const cfgFile = edge.config.haproxyConfig;
    const listed = () => {
      const text = readFileSync(cfgFile, "utf8");
      const block = text.slice(text.indexOf("backend gateways"), text.indexOf("backend nodes"));
      return [...block.matchAll(/^\s+server (\S+) /gm)].map((m) => m[1]!);
    };
    const gatewaysInConfig = () => listed().filter((id) => id === "gw-outage").length;
    // A second replica that will die during the outage (its beats stop with Redis).
    const ghost = () => built.deps.gateways.heartbeat({ id: "gw-ghost", host: "127.0.0.1", port: 1, startedAt: 1 }, Date.now()).catch(() => {});
    await ghost();
    const ghostBeats = setInterval(() => void ghost(), 200);
    await waitFor(() => gatewaysInConfig() === 1 && listed().includes("gw-ghost"), 5000, "both gateways in HAProxy's config");

    // Before: sign-in works.
    expect((await fetch(`${api}/v1/auth/guest`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })).status).toBe(201);
    const token = (await built.deps.signer.sign({ sub: "p_outage", name: "o", region: "local", roles: ["player"] }, Date.now())).token;

    // Watch the rendered config all along: it must never lose the gateway.
    let minGateways = Number.POSITIVE_INFINITY;
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        minGateways = Math.min(minGateways, gatewaysInConfig());
        await Bun.sleep(25);
      }
    })();

    clearInterval(ghostBeats);
    server!.kill("SIGKILL");
    await server!.exited;
    await waitFor(() => gatewayLines.some((l) => l.includes("Redis unreachable")), 5000, "the gateway to notice the outage");

    const timed = async (path: string, init: RequestInit = {}) => {
      const t0 = performance.now();
      const res = await fetch(`${api}${path}`, { ...init, signal: AbortSignal.timeout(10_000) });
      return { status: res.status, body: (await res.json()) as { error?: { code: string; message: string } }, ms: performance.now() - t0 };
    };
    const json = { "content-type": "application/json" };
    const answers = [
      await timed("/v1/auth/guest", { method: "POST", headers: json, body: "{}" }),
      await timed("/v1/players/join", { method: "POST", headers: { ...json, authorization: `Bearer ${token}` }, body: "{}" }),
      await timed("/v1/servers"),
      await timed(`/v1/rooms/ABCD`, { headers: { authorization: `Bearer ${token}` } }),
    ];
    for (const a of answers) {
      expect(a.status).toBe(503);
      expect(a.body.error?.code).toBe("REDIS_UNAVAILABLE");
      expect(typeof a.body.error?.message).toBe("string");
      // REDIS_COMMAND_TIMEOUT is 0.5 s: an answer well within 2 s, not a hang.
      expect(a.ms).toBeLessThan(2000);
    }
    console.log(`answers during the outage: ${answers.map((a) => `${a.status} in ${a.ms.toFixed(0)} ms`).join(", ")}`);
    expect((await timed("/ready")).status).toBe(503);

    // Longer than the registry TTL (600 ms): the gateway's record expires inside Redis.
    await Bun.sleep(1500);
    await startRedis();
    const back = performance.now();
    await waitFor(async () => (await fetch(`${api}/ready`)).status === 200, 5000, "/ready 200 after the outage", 50);
    const readyMs = performance.now() - back;
    // Registered again at once (not only at the next beat), and still in the config.
    await waitFor(async () => (await built.deps.gateways.list(Date.now())).some((g) => g.id === "gw-outage"), 5000, "the gateway registered again");
    // The dead replica's record expired during the outage: the templater keeps it through its grace
    // (without it, the first render after the outage would list only what re-registered so far)…
    await templater.idle();
    expect(listed()).toContain("gw-ghost");
    // …and drops it when the grace (one TTL after Redis came back) is over.
    await waitFor(() => !listed().includes("gw-ghost"), 9000, "the dead replica to leave after the grace", 50);
    watching = false;
    await watcher;
    console.log(`/ready 200 ${readyMs.toFixed(0)} ms after Redis was back; fewest gateways in HAProxy's config during it all: ${minGateways}`);
    expect(minGateways).toBe(1);
    expect(gatewaysInConfig()).toBe(1);
    expect((await fetch(`${api}/v1/auth/guest`, { method: "POST", headers: json, body: "{}" })).status).toBe(201);

    // One line when it started and one when it ended, per process; no error storm.
    await waitFor(() => gatewayLines.some((l) => l.includes("Redis reachable again")), 5000, "the gateway's recovery line");
    await waitFor(() => templaterLines.some((l) => l.includes("Redis reachable again")), 5000, "the templater's recovery line");
    const count = (lines: string[], s: string) => lines.filter((l) => l.includes(s)).length;
    expect(count(gatewayLines, "Redis unreachable")).toBe(1);
    expect(count(gatewayLines, "Redis reachable again")).toBe(1);
    expect(count(templaterLines, "Redis unreachable")).toBe(1);
    expect(count(templaterLines, "Redis reachable again")).toBe(1);
    expect(gatewayLines.filter((l) => l.startsWith("warn") || l.startsWith("error")).length).toBeLessThanOrEqual(4);
  }, 60_000);
});
