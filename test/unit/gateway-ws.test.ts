import { describe, expect, test } from "bun:test";
import { FakeClock } from "../../core/clock.ts";
import { testConfig } from "../../core/config.ts";
import { createKeys } from "../../core/keys.ts";
import { silentLogger } from "../../core/log.ts";
import { MetricsRegistry } from "../../core/metrics.ts";
import { MemoryNodeRegistry } from "../../model/node-registry.ts";
import type { Redis } from "../../core/redis.ts";
import { clientAddress, FixedWindowLimiter } from "../../gateway/ops/rate-limit.ts";
import { liveNodeCount, mayScaleUp } from "../../model/placement/wait-for-node.ts";
import { connectUrl } from "../../gateway/http/connect-url.ts";
import { isSessionId } from "../../model/sessions/session-store.ts";
import { wsToken } from "../../gateway/ws/connect-route.ts";
import { RelayHub } from "../../gateway/ws/hub.ts";
import { encodePlayerName, frameBytes, isHeaderSafeId, newRelayState, RECONNECT_AFTER_RE } from "../../gateway/ws/relay.ts";
import { parseRoomCode } from "../../core/names.ts";
import { makeNode } from "../support/nodes.ts";

describe("parseRoomCode", () => {
  test.each<[unknown, string | undefined]>([
    ["abcd", "abcd"],
    ["A-b_9", "A-b_9"],
    ["x".repeat(32), "x".repeat(32)],
    ["abc", undefined],
    ["", undefined],
    [null, undefined],
    [undefined, undefined],
    [42, undefined],
    ["x".repeat(33), undefined],
    ["../x", undefined],
    ["../../etc/passwd", undefined],
    ["room code", undefined],
    ["rööm", undefined],
    ["room\u0000", undefined],
    ["x".repeat(1024 * 1024), undefined],
  ])("%p → %p", (raw, want) => {
    expect(parseRoomCode(raw)).toBe(want);
  });
});

describe("wsToken", () => {
  const req = (proto?: string) => new Request("http://localhost/v1/connect", proto ? { headers: { "sec-websocket-protocol": proto } } : {});
  test.each<[string | undefined, string, string | undefined, boolean]>([
    ["bearer, abc.def.ghi", "", "abc.def.ghi", true],
    ["Bearer,abc", "", "abc", true],
    ["bearer", "", undefined, true],
    ["chat, bearer, tok", "", "tok", true],
    ["chat", "token=q", "q", false],
    [undefined, "token=q", "q", false],
    [undefined, "", undefined, false],
  ])("protocol %p query %p → %p", (proto, query, token, via) => {
    expect(wsToken(req(proto), new URLSearchParams(query))).toEqual({ token, viaProtocol: via });
  });
});

describe("FixedWindowLimiter", () => {
  test("allows `limit` per window per key, then refuses until the next window", () => {
    const clock = new FakeClock(1_000_000);
    const l = new FixedWindowLimiter(3, clock);
    expect([l.hit("a"), l.hit("a"), l.hit("a"), l.hit("a")]).toEqual([true, true, true, false]);
    expect(l.hit("b")).toBe(true);
    clock.advance(1000);
    expect(l.hit("a")).toBe(true);
  });
});

describe("player headers", () => {
  test.each<[string, string]>([
    ["Ann", "Ann"],
    ["Zoë 🚀", "Zo%C3%AB%20%F0%9F%9A%80"],
    ["a\r\nb: c", "a%0D%0Ab%3A%20c"],
    ["100%", "100%25"],
  ])("encodePlayerName(%p) = %p, and decodes back", (name, want) => {
    expect(encodePlayerName(name)).toBe(want);
    expect(decodeURIComponent(encodePlayerName(name))).toBe(name);
  });

  test("a long multi-byte name is cut at a code point to fit 256", () => {
    const enc = encodePlayerName("漢".repeat(40));
    expect(enc.length).toBeLessThanOrEqual(256);
    expect(decodeURIComponent(enc)).toBe("漢".repeat(28));
  });

  test.each<[string, boolean]>([
    ["p_abc", true],
    ["user@example.com", true],
    ["has space", false],
    ["crlf\r\n", false],
    ["ü", false],
    ["", false],
    ["x".repeat(257), false],
  ])("isHeaderSafeId(%p) = %p", (id, ok) => {
    expect(isHeaderSafeId(id)).toBe(ok);
  });
});

describe("clientAddress", () => {
  const req = (xff?: string) => new Request("http://localhost/", xff ? { headers: { "x-forwarded-for": xff } } : {});
  test.each<[string | undefined, string | undefined, boolean, string]>([
    [undefined, "10.0.0.1", true, "10.0.0.1"],
    ["203.0.113.9", "127.0.0.1", true, "203.0.113.9"],
    ["1.1.1.1, 203.0.113.9", "127.0.0.1", true, "203.0.113.9"],
    ["1.1.1.1, 203.0.113.9", "127.0.0.1", false, "127.0.0.1"],
    [undefined, undefined, true, "local"],
  ])("XFF %p peer %p trust %p → %p", (xff, peer, trust, want) => {
    expect(clientAddress(req(xff), peer, trust)).toBe(want);
  });
});

describe("connectUrl", () => {
  const req = new Request("http://127.0.0.1:3000/v1/players/join", { headers: { host: "edge.example:8080" } });
  test.each<[string | undefined, string]>([
    [undefined, "ws://edge.example:8080/v1/connect?room=s-abcd"],
    ["https://play.example.com/", "wss://play.example.com/v1/connect?room=s-abcd"],
    ["http://127.0.0.1:8080", "ws://127.0.0.1:8080/v1/connect?room=s-abcd"],
  ])("PUBLIC_URL %p → %p", (pub, want) => {
    expect(connectUrl(pub, req, "s-abcd")).toBe(want);
  });
});

describe("join capacity decisions", () => {
  const nodes = [makeNode({ id: "a" }), makeNode({ id: "b", state: "starting" }), makeNode({ id: "c", state: "stopped" }), makeNode({ id: "d", state: "draining" })];
  test.each([
    [4, true],
    [3, false],
    [2, false],
  ])("MAX_SERVERS=%p: may scale up %p", (max, want) => {
    expect(liveNodeCount(nodes)).toBe(3);
    expect(mayScaleUp(nodes, max)).toBe(want);
  });

  test.each<[unknown, boolean]>([
    ["s_abcdefgh", true],
    ["s_" + "x".repeat(64), true],
    ["s_short", false],
    ["x_abcdefgh", false],
    ["s_../../etc", false],
    [12, false],
  ])("isSessionId(%p) = %p", (s, want) => {
    expect(isSessionId(s)).toBe(want);
  });
});

describe("RelayHub", () => {
  function hub() {
    const clock = new FakeClock();
    const nodes = new MemoryNodeRegistry();
    const touched: string[] = [];
    const orig = nodes.touchActivity.bind(nodes);
    nodes.touchActivity = async (id: string, now: number) => {
      touched.push(id);
      await orig(id, now);
    };
    const h = new RelayHub({
      config: testConfig({ reconnectDelayMs: 1000 }),
      keys: createKeys("unit"),
      clock,
      log: silentLogger,
      metrics: new MetricsRegistry(),
      nodes,
      newRedis: () => {
        throw new Error("no redis in unit tests") as unknown as Redis;
      },
    });
    return { h, touched, clock };
  }
  const target = (nodeId: string) => ({ nodeId, host: "127.0.0.1", port: 1, token: "t" });

  test("a tick touches each active node once, however many frames", async () => {
    const { h, touched } = hub();
    const a1 = newRelayState(h, { roomCode: "room", playerId: "p1", playerName: "", target: target("n1") });
    const a2 = newRelayState(h, { roomCode: "room", playerId: "p2", playerName: "", target: target("n1") });
    const b = newRelayState(h, { roomCode: "other", playerId: "p3", playerName: "", target: target("n2") });
    const idle = newRelayState(h, { roomCode: "idle", playerId: "p4", playerName: "", target: target("n3") });
    for (const d of [a1, a2, b, idle]) h.added(d);
    for (let i = 0; i < 1000; i++) {
      a1.active = a2.active = b.active = true;
    }
    await h.tick();
    expect(touched.sort()).toEqual(["n1", "n2"]);
    await h.tick();
    expect(touched.length).toBe(2);
  });

  test("kick closes only that player's connections in that room; close event closes the room", () => {
    const { h } = hub();
    const v = newRelayState(h, { roomCode: "room", playerId: "victim", playerName: "", target: target("n1") });
    const o = newRelayState(h, { roomCode: "room", playerId: "other", playerName: "", target: target("n1") });
    const elsewhere = newRelayState(h, { roomCode: "room2", playerId: "victim", playerName: "", target: target("n1") });
    for (const d of [v, o, elsewhere]) h.added(d);
    h.onRoomEvent({ type: "kick", roomCode: "room", playerId: "victim", at: 0 });
    expect([v.closed, o.closed, elsewhere.closed]).toEqual([true, false, false]);
    expect(h.size).toBe(2);
    h.onRoomEvent({ type: "close", roomCode: "room", at: 0 });
    expect(o.closed).toBe(true);
    expect(h.size).toBe(1);
  });

  test("the reconnect reason names a delay between 1× and 1.5× RECONNECT_DELAY", () => {
    const { h } = hub();
    for (let i = 0; i < 50; i++) {
      const m = RECONNECT_AFTER_RE.exec(h.reconnectReason("node lost"));
      const ms = Number(m?.[1]);
      expect(ms).toBeGreaterThanOrEqual(1000);
      expect(ms).toBeLessThan(1500);
    }
  });

  test("frame byte counts are UTF-8 for text", () => {
    expect(frameBytes("✓")).toBe(3);
    expect(frameBytes(new Uint8Array(7))).toBe(7);
  });
});
