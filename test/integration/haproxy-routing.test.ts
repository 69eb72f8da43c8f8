/**
 * `backend gateways` as HAProxy runs it: every request of a room (url_param room) goes to the
 * same gateway replica, rooms spread over the replicas, and when a replica leaves only its own
 * rooms move (hash-type consistent) — the others stay where they were.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { GatewayRegistry } from "../../model/gateway-registry.ts";
import type { Templater } from "../../haproxy/sync.ts";
import { startEdgeTemplater, statsServers, stopEdgeTemplater, testEdgeConfig, type TestEdgeConfig } from "../support/haproxy-edge.ts";
import { need, testRedis, waitFor, type TestRedis } from "../support/services.ts";

const ROOMS = Array.from({ length: 60 }, (_, i) => `room-${i.toString(36)}-${(i * 7919).toString(36)}`);

describe.skipIf(!(need("haproxy") && need("redis")))("room-hashed gateway routing through HAProxy", () => {
  let t: TestRedis;
  let edge: TestEdgeConfig;
  let templater: Templater;
  let registry: GatewayRegistry;
  const gateways: ReturnType<typeof Bun.serve>[] = [];

  /** A stand-in gateway replica that answers with its id. */
  function standIn(id: string): ReturnType<typeof Bun.serve> {
    return Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (req) => (new URL(req.url).pathname === "/health" ? Response.json({ status: "ok" }) : new Response(id)) });
  }

  async function route(room: string): Promise<string> {
    const res = await fetch(`http://127.0.0.1:${edge.config.haproxyPort}/v1/connect?room=${room}`);
    return res.text();
  }

  async function routes(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const r of ROOMS) out.set(r, await route(r));
    return out;
  }

  beforeAll(async () => {
    t = testRedis("hxroute");
    edge = await testEdgeConfig();
    registry = new GatewayRegistry(t.redis, t.keys, 60_000);
    for (const id of ["gw-a", "gw-b", "gw-c"]) {
      const s = standIn(id);
      gateways.push(s);
      await registry.heartbeat({ id, host: "127.0.0.1", port: s.port ?? 0, startedAt: Date.now() }, Date.now());
    }
    templater = await startEdgeTemplater(t, edge, registry);
    await waitFor(async () => (await statsServers(edge.config.haproxyStatsPort, "gateways")).filter((s) => s.status === "UP").length === 3, 5000, "3 gateways UP");
  }, 20_000);

  afterAll(async () => {
    await stopEdgeTemplater(templater);
    for (const g of gateways) g.stop(true);
    await t?.cleanup();
    await edge?.cleanup();
  });

  test("a room always reaches the same replica; rooms spread over all of them; a leaving replica moves only its rooms", async () => {
    const first = await routes();
    expect(await routes()).toEqual(first); // stable
    const counts = new Map<string, number>();
    for (const g of first.values()) counts.set(g, (counts.get(g) ?? 0) + 1);
    expect([...counts.keys()].sort()).toEqual(["gw-a", "gw-b", "gw-c"]);

    await registry.deregister("gw-b", Date.now());
    await waitFor(async () => (await statsServers(edge.config.haproxyStatsPort, "gateways")).length === 2, 5000, "gw-b out of the backend");
    const after = await routes();
    for (const [room, g] of first) {
      if (g === "gw-b") expect(after.get(room)).not.toBe("gw-b");
      else expect(after.get(room)).toBe(g); // consistent hashing: untouched rooms do not move
    }
  }, 20_000);
});
