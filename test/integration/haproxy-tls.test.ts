/**
 * What HAProxy itself makes of the rendered config: every golden file passes `haproxy -c`; TLS
 * from HAPROXY_TLS_CERT serves the gateways with X-Forwarded-Proto set by the edge (not the
 * client); a stats password full of config-special characters works exactly as given; and the
 * per-IP connection-rate limit (HAPROXY_CONN_RATE) refuses the connections above it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { realClock } from "../../core/clock.ts";
import { GatewayRegistry } from "../../model/gateway-registry.ts";
import { silentLogger } from "../../core/log.ts";
import { HaproxyControl } from "../../haproxy/control.ts";
import { edgeSettings, render } from "../../haproxy/render.ts";
import type { Templater } from "../../haproxy/sync.ts";
import { STATS_PASSWORD, STATS_USER, fetchStats, startEdgeTemplater, statsServers, stopEdgeTemplater, testEdgeConfig, type TestEdgeConfig } from "../support/haproxy-edge.ts";
import { freePort, need, testRedis, waitFor, type TestRedis } from "../support/services.ts";

const GOLDEN_DIR = join(import.meta.dir, "..", "unit", "golden");
const TRICKY_PASSWORD = `p a#s's"\\$HOME`;

async function makeCert(dir: string): Promise<string> {
  const key = join(dir, "edge.key");
  const crt = join(dir, "edge.crt");
  const p = Bun.spawn(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt, "-days", "1", "-subj", "/CN=127.0.0.1"], { stdout: "ignore", stderr: "pipe" });
  if ((await p.exited) !== 0) throw new Error(`openssl failed: ${await new Response(p.stderr).text()}`);
  const pem = join(dir, "edge.pem");
  await Bun.write(pem, (await Bun.file(crt).text()) + (await Bun.file(key).text()));
  return pem;
}

describe.skipIf(!(need("haproxy") && need("redis")) || !Bun.which("openssl"))("HAProxy reads the rendered config as meant", () => {
  let t: TestRedis;
  let edge: TestEdgeConfig;
  let cert: string;
  let templater: Templater;
  let gateway: ReturnType<typeof Bun.serve>;
  let registry: GatewayRegistry;

  beforeAll(async () => {
    t = testRedis("hxtls");
    edge = await testEdgeConfig({ haproxyTlsPort: freePort(), haproxyStatsPassword: TRICKY_PASSWORD });
    cert = await makeCert(edge.dir);
    edge = { ...edge, config: { ...edge.config, haproxyTlsCert: cert } };
    // A stand-in gateway that says which scheme the edge told it about.
    gateway = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: (req) => (new URL(req.url).pathname === "/health" ? Response.json({ status: "ok" }) : new Response(req.headers.get("x-forwarded-proto") ?? "none")),
    });
    registry = new GatewayRegistry(t.redis, t.keys, 60_000);
    await registry.heartbeat({ id: "gw-tls", host: "127.0.0.1", port: gateway.port ?? 0, startedAt: Date.now() }, Date.now());
    templater = await startEdgeTemplater(t, edge, registry);
  }, 30_000);

  afterAll(async () => {
    await stopEdgeTemplater(templater);
    gateway?.stop(true);
    await t?.cleanup();
    await edge?.cleanup();
  });

  test("every golden config passes haproxy -c", async () => {
    const files = (await readdir(GOLDEN_DIR)).filter((f) => f.startsWith("haproxy-") && f.endsWith(".cfg"));
    expect(files.length).toBeGreaterThanOrEqual(3);
    for (const f of files) {
      const text = (await Bun.file(join(GOLDEN_DIR, f)).text())
        .replaceAll("/var/lib/fleetgate/haproxy", edge.dir)
        .replaceAll("/srv/edge\\ dir", edge.dir)
        .replaceAll("/etc/ssl/edge.pem", cert);
      const tmp = join(edge.dir, `check-${f}`);
      await Bun.write(tmp, text);
      const p = Bun.spawn(["haproxy", "-c", "-f", tmp], { stdout: "pipe", stderr: "pipe" });
      const code = await p.exited;
      expect({ file: f, code, err: code === 0 ? "" : await new Response(p.stderr).text() }).toEqual({ file: f, code: 0, err: "" });
    }
  });

  test("TLS from HAPROXY_TLS_CERT reaches the gateways, with X-Forwarded-Proto set by the edge", async () => {
    await waitFor(async () => (await statsServers(edge.config.haproxyStatsPort, "gateways", { user: STATS_USER, password: TRICKY_PASSWORD })).some((s) => s.status === "UP"), 5000, "gateway UP");
    const https = await fetch(`https://127.0.0.1:${edge.config.haproxyTlsPort}/anything`, { tls: { rejectUnauthorized: false } });
    expect(https.status).toBe(200);
    expect(await https.text()).toBe("https");
    // A client over plain HTTP cannot claim https.
    const http = await fetch(`http://127.0.0.1:${edge.config.haproxyPort}/anything`, { headers: { "x-forwarded-proto": "https" } });
    expect(await http.text()).toBe("http");
  }, 15_000);

  test("a stats password with spaces, #, quotes, backslash and $ works exactly as given", async () => {
    expect((await fetchStats(edge.config.haproxyStatsPort, { user: STATS_USER, password: TRICKY_PASSWORD })).status).toBe(200);
    expect((await fetchStats(edge.config.haproxyStatsPort, { user: STATS_USER, password: "p a" })).status).toBe(401);
  });
});

describe.skipIf(!need("haproxy"))("per-IP connection-rate limit", () => {
  let edge: TestEdgeConfig;
  let control: HaproxyControl;
  let gateway: ReturnType<typeof Bun.serve>;

  beforeAll(async () => {
    edge = await testEdgeConfig({ haproxyConnRate: 5 });
    gateway = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("ok") });
    const settings = edgeSettings(edge.config, { statsPassword: STATS_PASSWORD });
    control = new HaproxyControl({ bin: "haproxy", paths: settings.paths, clock: realClock, log: silentLogger, reloadTimeoutMs: 10_000, mode: "child" });
    const gw = { id: "gw-rate", host: "127.0.0.1", port: gateway.port ?? 0, startedAt: 0, lastSeenAt: 0 };
    expect((await control.apply(render({ gateways: [gw], nodes: [] }, settings).text)).outcome).toBe("ok");
  });

  afterAll(async () => {
    await control?.stop();
    gateway?.stop(true);
    await edge?.cleanup();
  });

  test("more than HAPROXY_CONN_RATE new connections from one address in 10 s are refused", async () => {
    const results: boolean[] = [];
    for (let i = 0; i < 8; i++) {
      try {
        // A fresh connection each time (no keep-alive reuse), so each one counts.
        const res = await fetch(`http://127.0.0.1:${edge.config.haproxyPort}/`, { headers: { connection: "close" }, keepalive: false });
        results.push(res.ok && (await res.text()) === "ok");
      } catch {
        results.push(false);
      }
    }
    expect(results.slice(0, 5)).toEqual([true, true, true, true, true]);
    expect(results.slice(5)).toEqual([false, false, false]);
  }, 15_000);
});
