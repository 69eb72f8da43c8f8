/**
 * The WebSocket relay end to end: a real gateway, real Redis, real reference nodes.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { JwtAuthenticator } from "../../gateway/auth/jwt.ts";
import { closedWithin, openSocket, startTestGateway, startTestNode, TEST_JWT_SECRET, type TestGateway, type TestNode } from "../support/gateway-fixtures.ts";
import { need, testRedis, waitFor, type TestRedis } from "../support/services.ts";

describe.skipIf(!need("redis"))("gateway relay", () => {
  let tr: TestRedis;
  let gw: TestGateway;
  let node: TestNode;

  beforeAll(async () => {
    tr = testRedis("gwrelay");
    gw = await startTestGateway(tr.prefix, { maxFrameBytes: 64 * 1024 });
    node = await startTestNode(gw.deps, { roomMode: "echo" });
  });

  afterAll(async () => {
    await gw?.stop();
    await node?.stop();
    await tr?.cleanup();
  });

  const connect = (room: string, token: string | undefined, via: "protocol" | "query" = "protocol") =>
    via === "protocol" && token
      ? openSocket(`${gw.wsUrl}/v1/connect?room=${encodeURIComponent(room)}`, ["bearer", token])
      : openSocket(`${gw.wsUrl}/v1/connect?room=${encodeURIComponent(room)}${token ? `&token=${encodeURIComponent(token)}` : ""}`);

  test("answers the bearer subprotocol and relays a frame", async () => {
    const s = connect("room-basic", await gw.token());
    await s.opened;
    expect(s.ws.protocol).toBe("bearer");
    s.ws.send("hello");
    await s.waitMessages(1);
    expect(s.messages[0]).toBe("hello");
    s.ws.close();
    await s.closed;
  });

  test("a display name with emoji reaches the node percent-encoded (a valid header)", async () => {
    const a = new JwtAuthenticator({ alg: "HS256", secret: TEST_JWT_SECRET }, 60_000);
    const { token } = await a.sign({ sub: "p_emoji", name: "Zoë 🚀", region: "local", roles: ["player"] }, Date.now());
    const s = connect("room-emoji", token);
    await s.opened;
    s.ws.send("hi");
    await s.waitMessages(1);
    expect(s.messages[0]).toBe("hi");
    s.ws.close();
  });

  test("?token= works too", async () => {
    const s = connect("room-query", await gw.token(), "query");
    await s.opened;
    s.ws.send(new Uint8Array([1, 2, 3]));
    await s.waitMessages(1);
    expect(new Uint8Array(s.messages[0] as ArrayBuffer)).toEqual(new Uint8Array([1, 2, 3]));
    s.ws.close();
  });

  test("frames sent before the upstream opens are buffered and relayed exactly, in order", async () => {
    const s = connect("room-early", await gw.token());
    await s.opened;
    const sent = Array.from({ length: 50 }, (_, i) => (i % 2 ? `{"early":  ${i}}` : new Uint8Array([i, 255 - i, i])));
    for (const f of sent) s.ws.send(f); // right after the client's open: the node is still being dialled
    await s.waitMessages(50);
    s.messages.forEach((m, i) => {
      const want = sent[i]!;
      if (typeof want === "string") expect(m).toBe(want);
      else expect(new Uint8Array(m as ArrayBuffer)).toEqual(want);
    });
    s.ws.close();
  });

  test("a player session's room admits only that session's player", async () => {
    const owner = await gw.token("p_owner_1");
    const res = await fetch(`${gw.url}/v1/players/join`, { method: "POST", headers: { authorization: `Bearer ${owner}` } });
    expect(res.status).toBe(201);
    const j = (await res.json()) as { roomCode: string; connectUrl: string };
    const intruder = openSocket(j.connectUrl, ["bearer", await gw.token("p_intruder_1")]);
    expect((await closedWithin(intruder)).code).toBe(4003);
    const mine = openSocket(j.connectUrl, ["bearer", owner]);
    await mine.opened;
    mine.ws.send("mine");
    await mine.waitMessages(1);
    expect(mine.messages[0]).toBe("mine");
    mine.ws.close();
  });

  test("every bad token kind closes 4001 and opens no upstream", async () => {
    const good = await gw.token();
    const [h, p, sig] = good.split(".") as [string, string, string];
    const payload = JSON.parse(Buffer.from(p, "base64url").toString()) as Record<string, unknown>;
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...payload, roles: ["admin"] })).toString("base64url")}.${sig}`;
    const algNone = `${Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url")}.${p}.`;
    const other = new JwtAuthenticator({ alg: "HS256", secret: "another-secret-0123456789" }, 60_000);
    const wrongSecret = (await other.sign({ sub: "p_x", name: "x", region: "local", roles: ["player"] }, Date.now())).token;
    const expired = await gw.token("p_expired", ["player"], -60_000);
    const cases: [string, string | undefined, "protocol" | "query"][] = [
      ["missing", undefined, "query"],
      ["garbage", "not.a.jwt", "query"],
      ["tampered", tampered, "protocol"],
      ["alg none", algNone, "query"],
      ["wrong secret", wrongSecret, "protocol"],
      ["expired", expired, "query"],
    ];
    const before = gw.app.decorator.gateway.hub.upstreamOpens;
    for (const [name, token, via] of cases) {
      const s = connect("room-auth", token, via);
      const c = await closedWithin(s);
      expect({ name, code: c.code }).toEqual({ name, code: 4001 });
    }
    expect(gw.app.decorator.gateway.hub.upstreamOpens).toBe(before);
  });

  test("bad room codes are refused before any lookup", async () => {
    const token = await gw.token();
    const before = gw.app.decorator.gateway.hub.upstreamOpens;
    for (const room of ["", "abc", "../x", "a".repeat(33), "ro om", "rööm", "room/../../etc", "a%00bcd"]) {
      const s = connect(room, token);
      const c = await closedWithin(s);
      expect({ room, code: c.code }).toEqual({ room, code: 4004 });
    }
    // 1 MB: refused by the HTTP layer (URI too long) or by the code check; never opened.
    const huge = connect("x".repeat(1024 * 1024), token, "protocol");
    const c = await closedWithin(huge);
    expect(c.code).not.toBe(1000);
    expect(gw.app.decorator.gateway.hub.upstreamOpens).toBe(before);
    // Over plain HTTP the refusal is a contract error body.
    const res = await fetch(`${gw.url}/v1/connect?room=..%2Fx`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("INVALID_ROOM_CODE");
  });

  test("a frame above MAX_FRAME_BYTES closes 1009", async () => {
    const s = connect("room-big", await gw.token());
    await s.opened;
    s.ws.send(new Uint8Array(64 * 1024 + 1));
    const c = await closedWithin(s);
    expect(c.code).toBe(1009);
  });

  test("10,000 mixed text/binary frames arrive byte-exact and in order", async () => {
    const s = connect("room-exact", await gw.token());
    await s.opened;
    const sent: (string | Uint8Array)[] = [];
    for (let i = 0; i < 10_000; i++) {
      let f: string | Uint8Array;
      switch (i % 5) {
        case 0:
          f = `{"a":  ${i}}`;
          break;
        case 1:
          f = `  {"b" : [1,2 , 3], "i":${i} }  `;
          break;
        case 2:
          f = `unicode ✓ 🚀 ${i}`;
          break;
        case 3:
          f = new Uint8Array([i & 0xff, (i >> 8) & 0xff, 0, 255, 123, 34]);
          break;
        default:
          f = new Uint8Array(Buffer.from(`{"looks":"json","i":${i}}`));
      }
      sent.push(f);
    }
    // Bounded windows keep the test inside the rate and buffer limits and measure nothing but order.
    for (let i = 0; i < sent.length; i += 500) {
      for (const f of sent.slice(i, i + 500)) s.ws.send(f);
      await s.waitMessages(Math.min(i + 500, sent.length), 10_000);
    }
    expect(s.messages.length).toBe(10_000);
    for (let i = 0; i < sent.length; i++) {
      const want = sent[i]!;
      const got = s.messages[i]!;
      if (typeof want === "string") {
        if (got !== want) throw new Error(`frame ${i}: got ${String(got)} want ${want}`);
      } else {
        if (typeof got === "string" || Buffer.compare(Buffer.from(got), Buffer.from(want)) !== 0) throw new Error(`binary frame ${i} differs`);
      }
    }
    s.ws.close();
  }, 30_000);

  test("1,000 connect/disconnect cycles leave no upstream socket open", async () => {
    const token = await gw.token();
    for (let i = 0; i < 1000; i += 50) {
      const batch = Array.from({ length: 50 }, (_, j) => connect(`cycle-${(i + j) % 7}x`, token));
      await Promise.all(batch.map((s) => s.opened));
      for (const s of batch) s.ws.close();
      await Promise.all(batch.map((s) => s.closed));
    }
    await waitFor(() => node.server.health().players === 0, 3000, "node player count back to 0");
    expect(node.server.health().players).toBe(0);
    expect(gw.app.decorator.gateway.hub.size).toBe(0);
  }, 60_000);

  test("clients that leave while the node is still being dialled leave nothing open", async () => {
    const token = await gw.token();
    const batch = Array.from({ length: 200 }, (_, i) => connect(`abort-${i % 5}x`, token));
    // Half close the moment they open (upstream still connecting), half before the upgrade answers.
    batch.forEach((s, i) => (i % 2 ? void s.opened.then(() => s.ws.close(), () => {}) : s.ws.close()));
    await Promise.all(batch.map((s) => closedWithin(s, 5000)));
    await waitFor(() => node.server.health().players === 0 && gw.app.decorator.gateway.hub.size === 0, 3000, "nothing left open");
  });

  test("client close reaches the node within 1 s", async () => {
    const s = connect("room-close", await gw.token());
    await s.opened;
    await waitFor(() => node.server.health().players === 1, 1000, "player on node");
    const t0 = Date.now();
    s.ws.close();
    await waitFor(() => node.server.health().players === 0, 1000, "player gone from node");
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  test("a kick on the room-events channel closes that player's socket 4003", async () => {
    const victim = "p_victim_1";
    const a = connect("room-kick", await gw.token(victim));
    const b = connect("room-kick", await gw.token("p_other_1"));
    await Promise.all([a.opened, b.opened]);
    await tr.redis.publish(tr.keys.roomEventsChannel, JSON.stringify({ type: "kick", roomCode: "room-kick", playerId: victim, at: Date.now() }));
    const c = await closedWithin(a);
    expect(c.code).toBe(4003);
    b.ws.send("still here");
    await b.waitMessages(1);
    expect(b.messages[0]).toBe("still here");
    b.ws.close();
  });

  // The frame rate (token bucket: a burst slowed, a sustained flood closed 4029) is tested in gateway-ws-rate.test.ts.

  // With RESUME on the player is kept and the room moves instead: gateway-resume.test.ts.
  test("RESUME=false: the node dying closes the client 4009 with a reconnect delay", async () => {
    const tr3 = testRedis("gwdie");
    const g3 = await startTestGateway(tr3.prefix, { resume: false });
    const n3 = await startTestNode(g3.deps);
    try {
      const s = openSocket(`${g3.wsUrl}/v1/connect?room=room-die`, ["bearer", await g3.token()]);
      await s.opened;
      // The client is upgraded before the upstream opens; kill the node once the player is on it.
      await waitFor(() => n3.server.health().players === 1, 2000, "player on node");
      const t0 = Date.now();
      await n3.stop();
      const c = await closedWithin(s);
      expect(Date.now() - t0).toBeLessThan(1000); // the node's side reaches the client within 1 s
      expect(c.code).toBe(4009);
      expect(c.reason).toMatch(/reconnect after \d+ ms/);
    } finally {
      await g3.stop();
      await tr3.cleanup();
    }
  });

  test("no node in time: the scheduler is asked for one, and 4013 past JOIN_WAIT_TIMEOUT", async () => {
    const tr4 = testRedis("gwnocap");
    const g4 = await startTestGateway(tr4.prefix, { joinWaitTimeoutMs: 400 });
    try {
      const s = openSocket(`${g4.wsUrl}/v1/connect?room=room-none`, ["bearer", await g4.token()]);
      const c = await closedWithin(s);
      expect(c.code).toBe(4013);
      const job = await g4.deps.queues.scaleUp.getJob("scale-up__connect-room-none-new");
      expect(job?.data).toMatchObject({ count: 1, requestId: "connect-room-none-new" });
    } finally {
      await g4.stop();
      await tr4.cleanup();
    }
  });

  test("a node that turns ready during the wait takes the connection", async () => {
    const tr5 = testRedis("gwwait");
    const g5 = await startTestGateway(tr5.prefix, { joinWaitTimeoutMs: 5000 });
    let n5: TestNode | undefined;
    try {
      const s = openSocket(`${g5.wsUrl}/v1/connect?room=room-later`, ["bearer", await g5.token()]);
      await Bun.sleep(200);
      n5 = await startTestNode(g5.deps);
      await s.opened;
      s.ws.send("late but here");
      await s.waitMessages(1);
      expect(s.messages[0]).toBe("late but here");
      s.ws.close();
    } finally {
      await g5.stop();
      await n5?.stop();
      await tr5.cleanup();
    }
  });

  test("a room whose node was stopped for inactivity wakes it (wake job) and connects once it is ready", async () => {
    const tr6 = testRedis("gwwake");
    const g6 = await startTestGateway(tr6.prefix, { joinWaitTimeoutMs: 5000 });
    const n6 = await startTestNode(g6.deps, { capacity: 1, maxRooms: 1 });
    try {
      const first = openSocket(`${g6.wsUrl}/v1/connect?room=room-sleepy`, ["bearer", await g6.token("p_sleepy")]);
      await first.opened;
      first.ws.close();
      await first.closed;
      const reg = g6.deps.nodes;
      await reg.transition(n6.record.id, "stopping", Date.now());
      await reg.transition(n6.record.id, "stopped", Date.now(), { patch: { stoppedAt: 12345 } });
      const again = openSocket(`${g6.wsUrl}/v1/connect?room=room-sleepy`, ["bearer", await g6.token("p_sleepy")]);
      const job = await waitFor(() => g6.deps.queues.wake.getJob(`wake__${n6.record.id}__connect-room-sleepy-12345`), 3000, "wake job");
      expect(job.data.nodeId).toBe(n6.record.id);
      // What the scheduler's wake job does (the node process here never stopped):
      await reg.transition(n6.record.id, "starting", Date.now());
      await reg.transition(n6.record.id, "ready", Date.now());
      await again.opened;
      again.ws.send("awake");
      await again.waitMessages(1);
      expect(again.messages[0]).toBe("awake");
      expect((await g6.deps.placement.nodeForRoom("room-sleepy"))?.id).toBe(n6.record.id);
      again.ws.close();
    } finally {
      await g6.stop();
      await n6.stop();
      await tr6.cleanup();
    }
  });
});
