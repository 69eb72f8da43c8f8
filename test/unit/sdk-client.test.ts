/**
 * Client SDK, no I/O: region choice by measured round trip against a fake fetch (CONTRACT
 * "Regions"), the close-code advice table, typed errors (network, timeout, details), the
 * matchmaking wait loop's outcomes, room-code checks before any request.
 */
import { describe, expect, test } from "bun:test";
import { closeAction, FleetgateClient, FleetgateError, latencyMap, rankRegions, type CloseAction } from "../../sdk/client/src/index.ts";

type Handler = (url: URL, init: RequestInit) => Response | Promise<Response>;

function client(handler: Handler, opts: { requestTimeoutMs?: number } = {}) {
  const calls: string[] = [];
  const fetch = async (input: string, init: RequestInit = {}) => {
    const u = new URL(input);
    calls.push(`${init.method ?? "GET"} ${u.pathname}`);
    return handler(u, init);
  };
  return { c: new FleetgateClient({ baseUrl: "http://gw.test", token: "t", fetch, ...opts }), calls };
}
const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

describe("regions", () => {
  test("rankRegions: best first, unreachable last, ties by name", () => {
    const r = rankRegions([
      { name: "us", rttMs: 80, samples: [80] },
      { name: "ap", rttMs: Infinity, samples: [] },
      { name: "eu", rttMs: 20, samples: [20] },
      { name: "br", rttMs: 80, samples: [80] },
    ]);
    expect(r.map((x) => x.name)).toEqual(["eu", "br", "us", "ap"]);
    expect(latencyMap(r)).toEqual({ eu: 20, br: 80, us: 80 });
  });

  test("choose() pings every region's pingUrl, keeps the best sample, and joins use that region", async () => {
    const delays: Record<string, number> = { "/ping/eu": 40, "/ping/us": 5 };
    const { c, calls } = client(async (u, init) => {
      if (u.pathname === "/v1/regions")
        return json(200, {
          regions: [
            { name: "eu", pingUrl: "/ping/eu", nodes: 1, capacity: 8, players: 0 },
            { name: "us", pingUrl: "http://gw.test/ping/us", nodes: 1, capacity: 8, players: 0 },
            { name: "down", pingUrl: "/ping/down", nodes: 0, capacity: 0, players: 0 },
            { name: "unserved", pingUrl: null, nodes: 1, capacity: 8, players: 0 },
          ],
        });
      if (u.pathname === "/ping/down") throw new TypeError("connection refused");
      if (u.pathname.startsWith("/ping/")) {
        expect(u.searchParams.get("t")).toBeTruthy(); // cache-busting
        await Bun.sleep(delays[u.pathname]!);
        return new Response(null, { status: 204 });
      }
      if (u.pathname === "/v1/players/join") return json(201, { sessionId: "s", playerId: "p", roomCode: "r", nodeId: "n", connectUrl: "ws://x", heartbeatIntervalMs: 60_000, echo: JSON.parse(String(init.body)) });
      return json(404, { error: { code: "NOT_FOUND", message: "?" } });
    });
    const chosen = await c.regions.choose({ samples: 2 });
    expect(chosen.region).toBe("us");
    expect(chosen.measured.map((m) => m.name)).toEqual(["us", "eu", "down", "unserved"]);
    expect(chosen.measured[2]!.rttMs).toBe(Infinity);
    expect(chosen.measured[1]!.rttMs).toBeGreaterThanOrEqual(35);
    expect(Object.keys(chosen.latencies).sort()).toEqual(["eu", "us"]);
    expect(calls.filter((x) => x === "GET /ping/eu")).toHaveLength(2);
    const joined = (await c.join()) as unknown as { echo: { region?: string } };
    expect(joined.echo.region).toBe("us");
    // An explicit region wins over the measured one.
    expect(((await c.join({ region: "eu" })) as unknown as { echo: { region?: string } }).echo.region).toBe("eu");
    c.close();
  });

  test("choose() with no reachable region throws NO_REGIONS", async () => {
    const { c } = client((u) => (u.pathname === "/v1/regions" ? json(200, { regions: [{ name: "x", pingUrl: "/p" }] }) : new Response(null, { status: 503 })));
    const err = await c.regions.choose({ samples: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FleetgateError);
    expect((err as FleetgateError).code).toBe("NO_REGIONS");
  });
});

describe("close codes", () => {
  test.each<[number, CloseAction]>([
    [1000, "done"],
    [4001, "refresh-token"],
    [4003, "stop"],
    [4004, "stop"],
    [4008, "try-another-room"],
    [4009, "reconnect"],
    [4013, "retry-with-backoff"],
    [4029, "slow-down"],
    [1009, "fix-client"],
    [1011, "retry-with-backoff"],
    [1006, "retry-with-backoff"],
    [4999, "stop"],
  ])("closeAction(%p) = %p", (code, want) => {
    expect(closeAction(code)).toBe(want);
  });
});

describe("errors", () => {
  test("an unreachable gateway is NETWORK_ERROR (status 0, retryable); a slow one TIMEOUT", async () => {
    const down = client(() => {
      throw new TypeError("fetch failed");
    });
    const e1 = (await down.c.rooms.list().catch((e: unknown) => e)) as FleetgateError;
    expect([e1.status, e1.code, e1.retryable]).toEqual([0, "NETWORK_ERROR", true]);
    const slow = client(
      (_u, init) =>
        new Promise((_resolve, reject) => {
          init.signal?.addEventListener("abort", () => reject(init.signal!.reason));
        }),
      { requestTimeoutMs: 30 },
    );
    const e2 = (await slow.c.rooms.list().catch((e: unknown) => e)) as FleetgateError;
    expect([e2.status, e2.code]).toEqual([0, "TIMEOUT"]);
  });

  test("the contract's error body becomes status, code and details; a body without one is HTTP_ERROR", async () => {
    const { c } = client((u) =>
      u.pathname === "/v1/matchmaking/tickets" ? json(409, { error: { code: "ALREADY_QUEUED", message: "queued", details: { ticketId: "abc" } } }) : new Response("<html>bad gateway</html>", { status: 502 }),
    );
    const e = (await c.matchmaking.createTicket({ mode: "m" }).catch((x: unknown) => x)) as FleetgateError;
    expect([e.status, e.code, e.details, e.retryable]).toEqual([409, "ALREADY_QUEUED", { ticketId: "abc" }, false]);
    const e2 = (await c.rooms.get("ABCD").catch((x: unknown) => x)) as FleetgateError;
    expect([e2.status, e2.code, e2.retryable]).toEqual([502, "HTTP_ERROR", true]);
  });

  test("a bad room code is refused before any request", async () => {
    const { c, calls } = client(() => json(200, {}));
    for (const bad of ["abc", "has space", "x".repeat(33), "../v1/admin"]) {
      const e = (await c.rooms.join(bad).catch((x: unknown) => x)) as FleetgateError;
      expect(e.code).toBe("INVALID_ROOM_CODE");
    }
    expect(calls).toEqual([]);
  });
});

describe("waitForMatch", () => {
  test.each<[string, string]>([
    ["expired", "TICKET_EXPIRED"],
    ["cancelled", "TICKET_CANCELLED"],
  ])("a ticket that ends %p throws %p", async (status, code) => {
    let polls = 0;
    const { c } = client(() => json(200, { ticketId: "t1", status: ++polls < 3 ? "queued" : status }));
    const seen: string[] = [];
    const e = (await c.matchmaking.waitForMatch("t1", { intervalMs: 1, onProgress: (p) => seen.push(`${p.polls}:${p.status}`) }).catch((x: unknown) => x)) as FleetgateError;
    expect(e.code).toBe(code);
    expect(seen).toEqual(["1:queued", "2:queued", `3:${status}`]);
  });

  test("a blip while polling (429, network) is waited out; a run of them, or a 404, ends the wait", async () => {
    let polls = 0;
    const answers = [
      () => json(429, { error: { code: "RATE_LIMITED", message: "slow" } }),
      () => {
        throw new TypeError("reset");
      },
      () => json(200, { ticketId: "t1", status: "matched", roomCode: "ABCD", seatToken: "s", connectUrl: "ws://x" }),
    ];
    const ok = client(() => answers[polls++]!());
    expect((await ok.c.matchmaking.waitForMatch("t1", { intervalMs: 1 })).roomCode).toBe("ABCD");
    const down = client(() => json(503, { error: { code: "NO_CAPACITY", message: "x" } }));
    expect(((await down.c.matchmaking.waitForMatch("t1", { intervalMs: 1 }).catch((e: unknown) => e)) as FleetgateError).code).toBe("NO_CAPACITY");
    expect(down.calls).toHaveLength(5);
    const gone = client(() => json(404, { error: { code: "TICKET_NOT_FOUND", message: "x" } }));
    expect(((await gone.c.matchmaking.waitForMatch("t1", { intervalMs: 1 }).catch((e: unknown) => e)) as FleetgateError).code).toBe("TICKET_NOT_FOUND");
    expect(gone.calls).toHaveLength(1);
  });

  test("an aborted wait cancels the ticket and throws ABORTED", async () => {
    const { c, calls } = client((u, init) => (init.method === "DELETE" ? json(200, { ticketId: "t1", status: "cancelled" }) : json(200, { ticketId: "t1", status: "queued" })));
    const ac = new AbortController();
    const p = c.matchmaking.waitForMatch("t1", { intervalMs: 10_000, signal: ac.signal }).catch((x: unknown) => x);
    await Bun.sleep(5);
    ac.abort();
    expect(((await p) as FleetgateError).code).toBe("ABORTED");
    expect(calls).toContain("DELETE /v1/matchmaking/tickets/t1");
  });
});

describe("RoomConnection.ready", () => {
  /** A WebSocket stand-in the test drives by hand. */
  class FakeSocket {
    static last: FakeSocket | undefined;
    readyState = 0;
    binaryType = "blob";
    onopen: (() => void) | undefined;
    onclose: ((ev: { code: number; reason: string }) => void) | undefined;
    onmessage: (() => void) | undefined;
    constructor(readonly url: string) {
      FakeSocket.last = this;
    }
    send() {}
    close() {}
    open() {
      this.readyState = 1;
      this.onopen?.();
    }
    shut(code: number, reason = "") {
      this.readyState = 3;
      this.onclose?.({ code, reason });
    }
  }
  const make = () => new FleetgateClient({ baseUrl: "http://gw.test", token: "t", WebSocket: FakeSocket as unknown as typeof WebSocket, backoff: { initialMs: 1, maxMs: 1, maxAttempts: 1 } });

  test("resolves on open, at once when already open", async () => {
    const conn = make().connect("ws://gw.test/v1/connect?room=ABCD");
    await Bun.sleep(0);
    const p = conn.ready(1000);
    FakeSocket.last!.open();
    await p;
    await conn.ready(); // already open
  });

  test("a URL the WebSocket refuses ends the connection (error, close without retry)", async () => {
    class Refusing {
      constructor(url: string) {
        throw new SyntaxError(`bad url ${url}`);
      }
    }
    const fg = new FleetgateClient({ baseUrl: "http://gw.test", token: "t", WebSocket: Refusing as unknown as typeof WebSocket });
    const conn = fg.connect("http://not-a-ws-url");
    const errors: Error[] = [];
    conn.on("error", (e) => errors.push(e));
    const close = await conn.once("close");
    expect(close).toMatchObject({ code: 1006, willReconnect: false, action: "fix-client" });
    expect(errors[0]!.message).toContain("bad url");
  });

  test("rejects CLOSED_<code> on a close for good, and TIMEOUT", async () => {
    const conn = make().connect("ws://gw.test/v1/connect?room=ABCD");
    await Bun.sleep(0);
    const p = conn.ready().catch((e: unknown) => e);
    FakeSocket.last!.shut(4004, "unknown room");
    expect(((await p) as FleetgateError).code).toBe("CLOSED_4004");
    const slow = make().connect("ws://gw.test/v1/connect?room=EFGH");
    expect(((await slow.ready(20).catch((e: unknown) => e)) as FleetgateError).code).toBe("TIMEOUT");
  });
});
