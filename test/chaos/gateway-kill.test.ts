/**
 * Chaos: one of two gateway processes SIGKILLed behind a real HAProxy edge. Players of many rooms
 * talk through the edge (rooms hash onto both replicas); the players of the killed replica lose
 * their socket and reconnect through the edge at once, retrying as the client SDK does: each must
 * be echoing again, on the other replica, within 2 s of the kill. The other replica's players are
 * not disturbed.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { testConfig } from "../../core/config.ts";
import { JwtAuthenticator, jwtKeysFromConfig } from "../../gateway/auth/jwt.ts";
import { GatewayRegistry } from "../../model/gateway-registry.ts";
import { RedisNodeRegistry } from "../../model/node-registry.ts";
import type { Templater } from "../../haproxy/sync.ts";
import { TEST_JWT_SECRET, startTestNode, type TestNode } from "../support/gateway-fixtures.ts";
import { startEdgeTemplater, statsServers, stopEdgeTemplater, testEdgeConfig, type TestEdgeConfig } from "../support/haproxy-edge.ts";
import { REDIS_URL, freePort, need, testRedis, waitFor, type TestRedis } from "../support/services.ts";
import { gatewayUp, openPlayer, reportChaos, spawnStackProcess, type Player, type StackProcess } from "../support/chaos.ts";

const PLAYERS = 24;
const HEARTBEAT_S = 0.2;

describe.skipIf(!(need("redis") && need("haproxy")))("chaos: a gateway replica SIGKILLed behind HAProxy", () => {
  let t: TestRedis;
  let edge: TestEdgeConfig;
  let templater: Templater | undefined;
  const gws: StackProcess[] = [];
  const nodes: TestNode[] = [];
  const ids = ["gw-chaos-a", "gw-chaos-b"];
  const auth = new JwtAuthenticator(jwtKeysFromConfig(testConfig({ jwtSecret: TEST_JWT_SECRET }), TEST_JWT_SECRET), 600_000);

  beforeAll(async () => {
    t = testRedis("gwkill");
    const registry = new RedisNodeRegistry(t.redis, t.keys, () => t.connect());
    for (let i = 0; i < 2; i++) nodes.push(await startTestNode({ nodes: registry }, { roomMode: "echo" }));
    for (const id of ids) {
      const port = freePort();
      const p = spawnStackProcess(id, "gateway/main.ts", {
        REDIS_URL,
        REDIS_PREFIX: t.prefix,
        JWT_SECRET: TEST_JWT_SECRET,
        HOST: "127.0.0.1",
        PORT: String(port),
        GATEWAY_ID: id,
        GATEWAY_HEARTBEAT: String(HEARTBEAT_S),
        HTTP_RATE_LIMIT: "100000",
        WS_IP_RATE_LIMIT: "100000",
        WS_RATE_LIMIT: "100000",
        SCHEDULER_METRICS_PORT: "0",
        LOG_LEVEL: "warn",
      });
      gws.push(p);
      await gatewayUp(`http://127.0.0.1:${port}`, p);
    }
    edge = await testEdgeConfig({ redisPrefix: t.prefix, gatewayHeartbeatMs: HEARTBEAT_S * 1000, templaterResyncMs: 2_000 });
    templater = await startEdgeTemplater(t, edge, new GatewayRegistry(t.redis, t.keys, HEARTBEAT_S * 3000));
    await waitFor(async () => (await statsServers(edge.config.haproxyStatsPort, "gateways")).filter((s) => s.status === "UP").length === 2, 15_000, "both gateways UP at the edge", 100);
  }, 60_000);

  afterAll(async () => {
    await stopEdgeTemplater(templater);
    for (const g of gws) await g.stop();
    for (const n of nodes) await n.stop();
    await t?.cleanup();
    await edge?.cleanup();
  }, 60_000);

  test(
    "its players reconnect through the edge to the other replica within 2 s",
    async () => {
      const edgeWs = `ws://127.0.0.1:${edge.config.haproxyPort}`;
      const tokens: string[] = [];
      const rooms: string[] = [];
      const players: Player[] = [];
      for (let i = 0; i < PLAYERS; i++) {
        tokens.push((await auth.sign({ sub: `p_gwkill_${i}`, name: `p${i}`, region: "local", roles: ["player"] }, Date.now())).token);
        rooms.push(`gwkill-room-${i}-${crypto.randomUUID().slice(0, 4)}`);
      }
      const urlOf = (i: number) => `${edgeWs}/v1/connect?room=${rooms[i]}`;
      for (let i = 0; i < PLAYERS; i++) players.push(openPlayer(urlOf(i), ["bearer", tokens[i]!]));
      await Promise.all(players.map((p) => p.opened));
      players.forEach((p, i) => p.ws.send(`hello-${i}`));
      await Promise.all(players.map((p) => p.waitFrames(1, 5_000)));

      // Which replica holds which player: each gateway's presence hash names its gatewayId.
      const victim = gws[0]!;
      const killedAt = Date.now();
      victim.proc.kill("SIGKILL");
      await victim.proc.exited;

      // Every player whose socket drops reconnects through the edge right away, retrying every
      // 100 ms (the SDK backs off from ~100 ms), until an echo comes back.
      const recovered: number[] = [];
      const dropped: number[] = [];
      const codes = new Map<number, number>();
      const watch = players.map(async (p, i) => {
        const c = await Promise.race([p.closed, Bun.sleep(2_500).then(() => undefined)]);
        if (!c) return;
        dropped.push(i);
        codes.set(c.code, (codes.get(c.code) ?? 0) + 1);
        for (;;) {
          if (Date.now() - killedAt > 5_000) return;
          const again = openPlayer(urlOf(i), ["bearer", tokens[i]!]);
          try {
            await again.opened;
            again.ws.send(`back-${i}`);
            await again.waitFrames(1, 1_000);
            if (again.received[0] === `back-${i}`) {
              recovered.push(Date.now() - killedAt);
              players[i] = again;
              return;
            }
          } catch {
            again.ws.close();
          }
          await Bun.sleep(100);
        }
      });
      await Promise.all(watch);
      const worst = recovered.length ? Math.max(...recovered) : undefined;
      console.log(`[chaos] gateway kill: reconnect times (ms from the kill) ${recovered.sort((a, b) => a - b).join(" ")}`);
      // Players of the surviving replica kept their sockets and still echo.
      const survivors = players.filter((_, i) => !dropped.includes(i));
      survivors.forEach((p, i) => p.ws.send(`still-${i}`));
      await Promise.all(survivors.map((p) => p.waitFrames(2, 3_000)));
      const ok = dropped.length > 0 && recovered.length === dropped.length && (worst ?? Infinity) <= 2_000;
      reportChaos({
        scenario: "gateway replica SIGKILLed",
        done: `SIGKILL 1 of 2 gateway processes behind HAProxy (${PLAYERS} players)`,
        players: `${dropped.length} dropped (${[...codes].map(([c, n]) => `${n}× ${c}`).join(", ")}), ${recovered.length} back through the edge, worst ${worst ?? "-"} ms; ${survivors.length} on the other replica undisturbed`,
        recoveryMs: worst,
        ok,
      });
      for (const p of players) p.ws.close();
      expect(dropped.length).toBeGreaterThan(0);
      expect(recovered.length).toBe(dropped.length);
      expect(worst!).toBeLessThanOrEqual(2_000);
    },
    60_000,
  );
});
