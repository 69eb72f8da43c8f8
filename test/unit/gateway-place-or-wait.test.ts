import { describe, expect, test } from "bun:test";
import { FakeClock } from "../../core/clock.ts";
import { testConfig } from "../../core/config.ts";
import { createKeys } from "../../core/keys.ts";
import { silentLogger } from "../../core/log.ts";
import { MemoryNodeRegistry } from "../../model/node-registry.ts";
import type { Redis } from "../../core/redis.ts";
import type { NodeRecord, ScaleUpJob, WakeJob } from "../../core/types.ts";
import { MemoryPlacement } from "../../model/placement/memory-placement.ts";
import { NodeChangeWaiter } from "../../gateway/players/node-events.ts";
import { placeOrWait } from "../../gateway/ws/place-or-wait.ts";
import type { SchedulerClient } from "../../model/jobs.ts";
import { makeNode } from "../support/nodes.ts";

/** The only Redis call placeOrWait makes itself: the room's previous node. */
function fakeRedis(roomNode: Map<string, string>): Redis {
  return { get: async (k: string) => roomNode.get(k) ?? null } as unknown as Redis;
}

async function setup(nodes: NodeRecord[], opts: { maxServers?: number; previous?: string } = {}) {
  const clock = new FakeClock();
  const reg = new MemoryNodeRegistry();
  for (const n of nodes) await reg.create(n, clock.now());
  const keys = createKeys("unit");
  const roomNode = new Map<string, string>();
  if (opts.previous) roomNode.set(keys.roomNode("room-1"), opts.previous);
  const scaleUps: ScaleUpJob[] = [];
  const wakes: WakeJob[] = [];
  const scheduler: SchedulerClient = {
    requestScaleUp: async (j) => void scaleUps.push(j),
    requestWake: async (j) => void wakes.push(j),
    requestDrain: async () => {},
    requestRollout: async () => {},
    requestRestart: async () => {},
    queuedJobs: async () => ({}),
  };
  const deps = {
    placement: new MemoryPlacement(reg),
    nodes: reg,
    scheduler,
    redis: fakeRedis(roomNode),
    keys,
    clock,
    config: testConfig({ joinWaitTimeoutMs: 1000, maxServers: opts.maxServers ?? 10 }),
    log: silentLogger,
  };
  return { deps, reg, clock, scaleUps, wakes, waiter: new NodeChangeWaiter(reg, clock) };
}

/** Runs placeOrWait while moving the fake clock until it settles. */
async function run(s: Awaited<ReturnType<typeof setup>>, during?: () => Promise<void>): Promise<NodeRecord | undefined> {
  const p = placeOrWait(s.deps, s.waiter, "room-1", undefined);
  let settled = false;
  void p.then(() => (settled = true));
  for (let i = 0; i < 40 && !settled; i++) {
    await s.clock.advanceAsync(100);
    if (i === 2) await during?.();
  }
  if (!settled) throw new Error("placeOrWait did not settle within 4 s of fake time");
  return p;
}

describe("placeOrWait", () => {
  test("a ready node: placed at once, nothing asked", async () => {
    const s = await setup([makeNode({ id: "a" })]);
    expect(await run(s)).toMatchObject({ id: "a" });
    expect([s.scaleUps.length, s.wakes.length]).toEqual([0, 0]);
  });

  test("no node: one scale-up with a deterministic id, then undefined past the bound", async () => {
    const s = await setup([]);
    expect(await run(s)).toBeUndefined();
    expect(s.scaleUps).toEqual([{ count: 1, region: "local", reason: "connect: no node for the room", requestId: "connect-room-1-new" }]);
  });

  test("the room's node was stopped: it is woken (not a new node), and used once ready", async () => {
    const s = await setup([makeNode({ id: "sleepy", state: "stopped", stoppedAt: 77 })], { previous: "sleepy" });
    const r = await run(s, async () => {
      await s.reg.transition("sleepy", "starting", s.clock.now());
      await s.reg.transition("sleepy", "ready", s.clock.now());
    });
    expect(s.wakes).toEqual([{ nodeId: "sleepy", requestId: "connect-room-1-77" }]);
    expect(s.scaleUps).toEqual([]);
    expect(r).toMatchObject({ id: "sleepy", state: "ready" });
  });

  test("at MAX_SERVERS nothing is asked", async () => {
    const s = await setup([makeNode({ id: "full", capacity: 1, maxRooms: 1 })], { maxServers: 1 });
    await s.deps.placement.placeRoom("other-room", { now: 0 });
    expect(await run(s)).toBeUndefined();
    expect(s.scaleUps).toEqual([]);
  });

  test("a node coming up during the wait is used", async () => {
    const s = await setup([]);
    const r = await run(s, async () => void (await s.reg.create(makeNode({ id: "fresh" }), s.clock.now())));
    expect(r).toMatchObject({ id: "fresh" });
  });
});
