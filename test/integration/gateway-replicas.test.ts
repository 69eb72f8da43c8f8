/** Two gateway replicas on different ports share Redis and serve the same room. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { realClock } from "../../core/clock.ts";
import { silentLogger } from "../../core/log.ts";
import { startReplicaHeartbeat } from "../../gateway/ops/replica.ts";
import { openSocket, startTestGateway, startTestNode, type TestGateway, type TestNode } from "../support/gateway-fixtures.ts";
import { need, testRedis, waitFor, type TestRedis } from "../support/services.ts";

describe.skipIf(!need("redis"))("gateway replicas", () => {
  let tr: TestRedis;
  let a: TestGateway;
  let b: TestGateway;
  let nodes: TestNode[] = [];

  beforeAll(async () => {
    tr = testRedis("gwrep");
    a = await startTestGateway(tr.prefix);
    b = await startTestGateway(tr.prefix);
    // Several relay nodes: the room must land on the same one whichever replica places it.
    nodes = [await startTestNode(a.deps, { roomMode: "relay" }), await startTestNode(a.deps, { roomMode: "relay" }), await startTestNode(a.deps, { roomMode: "relay" })];
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    for (const n of nodes) await n.stop();
    await tr?.cleanup();
  });

  test("players on different replicas meet in one room", async () => {
    expect(a.port).not.toBe(b.port);
    for (let round = 0; round < 5; round++) {
      const room = `shared-${round}`;
      // Both connect at once, so both replicas race to place the new room.
      const x = openSocket(`${a.wsUrl}/v1/connect?room=${room}`, ["bearer", await a.token("p_x")]);
      const y = openSocket(`${b.wsUrl}/v1/connect?room=${room}`, ["bearer", await b.token("p_y")]);
      await Promise.all([x.opened, y.opened]);
      const placed = await a.deps.placement.nodeForRoom(room);
      expect((await b.deps.placement.nodeForRoom(room))?.id).toBe(placed?.id);
      const onNode = nodes.find((n) => n.record.id === placed?.id)!;
      await waitFor(() => onNode.server.health().players === 2, 2000, "both players on the room's node");
      x.ws.send("from x via A");
      y.ws.send(new Uint8Array([7, 7, 7]));
      await Promise.all([x.waitMessages(1), y.waitMessages(1)]);
      expect(y.messages[0]).toBe("from x via A");
      expect(new Uint8Array(x.messages[0] as ArrayBuffer)).toEqual(new Uint8Array([7, 7, 7]));
      x.ws.close();
      y.ws.close();
      await Promise.all([x.closed, y.closed]);
    }
  });

  test("each replica heartbeats into the GatewayRegistry and leaves it on shutdown", async () => {
    const opts = { clock: realClock, intervalMs: 50, log: silentLogger };
    const pa = await startReplicaHeartbeat(a.deps.gateways, { id: "gw-a", host: "127.0.0.1", port: a.port, startedAt: Date.now() }, opts);
    const pb = await startReplicaHeartbeat(b.deps.gateways, { id: "gw-b", host: "127.0.0.1", port: b.port, startedAt: Date.now() }, opts);
    try {
      const live = await a.deps.gateways.list(Date.now());
      expect(live.map((g) => [g.id, g.port])).toEqual([
        ["gw-a", a.port],
        ["gw-b", b.port],
      ]);
      // Still live after several heartbeat intervals (TTL is 3 × GATEWAY_HEARTBEAT in main; here the registry's).
      await Bun.sleep(200);
      expect((await a.deps.gateways.list(Date.now())).length).toBe(2);
    } finally {
      await pa.stop();
    }
    expect((await a.deps.gateways.list(Date.now())).map((g) => g.id)).toEqual(["gw-b"]);
    await pb.stop();
    expect(await a.deps.gateways.list(Date.now())).toEqual([]);
  });
});
