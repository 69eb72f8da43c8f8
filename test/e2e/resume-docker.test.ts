/**
 * Session resume on the real Docker engine (issue 12, "Must show"): a node container SIGKILLed
 * (`docker kill`) under 3 rooms of 8 players talking at 20 msg/s each. No player socket closes,
 * every room comes back on another node, the reference node's counter continues from the room's
 * snapshot, frames stay in order per sender, and the p99 pause a player hears is at most 1.5 s.
 * A second run goes through a real HAProxy edge to two gateway replicas (players of one room on
 * both): they land on the same new node.
 */
import { afterEach, describe, expect, test } from "bun:test";
import type { Config } from "../../core/config.ts";
import type { NodeRecord } from "../../core/types.ts";
import type { RoomStateBody } from "../../node/server.ts";
import { GatewayRegistry } from "../../model/gateway-registry.ts";
import type { Templater } from "../../haproxy/sync.ts";
import { docker, startStack, type Stack } from "../support/scheduler-stack.ts";
import { startEdgeTemplater, statsServers, stopEdgeTemplater, testEdgeConfig, type TestEdgeConfig } from "../support/haproxy-edge.ts";
import { startTestGateway, type TestGateway } from "../support/gateway-fixtures.ts";
import { firstFrameAfter, longestSilence, openRoomPlayer, percentile, startTraffic, type RoomPlayer } from "../support/resume-room.ts";
import { freePort, need, waitFor } from "../support/services.ts";
import { ensureNodeImage } from "../../node/image.ts";

const ROOMS = 3;
const PER_ROOM = 8;
const HZ = 20;

/** A fleet of Docker nodes that each hold the 24 players (one node holds all three rooms). */
function fleetConfig(gatewayPort: number): Partial<Config> {
  return {
    port: gatewayPort,
    fleetgateUrl: `http://127.0.0.1:${gatewayPort}`,
    nodeRoomMode: "relay",
    maxPlayersPerServer: ROOMS * PER_ROOM,
    nodeMaxPlayers: ROOMS * PER_ROOM * 2,
    minReadyServers: 0,
    maxServers: 4,
    scaleUpUtilization: 1,
    inactivityShutdownMs: 600_000,
    healthCheckIntervalMs: 500,
    healthCheckTimeoutMs: 300,
    resumeTimeoutMs: 10_000,
    joinWaitTimeoutMs: 20_000,
  };
}

async function readyNodes(stack: Stack): Promise<NodeRecord[]> {
  return (await stack.registry.list()).filter((n) => n.state === "ready");
}

async function scaleTo(stack: Stack, n: number, tag: string): Promise<NodeRecord[]> {
  await stack.client.requestScaleUp({ count: n - (await readyNodes(stack)).length, region: "local", reason: "test", requestId: `resume-e2e-${tag}` });
  return waitFor(async () => {
    const r = await readyNodes(stack);
    return r.length >= n ? r : undefined;
  }, 60_000, `${n} ready nodes`, 100);
}

async function roomState(node: NodeRecord, room: string): Promise<RoomStateBody | undefined> {
  const res = await fetch(`http://${node.host}:${node.port}/rooms/${room}/state`, { headers: { "x-node-token": node.token } }).catch(() => undefined);
  return res?.status === 200 ? ((await res.json()) as RoomStateBody) : undefined;
}

/**
 * The scenario on any gateway(s): players join, talk, the snapshot catches up, the node that holds
 * the rooms is killed under live traffic, then the checks. `wsUrls[i % n]` spreads players.
 */
async function killUnderRooms(stack: Stack, wsUrls: string[], label: string, token: (sub: string) => Promise<string>, whenOpen?: (rooms: string[]) => void): Promise<{ pauses: number[]; firstOnNew: number[]; held: number }> {
  const rooms = Array.from({ length: ROOMS }, (_, r) => `${label}-${r}-${crypto.randomUUID().slice(0, 6)}`);
  const players: RoomPlayer[] = [];
  for (const [r, room] of rooms.entries()) {
    for (let i = 0; i < PER_ROOM; i++) {
      const id = `r${r}p${i}`;
      players.push(openRoomPlayer(wsUrls[(r * PER_ROOM + i) % wsUrls.length]!, room, id, await token(`p_${label}_${id}`)));
    }
  }
  try {
    await Promise.all(players.map((p) => p.opened));
    whenOpen?.(rooms);
    const placed = await Promise.all(rooms.map((room) => stack.t.redis.get(stack.t.keys.roomNode(room))));
    expect(new Set(placed).size).toBe(1); // one node holds the three rooms
    const victim = (await stack.registry.get(placed[0]!))!;

    // Phase 1: 20 frames each, all delivered, and the snapshots caught up (160 per room).
    let stop = startTraffic(players, HZ, 20);
    await waitFor(() => players.every((p) => p.received === (PER_ROOM - 1) * 20), 20_000, "phase 1 delivered", 50);
    stop();
    for (const room of rooms) {
      await waitFor(async () => {
        const raw = await stack.t.redis.get(stack.t.keys.roomSnapshot(room));
        return raw && (JSON.parse(raw) as { count: number }).count === PER_ROOM * 20;
      }, 5_000, `snapshot of ${room}`, 20);
    }
    // A spare node to resume on (its cold start is not what is measured).
    await scaleTo(stack, 2, `${label}-spare`);

    // Phase 2: live traffic; the node is killed 0.5 s in.
    stop = startTraffic(players, HZ, 20 + 3 * HZ);
    await Bun.sleep(500);
    const killedAt = performance.now();
    await docker.getContainer(victim.ref).kill();
    await waitFor(() => players.every((p) => p.sent >= 20 + 3 * HZ || p.closes.length > 0), 20_000, "phase 2 sent", 50);
    stop();
    await waitFor(() => players.every((p) => p.notices.some((n) => n.fleetgate === "resumed")), 12_000, "every player resumed", 50);
    const settledAt = performance.now() + 1000;
    await Bun.sleep(1000);

    // No socket closed; frames in order per sender.
    expect(players.flatMap((p) => p.closes)).toEqual([]);
    expect(players.reduce((n, p) => n + p.outOfOrder, 0)).toBe(0);
    // Every room on one new node.
    const now = await Promise.all(rooms.map((room) => stack.t.redis.get(stack.t.keys.roomNode(room))));
    for (const id of now) expect(id).not.toBe(victim.id);
    const newNodes = await Promise.all(now.map(async (id) => (await stack.registry.get(id!))!));
    // The counter continues from the snapshot; one more frame each adds exactly 8 per room.
    for (const [r, room] of rooms.entries()) {
      const st = (await roomState(newNodes[r]!, room))!;
      expect(st.resume).toBeGreaterThanOrEqual(1);
      expect(st.fromSnapshot).toBe(true);
      expect(st.startCount).toBeGreaterThanOrEqual(PER_ROOM * 20);
    }
    const before = await Promise.all(rooms.map(async (room, r) => (await roomState(newNodes[r]!, room))!.count));
    for (const p of players) p.ws.send(`${p.id}:${p.sent++}`);
    await waitFor(async () => {
      const after = await Promise.all(rooms.map(async (room, r) => (await roomState(newNodes[r]!, room))?.count));
      return after.every((c, r) => c === before[r]! + PER_ROOM);
    }, 5_000, "one more frame each counted on the new node", 20);

    const pauses = players.map((p) => longestSilence(p, killedAt - 200, settledAt - 1000));
    const firstOnNew = players.map((p) => {
      const resumedAt = p.notices.find((n) => n.fleetgate === "resumed")!.at;
      return (firstFrameAfter(p, resumedAt) ?? NaN) + (resumedAt - killedAt);
    });
    // A frame lost with the node is missed by each of the other players of its room: count it once.
    const held = Math.round(players.reduce((n, p) => n + p.gaps, 0) / (PER_ROOM - 1));
    console.log(
      `[resume e2e ${label}] pause p50 ${percentile(pauses, 0.5).toFixed(0)} ms p99 ${percentile(pauses, 0.99).toFixed(0)} ms; kill -> first frame on the new node p50 ${percentile(firstOnNew, 0.5).toFixed(0)} ms p99 ${percentile(firstOnNew, 0.99).toFixed(0)} ms; frames lost in flight to the dead node ${held}`,
    );
    expect(percentile(pauses, 0.99)).toBeLessThanOrEqual(1500);
    return { pauses, firstOnNew, held };
  } finally {
    for (const p of players) p.ws.close();
  }
}

describe.skipIf(!need("redis") || !need("docker"))("session resume on Docker", () => {
  let stack: Stack | undefined;
  const extra: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of extra.splice(0).reverse()) await c().catch(() => {});
    await stack?.stop();
    stack = undefined;
  });

  test(
    "a node SIGKILLed under 3 rooms of 8 players: 0 sockets closed, rooms on a new node, counter from the snapshot, in order, p99 pause <= 1.5 s",
    async () => {
      const port = freePort();
      stack = await startStack("docker", fleetConfig(port));
      await scaleTo(stack, 1, "first");
      await killUnderRooms(stack, [stack.gw.wsUrl], "rsd", (sub) => stack!.gw.token(sub));
    },
    180_000,
  );

  test.skipIf(!need("haproxy"))(
    "the same through the HAProxy edge with two gateway replicas",
    async () => {
      const port = freePort();
      stack = await startStack("docker", { ...fleetConfig(port), gatewayHeartbeatMs: 200 });
      const s = stack;
      // Two gateway replicas registered in the gateway registry, as gateway/main.ts does.
      const gw2: TestGateway = await startTestGateway(s.t.prefix, { ...s.config, port: freePort() });
      extra.push(() => gw2.stop());
      const gateways = new GatewayRegistry(s.t.redis, s.t.keys, 600);
      const beat = async () => {
        for (const [id, p] of [
          ["gw-resume-a", port],
          ["gw-resume-b", gw2.port],
        ] as const)
          await gateways.heartbeat({ id, host: "127.0.0.1", port: p, startedAt: Date.now() }, Date.now());
      };
      await beat();
      const hb = setInterval(() => void beat().catch(() => {}), 200);
      extra.push(async () => clearInterval(hb));
      const edge: TestEdgeConfig = await testEdgeConfig({ redisPrefix: s.t.prefix, gatewayHeartbeatMs: 200, templaterResyncMs: 2_000 });
      extra.push(() => edge.cleanup());
      const templater: Templater | undefined = await startEdgeTemplater(s.t, edge, gateways);
      extra.push(() => stopEdgeTemplater(templater));
      await waitFor(async () => (await statsServers(edge.config.haproxyStatsPort, "gateways")).filter((x) => x.status === "UP").length === 2, 15_000, "both gateways UP", 100);
      await scaleTo(s, 1, "edge-first");
      // Half the players straight through the edge (hashed to one replica by room), half to the
      // other replica directly: one room's players on two gateways.
      const edgeWs = `ws://127.0.0.1:${edge.config.haproxyPort}`;
      const gw1 = s.gw as TestGateway;
      await killUnderRooms(s, [edgeWs, gw2.wsUrl], "rse", (sub) => s.gw.token(sub), (rooms) => {
        // Every room has players on both replicas (the edge's share may land on either).
        const on = (g: TestGateway) => new Set(g.app.decorator.gateway.hub.connections().map((d) => d.roomCode));
        const a = on(gw1);
        const b = on(gw2);
        expect(rooms.filter((r) => a.has(r) && b.has(r)).length).toBeGreaterThanOrEqual(1);
      });
    },
    180_000,
  );

  test(
    "a rollout with resume on: the room still live at the drain deadline moves to the new version without a close",
    async () => {
      const V1 = "fleetgate-node:v1";
      const V2 = "fleetgate-node:v2";
      await ensureNodeImage({ image: V1 });
      await ensureNodeImage({ image: V2 });
      const port = freePort();
      stack = await startStack("docker", { ...fleetConfig(port), nodeImage: V1, nodeDrainMs: 2000 });
      const s = stack;
      const gw = s.gw as TestGateway;
      const admin = await gw.token("admin_resume", ["admin"]);
      const api = async <T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> => {
        const res = await fetch(`${gw.url}${path}`, { method, headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
        return { status: res.status, body: (await res.json()) as T };
      };
      const [first] = await scaleTo(s, 1, "rollout-first");
      expect(first!.version).toBe("v1");
      const room = `rsr-${crypto.randomUUID().slice(0, 6)}`;
      const players: RoomPlayer[] = [];
      for (let i = 0; i < PER_ROOM; i++) players.push(openRoomPlayer(gw.wsUrl, room, `p${i}`, await gw.token(`p_rsr_${i}`)));
      try {
        await Promise.all(players.map((p) => p.opened));
        const stop = startTraffic(players, HZ, 1_000_000);
        try {
          const started = await api<{ rolloutId: string }>("POST", "/v1/admin/fleet/rollouts", { image: V2, maxSurge: 1, drainDeadlineSeconds: 2 });
          expect(started.status).toBe(202);
          // The room outlives the drain deadline: it is moved to a v2 node, its players never closed.
          await waitFor(async () => {
            const id = await s.t.redis.get(s.t.keys.roomNode(room));
            return id && (await s.registry.get(id))?.version === "v2";
          }, 60_000, "the room on a v2 node", 100);
          await waitFor(() => players.every((p) => p.notices.some((n) => n.fleetgate === "resumed")), 10_000, "every player resumed", 50);
          const after = players.map((p) => p.received);
          await waitFor(() => players.every((p, i) => p.received > after[i]! + 10), 10_000, "frames flow on v2", 50);
        } finally {
          stop();
        }
        expect(players.flatMap((p) => p.closes)).toEqual([]);
        expect(players.reduce((n, p) => n + p.outOfOrder, 0)).toBe(0);
        const id = (await s.t.redis.get(s.t.keys.roomNode(room)))!;
        const st = (await roomState((await s.registry.get(id))!, room))!;
        expect(st.resume).toBeGreaterThanOrEqual(1);
        expect(st.fromSnapshot).toBe(true);
        expect(st.startCount).toBeGreaterThan(0);
        const pauses = players.map((p) => p.notices.find((n) => n.fleetgate === "resumed")?.pausedMs ?? NaN);
        console.log(`[resume e2e rollout] pause at the drain deadline (gateway-measured) p50 ${percentile(pauses, 0.5).toFixed(0)} ms max ${Math.max(...pauses).toFixed(0)} ms`);
      } finally {
        for (const p of players) p.ws.close();
      }
    },
    240_000,
  );
});
