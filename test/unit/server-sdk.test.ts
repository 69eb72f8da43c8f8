/** The server SDK (sdk/server): env, token, X-Resume, drain input, and RoomSnapshots with a fake gateway. */
import { describe, expect, test } from "bun:test";
import { NodeEnvError, nodeRoutes, NodeTokenCheck, parseDrainRequest, requestPath, readNodeEnv, resumeAttempt, RoomSnapshots, SnapshotClient, SnapshotError } from "../../sdk/server/src/index.ts";
import { isResumableClose } from "../../gateway/ws/resume.ts";

describe("readNodeEnv", () => {
  test("defaults, and FLEETGATE_URL without its trailing slash", () => {
    expect(readNodeEnv({ NODE_ID: "n-1", NODE_TOKEN: "t", FLEETGATE_URL: "http://127.0.0.1:3000/" })).toEqual({
      nodeId: "n-1",
      port: 8081,
      host: "0.0.0.0",
      maxRooms: 100,
      maxPlayers: 1000,
      token: "t",
      drainSeconds: 5,
      roomMode: "relay",
      fleetgateUrl: "http://127.0.0.1:3000",
    });
  });
  test("every problem at once", () => {
    try {
      readNodeEnv({ PORT: "x", ROOM_MODE: "chaos", FLEETGATE_URL: "ftp://x" });
      throw new Error("no error");
    } catch (e) {
      expect(e).toBeInstanceOf(NodeEnvError);
      const p = (e as NodeEnvError).problems.join("\n");
      for (const v of ["NODE_ID", "NODE_TOKEN", "PORT", "ROOM_MODE", "FLEETGATE_URL"]) expect(p).toContain(v);
    }
  });
});

describe("token, X-Resume, drain input", () => {
  const req = (headers: Record<string, string>, body?: string) => new Request("http://n/x", { method: "POST", headers, ...(body !== undefined ? { body } : {}) });
  test("NodeTokenCheck", () => {
    const t = new NodeTokenCheck("secret");
    expect(t.allows(req({ "x-node-token": "secret" }))).toBe(true);
    expect(t.allows(req({ "x-node-token": "secreT" }))).toBe(false);
    expect(t.matches("secret ")).toBe(false);
    expect(t.allows(req({}))).toBe(false);
  });
  test("resumeAttempt", () => {
    expect(resumeAttempt(req({}))).toBeUndefined();
    expect(resumeAttempt(req({ "x-resume": "3" }))).toBe(3);
    expect(resumeAttempt(req({ "x-resume": "yes" }))).toBe(1);
  });
  test("parseDrainRequest", async () => {
    expect(await parseDrainRequest(req({}, '{"deadlineSeconds":2.5}'))).toEqual({ ok: true, deadlineSeconds: 2.5 });
    expect(await parseDrainRequest(req({}, "nope"))).toMatchObject({ ok: false, code: "BAD_JSON" });
    expect(await parseDrainRequest(req({}, '{"deadlineSeconds":-1}'))).toMatchObject({ ok: false, code: "BAD_DEADLINE" });
  });
  test("which upstream closes the gateway resumes", () => {
    const table: Array<[number, boolean]> = [[1006, true], [1001, true], [1012, true], [4009, true], [1000, false], [1011, false], [4003, false], [4004, false], [4100, false]];
    for (const [code, want] of table) expect([code, isResumableClose(code)]).toEqual([code, want]);
  });
});

describe("nodeRoutes: the contract's /health and POST /drain", () => {
  const drains: number[] = [];
  const routes = nodeRoutes({
    nodeId: "n-1",
    token: new NodeTokenCheck("tok"),
    version: "v7",
    status: () => ({ draining: drains.length > 0, rooms: 2, players: 5 }),
    drain: (s) => (drains.push(s), { first: drains.length === 1, players: 5 }),
  });
  const call = async (method: string, path: string, headers: Record<string, string> = {}, body?: string) => {
    const r = await routes(new Request(`http://n${path}`, { method, headers, ...(body !== undefined ? { body } : {}) }));
    return r ? { status: r.status, body: (await r.json()) as Record<string, unknown> } : undefined;
  };
  test("health, then drain, then health says draining", async () => {
    expect(await call("GET", "/health")).toEqual({ status: 200, body: { state: "ready", rooms: 2, players: 5, nodeId: "n-1", version: "v7" } });
    expect((await call("POST", "/health"))?.status).toBe(405);
    expect((await call("GET", "/drain"))?.status).toBe(405);
    expect((await call("POST", "/drain", {}, '{"deadlineSeconds":1}'))?.status).toBe(401);
    expect((await call("POST", "/drain", { "x-node-token": "tok" }, "{"))?.body).toMatchObject({ error: { code: "BAD_JSON" } });
    expect((await call("POST", "/drain", { "x-node-token": "tok" }, '{"deadlineSeconds":1e9}'))?.body).toMatchObject({ error: { code: "BAD_DEADLINE" } });
    expect(drains).toEqual([]);
    expect(await call("POST", "/drain", { "x-node-token": "tok" }, '{"deadlineSeconds":3}')).toEqual({ status: 202, body: { state: "draining", deadlineSeconds: 3, players: 5 } });
    expect(drains).toEqual([3]);
    expect((await call("GET", "/health"))?.body.state).toBe("draining");
    expect(await call("GET", "/rooms/abcd")).toBeUndefined();
  });
  test("requestPath: bare paths (HTTP/1.0 without Host) and full URLs", () => {
    expect(requestPath("/health")).toBe("/health");
    expect(requestPath("/health?x=1")).toBe("/health");
    expect(requestPath("http://h:1/rooms/abcd?x")).toBe("/rooms/abcd");
    expect(requestPath("::bad")).toBe("");
  });
});

/** A gateway's snapshot API in memory, behind a fetch. */
function fakeGateway(status?: number) {
  const store = new Map<string, Uint8Array>();
  const calls: string[] = [];
  const f = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = String(input);
    const room = decodeURIComponent(url.split("/rooms/")[1]!.split("/")[0]!);
    calls.push(`${init?.method ?? "GET"} ${room}`);
    if (status) return new Response("no", { status });
    if (init?.method === "PUT") {
      store.set(room, new Uint8Array(init.body as Uint8Array));
      return new Response(null, { status: 204 });
    }
    const b = store.get(room);
    return b ? new Response(new Uint8Array(b), { status: 200 }) : new Response(null, { status: 204 });
  }) as typeof fetch;
  return { store, calls, client: new SnapshotClient("http://gw", "tok", { fetch: f }) };
}

const codec = { empty: () => ({ n: 0 }), encode: (s: { n: number }) => JSON.stringify(s), decode: (b: Uint8Array) => JSON.parse(new TextDecoder().decode(b)) as { n: number } };

describe("RoomSnapshots", () => {
  test("a new room starts empty and loads nothing; a resume loads the last snapshot once", async () => {
    const g = fakeGateway();
    const a = new RoomSnapshots(g.client, codec, { intervalMs: 10 });
    expect(await a.open("room1", undefined)).toEqual({ state: { n: 0 }, resume: undefined, fromSnapshot: false });
    expect(g.calls).toEqual([]);
    a.state("room1")!.n = 41;
    a.changed("room1");
    await a.flush();
    a.stop();
    expect(g.calls).toEqual(["PUT room1"]);
    const b = new RoomSnapshots(g.client, codec, { intervalMs: 10 });
    const [x, y] = await Promise.all([b.open("room1", 1), b.open("room1", 1)]);
    expect(x).toEqual({ state: { n: 41 }, resume: 1, fromSnapshot: true });
    expect(y).toBe(x);
    expect(g.calls.filter((c) => c === "GET room1")).toHaveLength(1);
    b.stop();
  });

  test("a resume of a room that never saved starts empty; a failed load or save is reported, the state kept dirty", async () => {
    const g = fakeGateway();
    const r = new RoomSnapshots(g.client, codec);
    expect(await r.open("never", 2)).toEqual({ state: { n: 0 }, resume: 2, fromSnapshot: false });
    r.stop();
    const bad = fakeGateway(403);
    const errors: unknown[] = [];
    const s = new RoomSnapshots(bad.client, codec, { onError: (e) => errors.push(e) });
    expect((await s.open("room2", 1)).fromSnapshot).toBe(false);
    s.changed("room2");
    await s.flush();
    s.stop();
    expect(errors).toHaveLength(2);
    expect(errors[1]).toBeInstanceOf(SnapshotError);
    expect((errors[1] as SnapshotError).status).toBe(403);
    expect(s.failures).toBe(1);
  });

  test("saves at most one per interval while the state changes, the latest state wins", async () => {
    const g = fakeGateway();
    const r = new RoomSnapshots(g.client, codec, { intervalMs: 30 });
    await r.open("room3", undefined);
    for (let i = 1; i <= 50; i++) {
      r.state("room3")!.n = i;
      r.changed("room3");
      await Bun.sleep(2);
    }
    await r.flush();
    r.stop();
    const puts = g.calls.filter((c) => c === "PUT room3").length;
    expect(puts).toBeGreaterThanOrEqual(1);
    expect(puts).toBeLessThan(20);
    expect(JSON.parse(new TextDecoder().decode(g.store.get("room3")!))).toEqual({ n: 50 });
  });
});
