import { afterAll, describe, expect, test } from "bun:test";
import { FakeClock } from "../../core/clock.ts";
import { FakeDriver } from "../support/fake-driver.ts";
import { DriverError, type NodeSpec } from "../../scheduler/drivers/driver.ts";
import { runDriverConformance } from "../support/driver-conformance.ts";
import { connectPlayer, getHealth } from "../support/node-harness.ts";

runDriverConformance("fake (in-process node servers)", () => new FakeDriver(), { readyTimeoutMs: 1000 });

const spec = (nodeId: string, over: Partial<NodeSpec> = {}): NodeSpec => ({
  nodeId,
  port: 9999,
  token: "t",
  maxRooms: 1,
  maxPlayers: 1,
  drainSeconds: 0.1,
  roomMode: "relay",
  ...over,
});

describe("FakeDriver failure knobs", () => {
  const fake = new FakeDriver();
  afterAll(() => fake.close());

  test("failNextStart throws once, queued failures in order, then starts work", async () => {
    fake.failNextStart();
    fake.failNextStart(new DriverError("bad image", false));
    const e1 = await fake.start(spec("k1")).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(DriverError);
    expect((e1 as DriverError).retryable).toBe(true);
    const e2 = await fake.start(spec("k1")).catch((e: unknown) => e);
    expect((e2 as DriverError).retryable).toBe(false);
    const h = await fake.start(spec("k1"));
    expect(await getHealth(h)).toMatchObject({ state: "ready" });
    expect(fake.calls.filter((c) => c.op === "start" && c.nodeId === "k1").length).toBe(3);
  });

  test("neverReady: the node runs but /health never answers", async () => {
    fake.neverReady({ nodeId: "k2" });
    fake.neverReady({ count: 1 });
    const h2 = await fake.start(spec("k2"));
    const h3 = await fake.start(spec("k3"));
    const h4 = await fake.start(spec("k4"));
    expect(await getHealth(h2, 200)).toBeUndefined();
    expect(await getHealth(h3, 200)).toBeUndefined();
    expect(fake.healthOf("k2")).toBeUndefined();
    expect(await getHealth(h4, 200)).toMatchObject({ state: "ready" });
    expect((await fake.inspect("k2"))?.running).toBe(true);
  });

  test("crash: the node dies with the given exit code and stops answering", async () => {
    const h = await fake.start(spec("k5"));
    await fake.crash("k5", 139);
    expect(await fake.inspect("k5")).toMatchObject({ running: false, exitCode: 139 });
    expect(await getHealth(h, 200)).toBeUndefined();
    expect(await fake.logs("k5")).toContain("crashed with exit code 139");
  });
});

describe("FakeDriver without servers (pure records)", () => {
  test("start/stop/remove move records; healthOf stands in for /health; spec port kept", async () => {
    const fake = new FakeDriver({ servers: false });
    const h = await fake.start(spec("r1", { port: 8123 }));
    expect(h.port).toBe(8123);
    expect(fake.healthOf("r1")).toEqual({ state: "ready", rooms: 0, players: 0, nodeId: "r1" });
    expect((await fake.start(spec("r1"))).ref).toBe(h.ref);
    await fake.stop("r1", 1000);
    expect(await fake.inspect("r1")).toMatchObject({ running: false, exitCode: 0 });
    expect(fake.healthOf("r1")).toBeUndefined();
    const woke = await fake.start(spec("r1"));
    expect(woke.ref).not.toBe(h.ref);
    await fake.remove("r1");
    expect(await fake.list()).toEqual([]);
    expect(fake.calls.map((c) => c.op)).toEqual(["start", "start", "stop", "start", "remove"]);
  });
});

describe("FakeDriver with a FakeClock", () => {
  const clock = new FakeClock();
  const fake = new FakeDriver({ clock });
  afterAll(() => fake.close());
  const s = (nodeId: string) => spec(nodeId, { drainSeconds: 10, maxPlayers: 5, maxRooms: 5 });

  test("a stop grace shorter than the drain kills the node (exit 137) when the clock says so", async () => {
    const h = await fake.start(s("fc1"));
    const p = await connectPlayer(h, "room-fc", { token: "t", playerId: "a" });
    const stopping = fake.stop("fc1", 2000);
    expect(fake.healthOf("fc1")?.state).toBe("draining");
    await clock.advanceAsync(2000);
    await stopping;
    expect(await fake.inspect("fc1")).toMatchObject({ running: false, exitCode: 137 });
    expect((await p.closed).code).not.toBe(4009);
  });

  test("a grace longer than the drain: 4009 at the drain deadline, exit 0", async () => {
    const h = await fake.start(s("fc2"));
    const p = await connectPlayer(h, "room-fc", { token: "t", playerId: "a" });
    const stopping = fake.stop("fc2", 20_000);
    await clock.advanceAsync(9_999);
    expect(p.ws.readyState).toBe(WebSocket.OPEN);
    await clock.advanceAsync(1);
    expect((await p.closed).code).toBe(4009);
    await stopping;
    expect(await fake.inspect("fc2")).toMatchObject({ running: false, exitCode: 0 });
  });
});
