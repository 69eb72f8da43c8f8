import { describe, expect, test } from "bun:test";
import { backoffDelay, FleetgateClient, FleetgateError, reconnectDelayFromReason, RETRYABLE_CLOSE_CODES } from "../../sdk/client/src/index.ts";

describe("SDK pure helpers", () => {
  test.each<[string, number | undefined]>([
    ["node draining; reconnect after 1000 ms", 1000],
    ["node lost; reconnect after 1234 ms", 1234],
    ["kicked", undefined],
    ["", undefined],
  ])("reconnectDelayFromReason(%p) = %p", (reason, want) => {
    expect(reconnectDelayFromReason(reason)).toBe(want);
  });

  test.each([
    [1, 0, 125],
    [1, 1, 250],
    [2, 1, 500],
    [5, 1, 4000],
    [10, 1, 10_000],
    [10, 0, 5000],
  ])("backoffDelay(attempt %p, random %p) = %p", (attempt, r, want) => {
    expect(backoffDelay(attempt, { initialMs: 250, maxMs: 10_000 }, () => r)).toBe(want);
  });

  test("retries on drain/loss/upstream/capacity, never on auth, kick or unknown room", () => {
    for (const c of [4009, 1006, 1011, 4013]) expect(RETRYABLE_CLOSE_CODES.has(c)).toBe(true);
    for (const c of [1000, 4001, 4003, 4004, 4008, 4029, 1009]) expect(RETRYABLE_CLOSE_CODES.has(c)).toBe(false);
  });
});

describe("FleetgateClient HTTP", () => {
  function fakeFetch(handler: (path: string, init: RequestInit) => Response) {
    const calls: { path: string; auth: string | undefined; body: unknown }[] = [];
    const f = async (url: string, init: RequestInit = {}) => {
      const path = new URL(url).pathname;
      const headers = init.headers as Record<string, string>;
      calls.push({ path, auth: headers.authorization, body: init.body ? JSON.parse(String(init.body)) : undefined });
      return handler(path, init);
    };
    return { f, calls };
  }
  const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

  test("a 401 refreshes once (single-use refresh token replaced) and retries", async () => {
    let refreshed = 0;
    const { f, calls } = fakeFetch((path, init) => {
      const auth = (init.headers as Record<string, string>).authorization;
      if (path === "/v1/auth/refresh") {
        refreshed++;
        return json(200, { token: "new", refreshToken: "rt2", expiresAt: Date.now() + 600_000 });
      }
      if (auth !== "Bearer new") return json(401, { error: { code: "TOKEN_INVALID", message: "expired" } });
      return json(201, { sessionId: "s_1", playerId: "p", roomCode: "s-room", nodeId: "n", connectUrl: "ws://x/v1/connect?room=s-room", heartbeatIntervalMs: 60_000 });
    });
    const c = new FleetgateClient({ baseUrl: "http://gw.test/", token: "old", refreshToken: "rt1", fetch: f });
    const s = await c.join();
    expect(s.roomCode).toBe("s-room");
    expect(refreshed).toBe(1);
    expect(calls.map((x) => x.path)).toEqual(["/v1/players/join", "/v1/auth/refresh", "/v1/players/join"]);
    expect(calls[1]!.body).toEqual({ refreshToken: "rt1" });
    expect(c.accessToken).toBe("new");
    c.close();
  });

  test("errors surface as FleetgateError with the contract code", async () => {
    const { f } = fakeFetch(() => json(503, { error: { code: "NO_CAPACITY", message: "none" } }));
    const c = new FleetgateClient({ baseUrl: "http://gw.test", token: "t", fetch: f });
    const err = await c.join().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FleetgateError);
    expect(err).toMatchObject({ status: 503, code: "NO_CAPACITY" });
  });
});
