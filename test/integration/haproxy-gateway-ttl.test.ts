/**
 * A gateway replica that dies without deregistering (SIGKILL: its heartbeats just stop) leaves
 * HAProxy's `backend gateways` when its registry TTL expires — the templater renders at that
 * moment — not at the next full resync (set to a minute here, 10 s by default). Real HAProxy.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { GatewayRegistry } from "../../model/gateway-registry.ts";
import type { Templater } from "../../haproxy/sync.ts";
import { startEdgeTemplater, stopEdgeTemplater, testEdgeConfig, type TestEdgeConfig } from "../support/haproxy-edge.ts";
import { need, testRedis, waitFor, type TestRedis } from "../support/services.ts";

describe.skipIf(!(need("redis") && need("haproxy")))("a dead gateway leaves the edge within its TTL", () => {
  let t: TestRedis | undefined;
  let edge: TestEdgeConfig | undefined;
  let templater: Templater | undefined;

  afterAll(async () => {
    await stopEdgeTemplater(templater);
    await edge?.cleanup();
    await t?.cleanup();
  });

  test("no heartbeat for a TTL: gone from backend gateways within TTL + a render, the live one stays", async () => {
    t = testRedis("gwttl");
    edge = await testEdgeConfig({ templaterResyncMs: 60_000, templaterDebounceMs: 50 });
    const TTL = 900;
    const gateways = new GatewayRegistry(t.redis, t.keys, TTL);
    templater = await startEdgeTemplater(t, edge, gateways);
    const listed = () => {
      const text = readFileSync(edge!.config.haproxyConfig, "utf8");
      const block = text.slice(text.indexOf("backend gateways"), text.indexOf("backend nodes"));
      return [...block.matchAll(/^\s+server (\S+) /gm)].map((m) => m[1]);
    };
    const beat = (id: string, port: number) => gateways.heartbeat({ id, host: "127.0.0.1", port, startedAt: 1 }, Date.now());
    await beat("gw-live", 3001);
    // gw-dead is "SIGKILLed" right after this beat: its heartbeat time is at or after lastBeat.
    const lastBeat = Date.now();
    await beat("gw-dead", 3002);
    await waitFor(() => listed().length === 2, 5000, "both gateways in the config");
    // gw-live keeps beating; gw-dead does not.
    const keepAlive = setInterval(() => void beat("gw-live", 3001), 200);
    try {
      await waitFor(() => !listed().includes("gw-dead"), 5000, "the dead gateway to leave the config", 20);
      const ms = Date.now() - lastBeat;
      console.log(`dead gateway left backend gateways ${ms} ms after its last heartbeat (TTL ${TTL} ms, resync 60 s)`);
      expect(ms).toBeGreaterThanOrEqual(TTL);
      expect(ms).toBeLessThan(TTL + 1500);
      expect(listed()).toEqual(["gw-live"]);
    } finally {
      clearInterval(keepAlive);
    }
  }, 30_000);
});
