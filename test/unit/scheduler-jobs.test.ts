import { describe, expect, test } from "bun:test";
import { UnrecoverableError } from "bullmq";
import { DriverError } from "../../scheduler/drivers/driver.ts";
import { nodeIdFor } from "../../scheduler/fleet/node-lifecycle.ts";
import { processAutoscaleTick } from "../../scheduler/jobs/autoscale.ts";
import { processDrain } from "../../scheduler/jobs/drain.ts";
import { processHealthTick } from "../../scheduler/jobs/health.ts";
import { processReapNode, processReapSweep } from "../../scheduler/jobs/reap.ts";
import { processScaleUp } from "../../scheduler/jobs/scale-up.ts";
import { processWake } from "../../scheduler/jobs/wake.ts";
import type { ReapNodeJob } from "../../model/jobs.ts";
import { T0, nodeRec } from "../support/scheduler-fixtures.ts";
import { driveClock, fakeJob, memoryScheduler } from "../support/scheduler-harness.ts";

const scaleUp = (count: number, requestId = "req-1") => fakeJob({ count, region: "local", reason: "test", requestId });

describe("scale-up job", () => {
  test("starts N nodes to ready with distinct ports and tokens, and reports progress", async () => {
    const m = memoryScheduler();
    const job = scaleUp(3);
    const r = await processScaleUp(job, m.ctx);
    expect(r.started.sort()).toEqual([0, 1, 2].map((i) => nodeIdFor("req-1", i)).sort());
    const nodes = await m.registry.list();
    expect(nodes.map((n) => n.state)).toEqual(["ready", "ready", "ready"]);
    expect(new Set(nodes.map((n) => n.port)).size).toBe(3);
    expect(new Set(nodes.map((n) => n.token)).size).toBe(3);
    for (const n of nodes) {
      expect(n.lastActivityAt).toBe(T0); // a fresh node counts inactivity from ready
      expect(n.requestId).toBe("req-1");
      expect(m.driver.specOf(n.id)?.token).toBe(n.token);
    }
    expect(job.progress.at(-1)).toEqual({ ready: 3, of: 3 });
    expect(m.events.map((e) => e.action)).toEqual(["up"]);
  });

  test("the same request twice starts its nodes once", async () => {
    const m = memoryScheduler();
    await processScaleUp(scaleUp(2), m.ctx);
    const again = await processScaleUp(scaleUp(2), m.ctx);
    expect(again.started).toEqual([]);
    expect(again.existing.length).toBe(2);
    expect(m.driver.calls.filter((c) => c.op === "start").length).toBe(2);
  });

  test("two workers on one request at once (a lapsed lock): one node, both succeed, none failed", async () => {
    const m = memoryScheduler();
    const [a, b] = await Promise.all([processScaleUp(scaleUp(1), m.ctx), processScaleUp(scaleUp(1), m.ctx)]);
    expect([...a.started, ...a.existing, ...b.started, ...b.existing].length).toBe(2);
    const nodes = await m.registry.list();
    expect(nodes.map((n) => n.state)).toEqual(["ready"]);
    expect(m.driver.calls.filter((c) => c.op === "remove")).toEqual([]);
  });

  test("never above MAX_SERVERS: the rest is refused, not retried", async () => {
    const m = memoryScheduler({ maxServers: 2 });
    const r = await processScaleUp(scaleUp(4), m.ctx);
    expect(r.started.length).toBe(2);
    expect(r.refused).toBe(2);
    expect(r.refusedReason).toMatch(/MAX_SERVERS=2/);
    expect((await m.registry.list()).length).toBe(2);
    expect(m.events.some((e) => e.action === "refused")).toBe(true);
  });

  test("a failed start is cleaned up (record, instance, port) and the job throws to retry; the retry succeeds", async () => {
    const m = memoryScheduler();
    m.driver.failNextStart();
    await expect(processScaleUp(scaleUp(1), m.ctx)).rejects.toThrow(/failed to start/);
    expect(await m.registry.list()).toEqual([]);
    expect(m.ports.held().size).toBe(0);
    const r = await processScaleUp(scaleUp(1), m.ctx);
    expect(r.started.length).toBe(1);
  });

  test("a node that never answers fails after NODE_START_TIMEOUT and is removed", async () => {
    const m = memoryScheduler({ nodeStartTimeoutMs: 500 });
    m.driver.neverReady({ count: 1 });
    const run = processScaleUp(scaleUp(1), m.ctx);
    await expect(driveClock(m.clock, run, 25)).rejects.toThrow(/not ready within NODE_START_TIMEOUT/);
    expect(await m.registry.list()).toEqual([]);
    expect(await m.driver.list()).toEqual([]);
    expect(m.ports.held().size).toBe(0);
  });

  test("a retry after a clean-up cut short (record left stopped, never ready) starts the node afresh", async () => {
    const m = memoryScheduler();
    const id = nodeIdFor("req-1", 0);
    const now = m.clock.now();
    await m.registry.create(nodeRec(id, { state: "stopped", lastSeenAt: 0, stoppedAt: now, stateChangedAt: now }), now);
    const r = await processScaleUp(scaleUp(1), m.ctx);
    expect(r.started).toEqual([id]);
    expect((await m.registry.get(id))?.state).toBe("ready");
  });

  test("a start that cannot work on retry is unrecoverable", async () => {
    const m = memoryScheduler();
    m.driver.failNextStart(new DriverError("no such image", false));
    await expect(processScaleUp(scaleUp(1), m.ctx)).rejects.toBeInstanceOf(UnrecoverableError);
  });

  test("bad counts are unrecoverable", async () => {
    const m = memoryScheduler();
    await expect(processScaleUp(scaleUp(0), m.ctx)).rejects.toBeInstanceOf(UnrecoverableError);
    await expect(processScaleUp(scaleUp(1.5), m.ctx)).rejects.toBeInstanceOf(UnrecoverableError);
  });
});

describe("reap", () => {
  test("an empty node left draining by a drain job that died is shut down by the reaper", async () => {
    const m = memoryScheduler({ inactivityShutdownMs: 10_000, nodeDrainMs: 5_000 });
    await processScaleUp(scaleUp(1), m.ctx);
    const id = (await m.registry.list())[0]!.id;
    // The drain job marked it and then vanished (failed for good, or its scheduler died).
    await m.registry.transition(id, "draining", m.clock.now(), { reason: "admin" });
    m.clock.advance(14_999);
    await processReapSweep(m.ctx);
    expect(m.asked.reap).toEqual([]);
    m.clock.advance(1);
    await processReapSweep(m.ctx);
    expect(m.asked.reap.map((j) => j.stage)).toEqual(["shutdown"]);
    for (const j of m.asked.reap.splice(0)) expect((await processReapNode(fakeJob<ReapNodeJob>(j), m.ctx)).acted).toBe(true);
    expect((await m.registry.get(id))?.state).toBe("stopped");
    expect((await m.driver.inspect(id))?.running).toBe(false);
  });

  test("sweep then node jobs: shut down after INACTIVITY_SHUTDOWN, deleted CLEANUP_DELETE later", async () => {
    const m = memoryScheduler({ inactivityShutdownMs: 10_000, cleanupDeleteMs: 30_000 });
    await processScaleUp(scaleUp(1), m.ctx);
    const [node] = await m.registry.list();
    const id = node!.id;
    const runAsked = async () => {
      for (const j of m.asked.reap.splice(0)) await processReapNode(fakeJob<ReapNodeJob>(j), m.ctx);
    };

    m.clock.advance(9_999);
    await processReapSweep(m.ctx);
    expect(m.asked.reap).toEqual([]);
    m.clock.advance(1);
    await processReapSweep(m.ctx);
    expect(m.asked.reap.map((j) => j.stage)).toEqual(["shutdown"]);
    await runAsked();
    const stopped = await m.registry.get(id);
    expect(stopped?.state).toBe("stopped");
    expect(stopped?.stoppedAt).toBe(T0 + 10_000);
    expect((await m.driver.inspect(id))?.running).toBe(false);

    m.clock.advance(29_999);
    await processReapSweep(m.ctx);
    expect(m.asked.reap).toEqual([]);
    m.clock.advance(1);
    await processReapSweep(m.ctx);
    expect(m.asked.reap.map((j) => j.stage)).toEqual(["delete"]);
    await runAsked();
    expect(await m.registry.get(id)).toBeUndefined();
    expect(await m.driver.inspect(id)).toBeUndefined();
    expect(m.ports.held().size).toBe(0);
  });

  test("activity keeps a node alive, and activity after the sweep decided still wins", async () => {
    const m = memoryScheduler({ inactivityShutdownMs: 1_000 });
    await processScaleUp(scaleUp(1), m.ctx);
    const id = (await m.registry.list())[0]!.id;
    for (let i = 0; i < 10; i++) {
      m.clock.advance(500);
      await m.registry.touchActivity(id, m.clock.now());
      await processReapSweep(m.ctx);
    }
    expect(m.asked.reap).toEqual([]);
    m.clock.advance(1_000);
    await processReapSweep(m.ctx);
    expect(m.asked.reap.length).toBe(1);
    await m.registry.touchActivity(id, m.clock.now()); // the player came back
    const r = await processReapNode(fakeJob<ReapNodeJob>(m.asked.reap[0]!), m.ctx);
    expect(r).toMatchObject({ acted: false, note: "active again" });
    expect((await m.registry.get(id))?.state).toBe("ready");
  });

  test("a delete decided before a wake does nothing", async () => {
    const m = memoryScheduler({ inactivityShutdownMs: 1_000, cleanupDeleteMs: 1_000 });
    await processScaleUp(scaleUp(1), m.ctx);
    const id = (await m.registry.list())[0]!.id;
    await m.ctx.lifecycle.stop(id, { from: ["ready"], reason: "test" });
    m.clock.advance(1_000);
    await processReapSweep(m.ctx);
    const del = m.asked.reap.find((j) => j.stage === "delete")!;
    await processWake(fakeJob({ nodeId: id, requestId: "w1" }), m.ctx);
    const r = await processReapNode(fakeJob<ReapNodeJob>(del), m.ctx);
    expect(r.acted).toBe(false);
    expect((await m.registry.get(id))?.state).toBe("ready");
    expect((await m.driver.inspect(id))?.running).toBe(true);
  });

  test("orphans both ways: an unknown instance is removed, a record without instance is finished and deleted", async () => {
    const m = memoryScheduler();
    await processScaleUp(scaleUp(2), m.ctx);
    const [a, b] = await m.registry.list();
    await m.registry.remove(a!.id, m.clock.now()); // registry forgot a → its instance is an orphan
    await m.driver.remove(b!.id); // b's instance vanished → its record is an orphan
    await processReapSweep(m.ctx);
    expect(m.asked.reap.map((j) => [j.stage, j.nodeId]).sort()).toEqual(
      [
        ["orphan-instance", a!.id],
        ["orphan-record", b!.id],
      ].sort(),
    );
    for (const j of m.asked.reap.splice(0)) expect((await processReapNode(fakeJob<ReapNodeJob>(j), m.ctx)).acted).toBe(true);
    expect(await m.registry.list()).toEqual([]);
    expect(await m.driver.list()).toEqual([]);
  });

  test("two replicas running the same node job: the second steps aside", async () => {
    const m = memoryScheduler({ inactivityShutdownMs: 1_000 });
    await processScaleUp(scaleUp(1), m.ctx);
    m.clock.advance(1_000);
    await processReapSweep(m.ctx);
    const j = m.asked.reap[0]!;
    const [r1, r2] = await Promise.all([processReapNode(fakeJob<ReapNodeJob>(j), m.ctx), processReapNode(fakeJob<ReapNodeJob>(j), m.ctx)]);
    expect([r1.acted, r2.acted].filter(Boolean).length).toBe(1);
    expect(m.driver.calls.filter((c) => c.op === "stop").length).toBeLessThanOrEqual(2);
  });
});

describe("wake", () => {
  test("a stopped node starts again with the same port and token", async () => {
    const m = memoryScheduler();
    await processScaleUp(scaleUp(1), m.ctx);
    const before = (await m.registry.list())[0]!;
    await m.ctx.lifecycle.stop(before.id, { from: ["ready"], reason: "test" });
    m.clock.advance(5_000);
    const r = await processWake(fakeJob({ nodeId: before.id, requestId: "w" }), m.ctx);
    expect(r.state).toBe("ready");
    const after = (await m.registry.get(before.id))!;
    expect(after.port).toBe(before.port);
    expect(after.token).toBe(before.token);
    expect(after.lastActivityAt).toBe(T0 + 5_000);
  });

  test("a deleted node cannot be woken", async () => {
    const m = memoryScheduler();
    await expect(processWake(fakeJob({ nodeId: "n-gone-0", requestId: "w" }), m.ctx)).rejects.toBeInstanceOf(UnrecoverableError);
  });

  test("a wake past MAX_SERVERS is refused and the node stays stopped", async () => {
    const m = memoryScheduler({ maxServers: 1 });
    await processScaleUp(scaleUp(1, "a"), m.ctx);
    const a = (await m.registry.list())[0]!;
    await m.ctx.lifecycle.stop(a.id, { from: ["ready"], reason: "test" });
    await processScaleUp(scaleUp(1, "b"), m.ctx);
    await expect(processWake(fakeJob({ nodeId: a.id, requestId: "w" }), m.ctx)).rejects.toBeInstanceOf(UnrecoverableError);
    expect((await m.registry.get(a.id))?.state).toBe("stopped");
  });
});

describe("drain", () => {
  test("an idle node drains at once: draining → stopping → stopped → deleted", async () => {
    const m = memoryScheduler();
    await processScaleUp(scaleUp(1), m.ctx);
    const id = (await m.registry.list())[0]!.id;
    const seen: string[] = [];
    await m.registry.subscribe((e) => seen.push(`${e.from}>${e.to}`));
    const r = await processDrain(fakeJob({ nodeId: id, deadlineMs: 60_000, reason: "admin" }), m.ctx);
    expect(r.outcome).toBe("drained");
    await Bun.sleep(0);
    expect(seen).toEqual(["ready>draining", "draining>stopping", "stopping>stopped", "stopped>undefined"]);
  });

  test("a busy node is stopped at the deadline, counted from the request", async () => {
    const m = memoryScheduler();
    await processScaleUp(scaleUp(1), m.ctx);
    const id = (await m.registry.list())[0]!.id;
    // Its /health keeps reporting a room.
    m.setProbe(async () => ({ ok: true, state: "draining", rooms: 1, players: 2 }));
    const job = fakeJob({ nodeId: id, deadlineMs: 3_000, reason: "admin" }, { timestamp: T0 - 1_000 });
    const stoppedAt: number[] = [];
    await m.registry.subscribe((e) => {
      if (e.to === "stopped") stoppedAt.push(e.at);
    });
    const run = processDrain(job, m.ctx);
    await driveClock(m.clock, run, 100);
    await Bun.sleep(0);
    // Stopped, then deleted (a drained node is retired).
    expect(await m.registry.get(id)).toBeUndefined();
    expect(stoppedAt.length).toBe(1);
    // Requested at T0-1000 with a 3 s deadline: stopped ~2 s into the run, not 3.
    expect(stoppedAt[0]! - T0).toBeLessThanOrEqual(2_100);
    // The node was told first (POST /drain), with the time left to the deadline.
    expect(m.drainTold.map((t) => t.nodeId)).toEqual([id]);
    expect(m.drainTold[0]!.deadlineSeconds).toBeGreaterThan(1.8);
    expect(m.drainTold[0]!.deadlineSeconds).toBeLessThanOrEqual(2);
    expect(job.progress.length).toBeGreaterThanOrEqual(2);
  });
});

describe("health tick", () => {
  test("HEALTH_CHECK_FAILURES failed checks → unhealthy + one replacement; recovery → ready", async () => {
    const m = memoryScheduler({ healthCheckFailures: 3 });
    await processScaleUp(scaleUp(1), m.ctx);
    const id = (await m.registry.list())[0]!.id;
    m.down.add(id);
    for (let i = 1; i <= 2; i++) {
      await processHealthTick(m.ctx, m.probe);
      expect((await m.registry.get(id))?.healthFailures).toBe(i);
      expect((await m.registry.get(id))?.state).toBe("ready");
    }
    await processHealthTick(m.ctx, m.probe);
    expect((await m.registry.get(id))?.state).toBe("unhealthy");
    await processHealthTick(m.ctx, m.probe);
    expect(m.asked.scaleUp.length).toBe(1);
    expect(m.asked.scaleUp[0]?.requestId).toMatch(new RegExp(`^replace-${id}-`));
    m.down.delete(id);
    await processHealthTick(m.ctx, m.probe);
    expect((await m.registry.get(id))?.state).toBe("ready");
    expect((await m.registry.get(id))?.healthFailures).toBe(0);
  });

  test("a node failing now and unseen for the whole failure budget is lost at once; one answering now never is", async () => {
    const m = memoryScheduler({ healthCheckFailures: 3, healthCheckIntervalMs: 2_000, healthCheckTimeoutMs: 1_000 });
    await processScaleUp(scaleUp(2), m.ctx);
    const [a, b] = await m.registry.list();
    m.clock.advance(60_000); // the checker was away for a minute
    m.down.add(a!.id);
    await processHealthTick(m.ctx, m.probe);
    expect((await m.registry.get(a!.id))?.state).toBe("unhealthy");
    expect((await m.registry.get(b!.id))?.state).toBe("ready");
  });

  test("adopts a started, healthy node whose scale-up job went away; the job retried later neither waits nor recreates it", async () => {
    const m = memoryScheduler({ nodeStartTimeoutMs: 60_000 });
    const id = nodeIdFor("req-dead", 0);
    // The job starts the instance, then waits for it to answer: its scheduler "dies" here.
    m.down.add(id);
    const orphaned = processScaleUp(scaleUp(1, "req-dead"), m.ctx);
    for (let i = 0; i < 200 && !(await m.registry.get(id))?.ref; i++) await Bun.sleep(1);
    expect((await m.registry.get(id))?.state).toBe("starting");
    expect(m.driver.calls.filter((c) => c.op === "start").length).toBe(1);
    // The node answers now; no job is looking at it — the health tick adopts it.
    m.down.delete(id);
    const tick = await processHealthTick(m.ctx, m.probe);
    expect("adopted" in tick && tick.adopted).toEqual([id]);
    expect((await m.registry.get(id))?.state).toBe("ready");
    // Another replica runs the stalled job: the node is there, nothing is started or removed again.
    const retried = await processScaleUp(scaleUp(1, "req-dead"), m.ctx);
    expect(retried.existing).toEqual([id]);
    // And the orphaned attempt, should it still run, takes the adopted node as its own.
    const first = await driveClock(m.clock, orphaned, 25);
    expect([...first.started, ...first.existing]).toEqual([id]);
    expect(m.driver.calls.filter((c) => c.op === "start").length).toBe(1);
    expect(m.driver.calls.filter((c) => c.op === "remove")).toEqual([]);
  });

  test("a starting node whose record never got its instance (the job died right after the driver's start) is found through the driver and adopted", async () => {
    const m = memoryScheduler({ healthCheckIntervalMs: 2_000 });
    const id = "n-orphan-0";
    await m.registry.create(nodeRec(id, { state: "starting", ref: "", host: "", port: 0, lastSeenAt: 0, stateChangedAt: m.clock.now() }), m.clock.now());
    await m.driver.start({ nodeId: id, port: 9100, token: "t", maxRooms: 10, maxPlayers: 10, drainSeconds: 1, roomMode: "echo" });
    // Younger than a check interval: the job may still be about to write the address — left alone.
    let tick = await processHealthTick(m.ctx, m.probe);
    expect("adopted" in tick && tick.adopted).toEqual([]);
    m.clock.advance(2_000);
    tick = await processHealthTick(m.ctx, m.probe);
    expect("adopted" in tick && tick.adopted).toEqual([id]);
    const rec = await m.registry.get(id);
    expect(rec?.state).toBe("ready");
    expect(rec?.ref).not.toBe("");
    expect(m.driver.calls.filter((c) => c.op === "start").length).toBe(1);
  });

  test("a starting node that does not answer is left to its job", async () => {
    const m = memoryScheduler({ nodeStartTimeoutMs: 60_000 });
    const id = nodeIdFor("req-slow", 0);
    m.down.add(id);
    void processScaleUp(scaleUp(1, "req-slow"), m.ctx).catch(() => {});
    for (let i = 0; i < 200 && !(await m.registry.get(id))?.ref; i++) await Bun.sleep(1);
    const tick = await processHealthTick(m.ctx, m.probe);
    expect("adopted" in tick && tick.adopted).toEqual([]);
    expect((await m.registry.get(id))?.state).toBe("starting");
  });

  test("updates rooms, players and lastSeenAt from /health", async () => {
    const m = memoryScheduler();
    await processScaleUp(scaleUp(1), m.ctx);
    const id = (await m.registry.list())[0]!.id;
    m.clock.advance(2_000);
    await processHealthTick(m.ctx, async () => ({ ok: true, state: "ready", rooms: 2, players: 5, nodeId: id }));
    expect(await m.registry.get(id)).toMatchObject({ rooms: 2, players: 5, lastSeenAt: T0 + 2_000 });
  });
});

describe("autoscale tick", () => {
  test("buffer: asks for MIN_READY_SERVERS nodes and records the decision", async () => {
    const m = memoryScheduler({ minReadyServers: 2 });
    const d = await processAutoscaleTick(m.ctx);
    expect(d).toMatchObject({ action: "up", count: 2 });
    expect(m.asked.scaleUp).toEqual([expect.objectContaining({ count: 2, requestId: `auto-${T0}` })]);
    expect(m.events[0]).toMatchObject({ action: "up", count: 2, at: T0 });
    expect(m.events[0]?.reason).toMatch(/MIN_READY_SERVERS=2/);
  });

  test("queued joins scale up; the admin floor scales up; surplus drains after the cooldown", async () => {
    const m = memoryScheduler({ scaleDownCooldownMs: 30_000 });
    m.pendingJoins.n = 2;
    expect(await processAutoscaleTick(m.ctx)).toMatchObject({ action: "up", count: 2 });
    m.pendingJoins.n = 0;
    m.state.floor = 3;
    expect(await processAutoscaleTick(m.ctx)).toMatchObject({ action: "up", count: 3 });
    await processScaleUp(scaleUp(3), m.ctx);
    m.state.floor = 1;
    m.clock.advance(10_000);
    expect(await processAutoscaleTick(m.ctx)).toMatchObject({ action: "none" });
    m.clock.advance(20_000);
    const d = await processAutoscaleTick(m.ctx);
    expect(d).toMatchObject({ action: "down", count: 2 });
    expect(m.asked.drain.length).toBe(2);
  });

  test("at MAX_SERVERS: says so once on the dashboard, not every tick", async () => {
    const m = memoryScheduler({ maxServers: 1 });
    await processScaleUp(scaleUp(1), m.ctx);
    await m.registry.update((await m.registry.list())[0]!.id, { players: 1, rooms: 1 });
    m.events.length = 0;
    m.pendingJoins.n = 1;
    for (let i = 0; i < 3; i++) expect(await processAutoscaleTick(m.ctx)).toMatchObject({ action: "none", reason: expect.stringMatching(/^at MAX_SERVERS=1/) });
    expect(m.events.map((e) => e.action)).toEqual(["refused"]);
  });

  test("a seat a join holds counts before the node reports the player: the buffer is refilled", async () => {
    const m = memoryScheduler({ minReadyServers: 1 });
    await processScaleUp(scaleUp(1), m.ctx);
    const id = (await m.registry.list())[0]!.id;
    expect(await processAutoscaleTick(m.ctx)).toMatchObject({ action: "none" });
    await m.registry.update(id, { reservedRooms: 1, reservedSeats: 1 }); // placed, /health still says 0 players
    expect(await processAutoscaleTick(m.ctx)).toMatchObject({ action: "up", count: 1 });
  });

  test("lobby seats count: 4 lobbies of 8 on a 32-seat node fill it, and the autoscaler scales up", async () => {
    const m = memoryScheduler({ minReadyServers: 0, maxPlayersPerServer: 32, scaleUpUtilization: 0.8 });
    await processScaleUp(scaleUp(1), m.ctx);
    const id = (await m.registry.list())[0]!.id;
    expect(await processAutoscaleTick(m.ctx)).toMatchObject({ action: "none" });
    // Four lobbies placed (8 seats each), nobody connected yet: /health says 0 players.
    await m.registry.update(id, { reservedRooms: 4, reservedSeats: 32 });
    expect(await processAutoscaleTick(m.ctx)).toMatchObject({ action: "up", count: 1 });
  });

  test("a tick another replica holds is skipped", async () => {
    const m = memoryScheduler({ minReadyServers: 1 });
    m.ctx.locks = { tryTick: async () => undefined };
    expect(await processAutoscaleTick(m.ctx)).toEqual({ action: "skipped" });
    expect(m.asked.scaleUp).toEqual([]);
  });
});
