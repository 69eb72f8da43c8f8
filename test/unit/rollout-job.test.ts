/**
 * The rollout job on in-memory fakes (MemoryNodeRegistry, MemoryRolloutStore, FakeDriver, fake
 * clock): a rollout replaces every old node surge by surge without a dip in ready nodes and ends
 * `succeeded`; new nodes that never get ready roll it back; a cancel drains the new nodes; a restart
 * has its replacement ready before the node drains.
 */
import { describe, expect, test } from "bun:test";
import type { DrainJob, FleetVersion } from "../../core/types.ts";
import { processAutoscaleTick } from "../../scheduler/jobs/autoscale.ts";
import { processDrain } from "../../scheduler/jobs/drain.ts";
import { processRestart, processRollout } from "../../scheduler/jobs/rollout.ts";
import { processScaleUp } from "../../scheduler/jobs/scale-up.ts";
import { processWake } from "../../scheduler/jobs/wake.ts";
import { T0 } from "../support/scheduler-fixtures.ts";
import { driveClock, fakeJob, memoryScheduler, type MemoryScheduler } from "../support/scheduler-harness.ts";

const V1: FleetVersion = { version: "v1", image: "img:v1" };

/** A scheduler whose drain requests run as drain jobs (in the background, on the fake clock). */
function withDrains(m: MemoryScheduler): Promise<unknown>[] {
  const running: Promise<unknown>[] = [];
  m.ctx.requests.drain = async (j: DrainJob) => {
    m.asked.drain.push(j);
    running.push(processDrain(fakeJob(j, { timestamp: m.clock.now() }), m.ctx));
  };
  return running;
}

async function begin(m: MemoryScheduler, over: { canaryPercent?: number; maxSurge?: number; image?: string } = {}) {
  const old = (await m.registry.list()).filter((n) => n.state === "ready").map((n) => n.id);
  const r = await m.rollouts.begin({ id: "r1", version: "v2", image: over.image ?? "img:v2", env: {}, canaryPercent: over.canaryPercent ?? 100, maxSurge: over.maxSurge ?? 1, drainDeadlineMs: 5_000, startedAt: m.clock.now(), oldNodes: old, by: "test" });
  expect(r.ok).toBe(true);
}

describe("rollout job", () => {
  test("rolls 3 v1 nodes to v2 one at a time: never fewer than 3 ready, old nodes drained and deleted, succeeded", async () => {
    const m = memoryScheduler({ nodeImage: "img:v1", maxServers: 10 });
    await processScaleUp(fakeJob({ count: 3, region: "local", reason: "t", requestId: "seed", version: V1 }), m.ctx);
    const drains = withDrains(m);
    await begin(m);
    let minReady = Infinity;
    let maxStarting = 0;
    const unsub = await m.registry.subscribe(() => {
      void m.registry.list().then((ns) => {
        minReady = Math.min(minReady, ns.filter((n) => n.state === "ready").length);
        maxStarting = Math.max(maxStarting, ns.filter((n) => n.state === "starting").length);
      });
    });
    const res = await driveClock(m.clock, processRollout(fakeJob({ rolloutId: "r1" }), m.ctx), 50);
    await Promise.all(drains);
    await unsub();
    expect(res.state).toBe("succeeded");
    const nodes = await m.registry.list();
    expect(nodes.map((n) => n.version)).toEqual(["v2", "v2", "v2"]);
    expect(nodes.every((n) => n.state === "ready")).toBe(true);
    expect(minReady).toBeGreaterThanOrEqual(3);
    expect(maxStarting).toBeLessThanOrEqual(1); // maxSurge 1
    expect(m.asked.drain.length).toBe(3);
    // New nodes ran the new image.
    for (const n of nodes) expect(m.driver.specOf(n.id)?.image).toBe("img:v2");
    const routing = await m.rollouts.routing();
    expect(routing.active.version).toBe("v2");
    expect(routing.target).toBeUndefined();
    const events = (await m.rollouts.events("r1")).map((e) => e.event);
    expect(events.filter((e) => e === "new node ready").length).toBe(3);
    expect(events.filter((e) => e === "old node draining").length).toBe(3);
    expect(events.filter((e) => e === "old node retired").length).toBe(3);
    expect(events.at(-1)).toBe("succeeded");
  });

  test("new nodes that never get ready: ROLLOUT_FAILURE_LIMIT failures roll back; the old version keeps serving", async () => {
    const m = memoryScheduler({ nodeImage: "img:v1", maxServers: 10, rolloutFailureLimit: 3, nodeStartTimeoutMs: 1_000 });
    await processScaleUp(fakeJob({ count: 2, region: "local", reason: "t", requestId: "seed", version: V1 }), m.ctx);
    withDrains(m);
    m.driver.neverReady({ count: 10 });
    await begin(m);
    const res = await driveClock(m.clock, processRollout(fakeJob({ rolloutId: "r1" }), m.ctx), 50);
    expect(res.state).toBe("rolled_back");
    expect(res.reason).toMatch(/3 new node\(s\) of v2 failed to get ready/);
    const r = await m.rollouts.get("r1");
    expect(r?.failures).toBe(3);
    const nodes = await m.registry.list();
    expect(nodes.map((n) => `${n.version}:${n.state}`)).toEqual(["v1:ready", "v1:ready"]);
    expect(m.asked.drain).toEqual([]); // no old node was drained
    const routing = await m.rollouts.routing();
    expect(routing.active.version).toBe("v1");
    expect(routing.target).toBeUndefined();
  });

  test("cancel: the new nodes are drained, the old version stays active", async () => {
    const m = memoryScheduler({ nodeImage: "img:v1", maxServers: 10 });
    await processScaleUp(fakeJob({ count: 2, region: "local", reason: "t", requestId: "seed", version: V1 }), m.ctx);
    withDrains(m);
    await begin(m, { canaryPercent: 50 });
    const run = processRollout(fakeJob({ rolloutId: "r1" }), m.ctx);
    // Let the canary node come up, then cancel.
    for (let i = 0; i < 100 && (await m.registry.list()).filter((n) => n.version === "v2" && n.state === "ready").length === 0; i++) await m.clock.advanceAsync(50);
    expect(await m.rollouts.finish("r1", "cancelled", "by test", m.clock.now())).toBe(true);
    const res = await driveClock(m.clock, run, 50);
    expect(res.state).toBe("cancelled");
    await driveClock(m.clock, Promise.all(m.asked.drain.map(() => Bun.sleep(0))), 50);
    expect(m.asked.drain.map((d) => d.nodeId).length).toBe(1);
    expect((await m.rollouts.routing()).active.version).toBe("v1");
  });

  test("restart: the replacement of the same version is ready before the node drains", async () => {
    const m = memoryScheduler({ nodeImage: "img:v1", maxServers: 10 });
    await processScaleUp(fakeJob({ count: 1, region: "local", reason: "t", requestId: "seed", version: V1 }), m.ctx);
    const [node] = await m.registry.list();
    const res = await driveClock(m.clock, processRestart(fakeJob({ nodeId: node!.id, deadlineMs: 1_000, reason: "test" }, { timestamp: T0 }), m.ctx), 50);
    const repl = await m.registry.get(res.replacement);
    expect(repl?.state).toBe("ready");
    expect(repl?.version).toBe("v1");
    expect(m.asked.drain).toEqual([{ nodeId: node!.id, deadlineMs: 1_000, reason: "test" }]);
  });

  test("the autoscaler drains no surplus while a rollout runs (the rollout retires nodes itself)", async () => {
    const m = memoryScheduler({ nodeImage: "img:v1", maxServers: 10, scaleDownCooldownMs: 1_000 });
    await processScaleUp(fakeJob({ count: 3, region: "local", reason: "t", requestId: "seed", version: V1 }), m.ctx);
    m.clock.advance(60_000);
    await begin(m);
    expect(await processAutoscaleTick(m.ctx)).toMatchObject({ action: "none", reason: "a rollout is running: no scale-down until it ends" });
    expect(m.asked.drain).toEqual([]);
    await m.rollouts.finish("r1", "cancelled", "t", m.clock.now());
    expect(await processAutoscaleTick(m.ctx)).toMatchObject({ action: "down" });
  });

  test("at MAX_SERVERS a rollout cannot surge: it retires one old node at a time and still succeeds, counting no failure", async () => {
    const m = memoryScheduler({ nodeImage: "img:v1", maxServers: 2 });
    await processScaleUp(fakeJob({ count: 2, region: "local", reason: "t", requestId: "seed", version: V1 }), m.ctx);
    const drains = withDrains(m);
    await begin(m);
    const res = await driveClock(m.clock, processRollout(fakeJob({ rolloutId: "r1" }), m.ctx), 50);
    await Promise.all(drains);
    expect(res.state).toBe("succeeded");
    expect((await m.registry.list()).map((n) => `${n.version}:${n.state}`)).toEqual(["v2:ready", "v2:ready"]);
    expect((await m.rollouts.get("r1"))?.failures).toBe(0);
    expect((await m.rollouts.events("r1")).some((e) => e.event === "no slot for a new node")).toBe(true);
  });

  test("a version's image and env reach the node, and a woken node keeps them", async () => {
    const m = memoryScheduler({ nodeImage: "img:v1" });
    const version = { version: "v9", image: "img:v9", env: { GAME_MODE: "ranked" } };
    await processScaleUp(fakeJob({ count: 1, region: "local", reason: "t", requestId: "env", version }), m.ctx);
    const [n] = await m.registry.list();
    expect(n).toMatchObject({ version: "v9", image: "img:v9", versionEnv: JSON.stringify({ GAME_MODE: "ranked" }) });
    expect(m.driver.specOf(n!.id)).toMatchObject({ image: "img:v9", env: { GAME_MODE: "ranked" } });
    await m.ctx.lifecycle.stop(n!.id, { from: ["ready"], reason: "idle" });
    await driveClock(m.clock, processWake(fakeJob({ nodeId: n!.id, requestId: "w" }), m.ctx), 25);
    expect((await m.registry.get(n!.id))?.state).toBe("ready");
    expect(m.driver.specOf(n!.id)).toMatchObject({ image: "img:v9", env: { GAME_MODE: "ranked" } });
  });
});
