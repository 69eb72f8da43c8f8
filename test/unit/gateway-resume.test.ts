/**
 * The resume coordinator's decisions on a fake clock, with in-memory registry and placement and a
 * fake node probe: which closes resume, where the room goes (same node, another node, none), the
 * RESUME_TIMEOUT and RESUME_BUFFER_BYTES bounds, and the backoff of failed dials.
 */
import { describe, expect, test } from "bun:test";
import { FakeClock } from "../../core/clock.ts";
import { testConfig, type Config } from "../../core/config.ts";
import { silentLogger } from "../../core/log.ts";
import type { NodeRecord } from "../../core/types.ts";
import { MemoryNodeRegistry } from "../../model/node-registry.ts";
import { MemoryPlacement } from "../../model/placement/memory-placement.ts";
import type { RoomResume } from "../../model/room-resume.ts";
import type { ScaleUpJob } from "../../core/types.ts";
import type { SchedulerClient } from "../../model/jobs.ts";
import { newRelayState, type RelayOwner, type RelayState } from "../../gateway/ws/relay.ts";
import { ResumeCoordinator, type HealthProbe } from "../../gateway/ws/resume.ts";
import { makeNode } from "../support/nodes.ts";

interface Harness {
  clock: FakeClock;
  nodes: MemoryNodeRegistry;
  placement: MemoryPlacement;
  coordinator: ResumeCoordinator;
  dials: Array<{ nodeId: string; resume: number; at: number }>;
  marked: string[];
  scaleUps: ScaleUpJob[];
  conn(room?: string): { d: RelayState; client: FakeClient };
  /** Lets the coordinator's awaits run (in-memory stores answer on microtasks). */
  settle(): Promise<void>;
}

interface FakeClient {
  closed: { code: number; reason: string } | undefined;
  paused: number;
  resumed: number;
  sent: string[];
}

async function harness(opts: { config?: Partial<Config>; probe?: HealthProbe; nodes?: Array<Partial<NodeRecord> & { id: string }> } = {}): Promise<Harness> {
  const clock = new FakeClock();
  const config = testConfig({ resumeTimeoutMs: 2000, resumeBufferBytes: 1000, maxFrameBytes: 500, upstreamConnectTimeoutMs: 1000, ...opts.config });
  const nodes = new MemoryNodeRegistry();
  for (const n of opts.nodes ?? [{ id: "a" }, { id: "b" }]) await nodes.create(makeNode({ capacity: 100, maxRooms: 100, ...n }), clock.now());
  const placement = new MemoryPlacement(nodes);
  const marked: string[] = [];
  const rooms: RoomResume = {
    leave: (code, from) => placement.release(code, from, ""),
    async markLost(id) {
      const n = await nodes.get(id);
      if (!n || (n.state !== "ready" && n.state !== "draining")) return false;
      await nodes.transition(id, "unhealthy", clock.now());
      marked.push(id);
      return true;
    },
    nextResume: async () => 1,
  };
  const scaleUps: ScaleUpJob[] = [];
  const scheduler = { requestScaleUp: async (j: ScaleUpJob) => void scaleUps.push(j) } as Pick<SchedulerClient, "requestScaleUp"> as SchedulerClient;
  const dials: Harness["dials"] = [];
  const coordinator = new ResumeCoordinator(
    { config, clock, log: silentLogger, nodes, placement, rooms, scheduler, waitForNodes: (ms) => clock.sleep(ms), probe: opts.probe ?? (async () => undefined) },
    (d, node, resume) => void dials.push({ nodeId: node.id, resume, at: clock.now() }),
  );
  // Only what the relay's close path and the coordinator touch of an owner (a test double).
  const owner = { resumer: coordinator, removed() {}, added() {}, reconnectReason: (why: string) => `${why}; reconnect after 100 ms`, now: () => clock.now(), rateLimits: { rate: 1000, burst: 2000, graceMs: 5000 } } as unknown as RelayOwner;
  const settle = async () => {
    for (let i = 0; i < 50; i++) await Promise.resolve();
  };
  return {
    clock,
    nodes,
    placement,
    coordinator,
    dials,
    marked,
    scaleUps,
    settle,
    conn(room = "room-1") {
      const client: FakeClient = { closed: undefined, paused: 0, resumed: 0, sent: [] };
      const d = newRelayState(owner, { roomCode: room, playerId: "p1", playerName: "p1", target: { nodeId: "a", host: "127.0.0.1", port: 1, token: "t" } });
      d.client = {
        close: (code: number, reason: string) => void (client.closed = { code, reason }),
        pause: () => void client.paused++,
        resume: () => void client.resumed++,
        send: (m: string) => (client.sent.push(m), m.length),
        getBufferedAmount: () => 0,
      } as unknown as RelayState["client"];
      return { d, client };
    },
  };
}

/** Places the room on node `a` (as the connect route did). */
async function onA(h: Harness, room = "room-1"): Promise<void> {
  const b = await h.nodes.get("b");
  if (b) await h.nodes.transition("b", "draining", h.clock.now());
  expect((await h.placement.placeRoom(room, { now: h.clock.now() })).id).toBe("a");
  if (b) await h.nodes.transition("b", "ready", h.clock.now());
}

describe("ResumeCoordinator", () => {
  const closes: Array<[string, number, boolean]> = [
    ["no close frame (1006)", 1006, true],
    ["going away (1001)", 1001, true],
    ["service restart (1012)", 1012, true],
    ["drain deadline (4009)", 4009, true],
    ["normal close (1000)", 1000, false],
    ["kicked (4003)", 4003, false],
    ["room closed (4004)", 4004, false],
    ["internal error (1011)", 1011, false],
    ["the node's own code (4100)", 4100, false],
  ];
  for (const [what, code, resumes] of closes) {
    test(`${what}: ${resumes ? "resumed" : "passed on"}`, async () => {
      const h = await harness();
      await onA(h);
      const { d } = h.conn();
      expect(h.coordinator.begin(d, code, "")).toBe(resumes);
      expect(d.resume !== undefined).toBe(resumes);
      h.coordinator.cancel(d);
    });
  }

  test("RESUME=false: nothing is resumed", async () => {
    const h = await harness({ config: { resume: false } });
    await onA(h);
    expect(h.coordinator.begin(h.conn().d, 1006, "")).toBe(false);
  });

  test("an unreachable node: taken out of placement, the room placed on another node and dialled with X-Resume", async () => {
    const h = await harness();
    await onA(h);
    const { d, client } = h.conn();
    h.coordinator.begin(d, 1006, "");
    await h.settle();
    expect(h.marked).toEqual(["a"]);
    expect(h.scaleUps.map((j) => j.requestId)).toEqual(["replace-a-lost"]);
    expect(h.dials).toEqual([{ nodeId: "b", resume: 1, at: h.clock.now() }]);
    expect((await h.placement.nodeForRoom("room-1"))?.id).toBe("b");
    h.coordinator.resumed(d);
    expect(d.resume).toBeUndefined();
    expect(client.closed).toBeUndefined();
  });

  test("a node that still answers ready after a dropped connection keeps the room (dialled again)", async () => {
    const h = await harness({ probe: async () => ({ state: "ready", nodeId: "a" }) });
    await onA(h);
    const { d } = h.conn();
    h.coordinator.begin(d, 1006, "");
    await h.settle();
    expect(h.marked).toEqual([]);
    expect(h.dials.map((x) => x.nodeId)).toEqual(["a"]);
  });

  test("a node the registry has draining (or gave up) is left even if it still answers ready", async () => {
    const h = await harness({ probe: async () => ({ state: "ready", nodeId: "a" }) });
    await onA(h);
    await h.nodes.transition("a", "draining", h.clock.now());
    const { d } = h.conn();
    h.coordinator.lose(d, "next match moves to a node that takes new rooms");
    await h.settle();
    expect(h.marked).toEqual([]);
    expect(h.dials.map((x) => x.nodeId)).toEqual(["b"]);
  });

  test("a draining node that closed its players 4009 is left (not marked lost) and the room moves", async () => {
    const h = await harness({ probe: async () => ({ state: "draining", nodeId: "a" }) });
    await onA(h);
    await h.nodes.transition("a", "draining", h.clock.now());
    const { d } = h.conn();
    h.coordinator.begin(d, 4009, "node draining; reconnect after 1000 ms");
    await h.settle();
    expect(h.marked).toEqual([]);
    expect(h.dials.map((x) => x.nodeId)).toEqual(["b"]);
  });

  test("players of one room on this gateway share one lookup and land on one node", async () => {
    const h = await harness({ nodes: [{ id: "a" }, { id: "b" }, { id: "c" }, { id: "d" }] });
    for (const id of ["b", "c", "d"]) await h.nodes.transition(id, "draining", h.clock.now());
    expect((await h.placement.placeRoom("room-1", { now: h.clock.now() })).id).toBe("a");
    for (const id of ["b", "c", "d"]) await h.nodes.transition(id, "ready", h.clock.now());
    const conns = Array.from({ length: 8 }, () => h.conn());
    for (const { d } of conns) h.coordinator.begin(d, 1006, "");
    await h.settle();
    expect(h.dials).toHaveLength(8);
    expect(new Set(h.dials.map((x) => x.nodeId)).size).toBe(1);
  });

  test("no node takes the room: 4009 exactly at RESUME_TIMEOUT, a scale-up asked once", async () => {
    const h = await harness({ nodes: [{ id: "a" }] });
    await onA(h);
    const { d, client } = h.conn();
    h.coordinator.begin(d, 1006, "");
    await h.settle(); // the lookup reaches its wait for a node
    expect(h.scaleUps.map((j) => j.requestId)).toEqual(["replace-a-lost", "resume-room-1-a"]);
    await h.clock.advanceAsync(1999);
    expect(client.closed).toBeUndefined();
    await h.clock.advanceAsync(1);
    expect(client.closed?.code).toBe(4009);
    expect(client.closed?.reason).toMatch(/reconnect after \d+ ms/);
    expect(h.scaleUps.filter((j) => j.requestId.startsWith("resume-"))).toHaveLength(1);
    expect(h.coordinator.stats.failed).toBe(1);
  });

  test("held bytes: past RESUME_BUFFER_BYTES the client is paused (nothing dropped), past twice it 4009", async () => {
    const h = await harness({ nodes: [{ id: "a" }] });
    await onA(h);
    const { d, client } = h.conn();
    h.coordinator.begin(d, 1006, "");
    const hold = (n: number) => {
      (d.pending ??= []).push("x".repeat(n));
      d.pendingBytes += n;
      h.coordinator.held(d);
    };
    hold(600);
    expect(client.paused).toBe(0);
    hold(500); // 1100 > 1000
    expect(client.paused).toBe(1);
    expect(d.pending).toHaveLength(2);
    hold(500);
    hold(500); // 2100 > 2000
    expect(client.closed?.code).toBe(4009);
    expect(client.closed?.reason).toMatch(/too much data held/);
  });

  test("a paused client is resumed when the room is back", async () => {
    const h = await harness();
    await onA(h);
    const { d, client } = h.conn();
    h.coordinator.begin(d, 1006, "");
    (d.pending ??= []).push("x".repeat(1100));
    d.pendingBytes = 1100;
    h.coordinator.held(d);
    await h.settle();
    h.coordinator.resumed(d);
    expect(client.resumed).toBe(1);
  });

  test("failed dials are retried with a growing backoff, each as the loss of the node dialled", async () => {
    const h = await harness({ nodes: [{ id: "a", port: 1 }, { id: "b", port: 2 }], probe: async (n) => (n.port === 2 ? { state: "ready", nodeId: "b" } : undefined) });
    await onA(h);
    const { d } = h.conn();
    h.coordinator.begin(d, 1006, "");
    await h.settle();
    expect(h.dials.map((x) => x.nodeId)).toEqual(["b"]);
    const t0 = h.clock.now();
    // The dial to b fails: b answers ready to the probe, so it is dialled again after 50 ms, then 100 ms.
    h.coordinator.begin(d, 1006, "refused");
    await h.clock.advanceAsync(49);
    expect(h.dials).toHaveLength(1);
    await h.clock.advanceAsync(1);
    await h.settle();
    expect(h.dials).toHaveLength(2);
    expect(h.dials[1]!.at - t0).toBe(50);
    h.coordinator.begin(d, 1006, "refused");
    await h.clock.advanceAsync(100);
    await h.settle();
    expect(h.dials).toHaveLength(3);
    h.coordinator.cancel(d);
  });

  test("a dial that neither opens nor fails is given up after UPSTREAM_CONNECT_TIMEOUT and looked up again", async () => {
    const h = await harness({ nodes: [{ id: "a", port: 1 }, { id: "b", port: 2 }], probe: async (n) => (n.port === 2 ? { state: "ready", nodeId: "b" } : undefined) });
    await onA(h);
    const { d } = h.conn();
    h.coordinator.begin(d, 1006, "");
    await h.settle();
    expect(h.dials).toHaveLength(1);
    await h.clock.advanceAsync(999);
    await h.settle();
    expect(h.dials).toHaveLength(1);
    await h.clock.advanceAsync(1); // the dial is given up ...
    await h.clock.advanceAsync(50); // ... and after the first backoff b is dialled again
    await h.settle();
    expect(h.dials.map((x) => x.nodeId)).toEqual(["b", "b"]);
    h.coordinator.cancel(d);
  });
});
