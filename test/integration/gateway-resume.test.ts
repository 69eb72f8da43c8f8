/**
 * Session resume (CONTRACT "Session resume") with real gateways, real Redis and in-process
 * reference nodes: a node lost under a room (its server stopped: the port refuses), a drain
 * deadline, a deliberate close, the timeout and the held-bytes bound; and the snapshot node API.
 * The same on the real Docker engine is test/e2e/resume-docker.test.ts.
 */
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import type { Config } from "../../core/config.ts";
import { startNodeServer, type NodeServer, type RoomStateBody } from "../../node/server.ts";
import { openSocket, startTestGateway, type TestGateway, type TestSocket } from "../support/gateway-fixtures.ts";
import { makeNode } from "../support/nodes.ts";
import { FleetgateClient } from "../../sdk/client/src/index.ts";
import { need, testRedis, waitFor, type TestRedis } from "../support/services.ts";

interface Node {
  id: string;
  token: string;
  server: NodeServer;
}

describe.skipIf(!need("redis"))("session resume", () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  });
  afterAll(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  });

  async function setup(label: string, overrides: Partial<Config> = {}): Promise<{ tr: TestRedis; gw: TestGateway }> {
    const tr = testRedis(label);
    const gw = await startTestGateway(tr.prefix, { resumeTimeoutMs: 3000, healthCheckTimeoutMs: 300, ...overrides });
    cleanups.push(async () => {
      await gw.stop();
      await tr.cleanup();
    });
    return { tr, gw };
  }

  async function addNode(gw: TestGateway, opts: { roomMode?: "relay" | "echo"; snapshots?: boolean; state?: "ready" | "draining" } = {}): Promise<Node> {
    const id = `n-${crypto.randomUUID().slice(0, 8)}`;
    const token = `tok-${crypto.randomUUID()}`;
    const server = startNodeServer({
      nodeId: id,
      port: 0,
      hostname: "127.0.0.1",
      maxRooms: 1000,
      maxPlayers: 1000,
      token,
      roomMode: opts.roomMode ?? "relay",
      reconnectDelayMs: 100,
      closeGraceMs: 200,
      ...(opts.snapshots === false ? {} : { snapshots: { fleetgateUrl: gw.url, intervalMs: 20 } }),
    });
    await gw.deps.nodes.create(makeNode({ id, port: server.port, token, capacity: 1000, maxRooms: 1000, region: "local", state: opts.state ?? "ready", startedAt: Date.now(), lastSeenAt: Date.now() }), Date.now());
    cleanups.push(() => server.stop());
    return { id, token, server };
  }

  const roomNode = (tr: TestRedis, room: string) => tr.redis.get(tr.keys.roomNode(room));
  const stateOf = async (n: Node, room: string): Promise<RoomStateBody | undefined> => {
    const res = await fetch(`http://127.0.0.1:${n.server.port}/rooms/${room}/state`, { headers: { "x-node-token": n.token } });
    return res.status === 200 ? ((await res.json()) as RoomStateBody) : undefined;
  };
  const join = async (gw: TestGateway, room: string, notices = false): Promise<TestSocket> => {
    const s = openSocket(`${gw.wsUrl}/v1/connect?room=${room}${notices ? "&notices=1" : ""}`, ["bearer", await gw.token()]);
    await s.opened;
    return s;
  };
  const notClosed = (s: TestSocket) => Promise.race([s.closed.then((c) => `closed ${c.code} ${c.reason}`), Bun.sleep(0).then(() => "open")]);

  test("a node lost under a room: no socket closes, the room moves once to one new node, held frames arrive in order, state continues from the snapshot", async () => {
    const { tr, gw } = await setup("resume-lost");
    const a = await addNode(gw);
    const room = "resume-lost-1";
    const players = [await join(gw, room, true), await join(gw, room), await join(gw, room)];
    await waitFor(() => a.server.health().players === 3, 3000, "three players on the node");
    // Each player says 5 things; the others hear them.
    for (let i = 0; i < 5; i++) for (const [p, s] of players.entries()) s.ws.send(`p${p}:${i}`);
    for (const s of players) await s.waitMessages(10);
    const before = await waitFor(async () => {
      const st = await stateOf(a, room);
      const snap = await tr.redis.get(tr.keys.roomSnapshot(room));
      return st?.count === 15 && snap && (JSON.parse(snap) as { count: number }).count === 15 ? st : undefined;
    }, 3000, "snapshot of 15 messages saved");
    expect(before.resume).toBeNull();

    const b = await addNode(gw); // the only node left once `a` is gone
    for (const s of players) s.messages.length = 0;
    await a.server.stop(); // the port now refuses: lost
    // Frames sent during the pause are held and delivered in order on the new node.
    for (let i = 5; i < 10; i++) for (const [p, s] of players.entries()) s.ws.send(`p${p}:${i}`);
    await waitFor(async () => (await roomNode(tr, room)) === b.id, 3000, "room placed on the new node");
    for (const [p, s] of players.entries()) {
      const want = p === 0 ? 10 + 2 : 10; // the notices client also gets "paused" and "resumed"
      await s.waitMessages(want, 5000);
      const game = s.messages.filter((m) => typeof m === "string" && !m.startsWith('{"fleetgate"')) as string[];
      for (const q of [0, 1, 2].filter((q) => q !== p)) {
        expect(game.filter((m) => m.startsWith(`p${q}:`))).toEqual([5, 6, 7, 8, 9].map((i) => `p${q}:${i}`));
      }
    }
    const notices = players[0]!.messages.filter((m) => typeof m === "string" && m.startsWith('{"fleetgate"')).map((m) => JSON.parse(m as string) as { fleetgate: string; pausedMs?: number });
    expect(notices.map((n) => n.fleetgate)).toEqual(["paused", "resumed"]);
    expect(notices[1]!.pausedMs).toBeLessThan(3000);
    // Raw clients saw no notice.
    for (const s of players.slice(1)) expect(s.messages.some((m) => typeof m === "string" && m.includes("fleetgate"))).toBe(false);
    for (const s of players) expect(await notClosed(s)).toBe("open");
    const after = await waitFor(async () => {
      const st = await stateOf(b, room);
      return st && st.count === 30 ? st : undefined;
    }, 3000, "the new node counts on from the snapshot");
    expect(after.resume).toBe(1);
    expect(after.fromSnapshot).toBe(true);
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toMatch(/fleetgate_resume_connections_total\{outcome="resumed"\} 3/);
    expect(metrics).toMatch(/fleetgate_resume_pause_seconds_count 3/);
    // The lost node was taken out of placement at once.
    expect((await gw.deps.nodes.get(a.id))?.state).toBe("unhealthy");
    for (const s of players) s.ws.close();
  });

  test("client SDK with notices: paused and resumed events, no close, frames go on", async () => {
    const { gw } = await setup("resume-sdk");
    const a = await addNode(gw, { roomMode: "echo" });
    const client = new FleetgateClient({ baseUrl: gw.url, token: await gw.token() });
    cleanups.push(async () => client.close());
    const room = client.connect(`${gw.wsUrl}/v1/connect?room=resume-sdk-1`, { notices: true });
    const events: string[] = [];
    const got: unknown[] = [];
    room.on("paused", (e) => events.push(`paused:${e.reason}`));
    room.on("resumed", (e) => events.push(`resumed:${e.pausedMs >= 0}`));
    room.on("close", (e) => events.push(`close:${e.code}`));
    room.on("message", (m) => got.push(m));
    await room.once("open");
    room.send("one");
    await waitFor(() => got.length === 1, 3000, "echo");
    await addNode(gw, { roomMode: "echo" });
    await a.server.stop();
    room.send("two"); // held while the room moves
    await waitFor(() => got.length === 2, 5000, "echo from the new node");
    expect(got).toEqual(["one", "two"]);
    expect(events).toEqual(["paused:node lost", "resumed:true"]);
    room.close();
  });

  test("players of one room on two gateway replicas land on the same new node", async () => {
    const { tr, gw } = await setup("resume-two");
    const gw2 = await startTestGateway(tr.prefix, { resumeTimeoutMs: 3000, healthCheckTimeoutMs: 300 });
    cleanups.push(() => gw2.stop());
    const a = await addNode(gw);
    const room = "resume-two-1";
    const s1 = await join(gw, room);
    const s2 = await join(gw2, room);
    await waitFor(() => a.server.health().players === 2, 3000, "both on the node");
    const others = [await addNode(gw), await addNode(gw), await addNode(gw)];
    await a.server.stop();
    const moved = await waitFor(async () => {
      const id = await roomNode(tr, room);
      return id && id !== a.id ? id : undefined;
    }, 3000, "room moved");
    const target = others.find((n) => n.id === moved)!;
    await waitFor(() => target.server.health().players === 2, 3000, "both players on the same new node");
    for (const n of others) if (n !== target) expect(n.server.health().players).toBe(0);
    s1.ws.send("hello from gateway 1");
    await s2.waitMessages(1);
    expect(s2.messages[0]).toBe("hello from gateway 1");
    expect(await notClosed(s1)).toBe("open");
    s1.ws.close();
    s2.ws.close();
  });

  test("a drain deadline (the node closes its players 4009) moves the room without a close; a room that never saved a snapshot resumes empty", async () => {
    const { tr, gw } = await setup("resume-drain");
    const a = await addNode(gw, { snapshots: false });
    const room = "resume-drain-1";
    const s1 = await join(gw, room);
    const s2 = await join(gw, room);
    await waitFor(() => a.server.health().players === 2, 3000, "both on the node");
    const b = await addNode(gw);
    await gw.deps.nodes.transition(a.id, "draining", Date.now());
    await a.server.drain(0);
    await waitFor(async () => (await roomNode(tr, room)) === b.id, 3000, "room on the new node");
    await waitFor(() => b.server.health().players === 2, 3000, "both on the new node");
    const st = await stateOf(b, room);
    expect(st).toMatchObject({ count: 0, resume: 1, fromSnapshot: false });
    s1.ws.send("after drain");
    await s2.waitMessages(1);
    expect(s2.messages.at(-1)).toBe("after drain");
    expect(await notClosed(s1)).toBe("open");
    s1.ws.close();
    s2.ws.close();
  });

  test("a deliberate close by the node (4003) is passed on, not resumed", async () => {
    const { gw } = await setup("resume-kick");
    await addNode(gw, { roomMode: "echo" }); // a node the room could move to, were it resumed
    // A node of its own that kicks on "kick" (the reference node has no kick).
    const token = `tok-${crypto.randomUUID()}`;
    const kicker = Bun.serve<undefined>({
      hostname: "127.0.0.1",
      port: 0,
      fetch: (req, srv) => (srv.upgrade(req, { data: undefined }) ? undefined : new Response("no", { status: 400 })),
      websocket: {
        message(ws, m) {
          if (m === "kick") ws.close(4003, "kicked by the game");
          else ws.send(m);
        },
      },
    });
    cleanups.push(() => kicker.stop(true));
    const id = `n-kick-${crypto.randomUUID().slice(0, 6)}`;
    await gw.deps.nodes.create(makeNode({ id, port: kicker.port!, token, capacity: 1000, maxRooms: 1000, region: "local", state: "ready", startedAt: Date.now(), lastSeenAt: Date.now() }), Date.now());
    // Place the room on the kicker.
    const room = "resume-kick-1";
    await gw.deps.redis.set(gw.deps.keys.roomNode(room), id);
    const s = await join(gw, room);
    s.ws.send("ping");
    await s.waitMessages(1);
    s.ws.send("kick");
    const c = await Promise.race([s.closed, Bun.sleep(3000).then(() => ({ code: 0, reason: "not closed" }))]);
    expect(c).toEqual({ code: 4003, reason: "kicked by the game" });
    expect(gw.app.decorator.gateway.hub.resumer?.stats.started).toBe(0);
  });

  test("a hung node (socket open, /health silent) that the health checks mark unhealthy: its room moves", async () => {
    const { tr, gw } = await setup("resume-hung");
    const token = `tok-${crypto.randomUUID()}`;
    const hung = Bun.serve<undefined>({
      hostname: "127.0.0.1",
      port: 0,
      fetch: (req, srv) => {
        if (new URL(req.url).pathname === "/health") return new Promise<Response>(() => {}); // never answers
        return srv.upgrade(req, { data: undefined }) ? undefined : new Response("no", { status: 400 });
      },
      websocket: { message() {} }, // swallows frames: hung
    });
    cleanups.push(() => hung.stop(true));
    const id = `n-hung-${crypto.randomUUID().slice(0, 6)}`;
    await gw.deps.nodes.create(makeNode({ id, port: hung.port!, token, capacity: 1000, maxRooms: 1000, region: "local", state: "ready", startedAt: Date.now(), lastSeenAt: Date.now() }), Date.now());
    const room = "resume-hung-1";
    await gw.deps.redis.set(gw.deps.keys.roomNode(room), id);
    const s = await join(gw, room);
    const b = await addNode(gw, { roomMode: "echo" });
    // Once the upstream is open, a frame goes into the hung node (frames sent before it opens are held and follow the room).
    await waitFor(() => gw.app.decorator.gateway.hub.connections().some((d) => d.upstreamOpen), 3000, "upstream to the hung node open");
    s.ws.send("lost in the hung node");
    await waitFor(() => gw.app.decorator.gateway.hub.stats.framesUp >= 1, 3000, "the frame relayed into the hung node");
    // What the scheduler's health check does after HEALTH_CHECK_FAILURES probes.
    await gw.deps.nodes.transition(id, "unhealthy", Date.now(), { reason: "test: health checks failed" });
    await waitFor(async () => (await roomNode(tr, room)) === b.id, 3000, "room on the healthy node");
    s.ws.send("after");
    await s.waitMessages(1, 3000);
    expect(s.messages).toEqual(["after"]);
    expect(await notClosed(s)).toBe("open");
    s.ws.close();
  });

  test("no node takes the room within RESUME_TIMEOUT: 4009", async () => {
    const { gw } = await setup("resume-timeout", { resumeTimeoutMs: 600, joinWaitTimeoutMs: 600 });
    const a = await addNode(gw, { roomMode: "echo" });
    const s = await join(gw, "resume-timeout-1");
    await waitFor(() => a.server.health().players === 1, 3000, "on the node");
    const t0 = Date.now();
    await a.server.stop();
    const c = await Promise.race([s.closed, Bun.sleep(5000).then(() => ({ code: 0, reason: "not closed" }))]);
    expect(c.code).toBe(4009);
    expect(c.reason).toMatch(/reconnect after \d+ ms/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(550);
  });

  test("held bytes past RESUME_BUFFER_BYTES pause the client, past twice the bound it gets 4009 (never a silent drop)", async () => {
    const { gw } = await setup("resume-buffer", { resumeTimeoutMs: 5000, resumeBufferBytes: 4096, maxFrameBytes: 1024 });
    const a = await addNode(gw, { roomMode: "echo" });
    const s = await join(gw, "resume-buffer-1");
    await waitFor(() => a.server.health().players === 1, 3000, "on the node");
    await a.server.stop();
    await waitFor(() => gw.app.decorator.gateway.hub.connections().some((d) => d.resume !== undefined), 3000, "resuming");
    const chunk = "x".repeat(1000);
    for (let i = 0; i < 20; i++) s.ws.send(chunk);
    const c = await Promise.race([s.closed, Bun.sleep(4000).then(() => ({ code: 0, reason: "not closed" }))]);
    expect(c.code).toBe(4009);
    expect(c.reason).toMatch(/too much data held/);
  });

  test("RESUME=false: a lost node closes its players 4009 at once", async () => {
    const { gw } = await setup("resume-off", { resume: false });
    const a = await addNode(gw, { roomMode: "echo" });
    const s = await join(gw, "resume-off-1");
    await waitFor(() => a.server.health().players === 1, 3000, "on the node");
    const t0 = Date.now();
    await a.server.stop();
    const c = await Promise.race([s.closed, Bun.sleep(3000).then(() => ({ code: 0, reason: "not closed" }))]);
    expect(c.code).toBe(4009);
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  test("a room's snapshot is deleted when the room closes", async () => {
    const { tr, gw } = await setup("resume-snapdel");
    const host = await gw.token("p_snapdel_host");
    const res = await fetch(`${gw.url}/v1/rooms`, { method: "POST", headers: { authorization: `Bearer ${host}`, "content-type": "application/json" }, body: JSON.stringify({ visibility: "public" }) });
    expect(res.status).toBe(201);
    const { code } = (await res.json()) as { code: string };
    await tr.redis.set(tr.keys.roomSnapshot(code), "state");
    const closed = await fetch(`${gw.url}/v1/rooms/${code}/close`, { method: "POST", headers: { authorization: `Bearer ${host}` } });
    expect(closed.status).toBe(200);
    expect(await tr.redis.exists(tr.keys.roomSnapshot(code))).toBe(0);
  });

  test("snapshot API: only the room's node reads and writes; 204 when none; 413 above SNAPSHOT_MAX_BYTES; kept with a TTL", async () => {
    const { tr, gw } = await setup("resume-snap", { snapshotMaxBytes: 1000 });
    const a = await addNode(gw, { roomMode: "echo", snapshots: false });
    const b = await addNode(gw, { roomMode: "echo", snapshots: false });
    const room = "resume-snap-1";
    const url = `${gw.url}/v1/node/rooms/${room}/snapshot`;
    const s = await join(gw, room);
    const owner = (await roomNode(tr, room)) === a.id ? a : b;
    const other = owner === a ? b : a;
    expect((await fetch(url, { headers: { "x-node-token": owner.token } })).status).toBe(204);
    expect((await fetch(url, { method: "PUT", body: "state-1" })).status).toBe(401);
    expect((await fetch(url, { method: "PUT", headers: { "x-node-token": other.token }, body: "state-1" })).status).toBe(403);
    expect((await fetch(url, { headers: { "x-node-token": other.token } })).status).toBe(403);
    expect((await fetch(url, { method: "PUT", headers: { "x-node-token": owner.token }, body: new Uint8Array([0, 1, 2, 255]) })).status).toBe(204);
    const got = await fetch(url, { headers: { "x-node-token": owner.token } });
    expect(got.status).toBe(200);
    expect(new Uint8Array(await got.arrayBuffer())).toEqual(new Uint8Array([0, 1, 2, 255]));
    const big = await fetch(url, { method: "PUT", headers: { "x-node-token": owner.token }, body: "y".repeat(1001) });
    expect(big.status).toBe(413);
    expect(((await big.json()) as { error: { code: string } }).error.code).toBe("SNAPSHOT_TOO_LARGE");
    expect((await fetch(`${gw.url}/v1/node/rooms/bad!code/snapshot`, { headers: { "x-node-token": owner.token } })).status).toBe(400);
    const ttl = await tr.redis.pttl(tr.keys.roomSnapshot(room));
    expect(ttl).toBeGreaterThan(0);
    s.ws.close();
  });
});
