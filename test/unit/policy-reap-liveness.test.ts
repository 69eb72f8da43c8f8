import { describe, expect, test } from "bun:test";
import { FakeClock } from "../../core/clock.ts";
import { testConfig } from "../../core/config.ts";
import type { DriverNodeInfo } from "../../scheduler/drivers/driver.ts";
import { healthVerdict, parseHealthBody, staleNodes, type HealthConfig, type ProbeResult } from "../../scheduler/policy/liveness.ts";
import { reapPlan, type ReapAction, type ReapConfig } from "../../scheduler/policy/reap-plan.ts";
import { T0, nodeRec, snapshot } from "../support/scheduler-fixtures.ts";

const reapCfg: ReapConfig = {
  maxServers: 10,
  minReadyServers: 0,
  maxPlayersPerServer: 1,
  scaleUpUtilization: 0.8,
  scaleDownCooldownMs: 30_000,
  inactivityShutdownMs: 10_000,
  cleanupDeleteMs: 30_000,
  nodeStartTimeoutMs: 15_000,
  nodeDrainMs: 5_000,
};

const inst = (nodeId: string, running = true): DriverNodeInfo => ({ nodeId, driver: "memory", ref: nodeId, host: "127.0.0.1", port: 1, dockerHost: "", running, exitCode: undefined, startedAt: T0 });

describe("reapPlan", () => {
  const rows: { name: string; at: number; nodes: ReturnType<typeof nodeRec>[]; instances?: DriverNodeInfo[] | "unknown"; cfg?: Partial<ReapConfig>; floor?: number; want: [ReapAction["kind"], string][] }[] = [
    { name: "active node within the window stays", at: 9_999, nodes: [nodeRec("a")], want: [] },
    { name: "inactive for INACTIVITY_SHUTDOWN: shut down", at: 10_000, nodes: [nodeRec("a")], want: [["shutdown", "a"]] },
    { name: "recent activity keeps it", at: 15_000, nodes: [nodeRec("a", { lastActivityAt: T0 + 6_000 })], want: [] },
    {
      name: "a freshly woken node counts from when it became ready",
      at: 15_000,
      nodes: [nodeRec("a", { lastActivityAt: T0 - 60_000, stateChangedAt: T0 + 6_000 })],
      want: [],
    },
    { name: "warm spare of the buffer is kept", at: 60_000, cfg: { minReadyServers: 1 }, nodes: [nodeRec("a"), nodeRec("b", { lastActivityAt: T0 + 1 })], want: [["shutdown", "a"]] },
    { name: "admin floor keeps nodes", at: 60_000, floor: 2, nodes: [nodeRec("a"), nodeRec("b"), nodeRec("c")], want: [["shutdown", "a"]] },
    { name: "inactive with stale player count is still shut down", at: 10_000, nodes: [nodeRec("a", { players: 1, rooms: 1 })], want: [["shutdown", "a"]] },
    { name: "stopped for CLEANUP_DELETE: delete", at: 40_000, nodes: [nodeRec("a", { state: "stopped", stoppedAt: T0 + 10_000 })], want: [["delete", "a"]] },
    { name: "stopped less than CLEANUP_DELETE: kept for a wake", at: 39_999, nodes: [nodeRec("a", { state: "stopped", stoppedAt: T0 + 10_000 })], want: [] },
    { name: "unhealthy too long: shut down", at: 10_000, nodes: [nodeRec("a", { state: "unhealthy" })], want: [["shutdown", "a"]] },
    { name: "draining with players is the drain job's", at: 100_000, nodes: [nodeRec("a", { state: "draining", players: 2, rooms: 1 })], want: [] },
    { name: "empty draining node within its window is the drain job's", at: 14_999, nodes: [nodeRec("a", { state: "draining" })], want: [] },
    { name: "empty draining node left behind by a dead drain job: shut down", at: 15_000, nodes: [nodeRec("a", { state: "draining" })], want: [["shutdown", "a"]] },
    { name: "stuck stopping", at: 20_001, nodes: [nodeRec("a", { state: "stopping" })], want: [["orphan-record", "a"]] },
    { name: "stuck starting", at: 30_001, nodes: [nodeRec("a", { state: "starting" })], want: [["orphan-record", "a"]] },
    { name: "starting within its timeout is left alone", at: 29_000, nodes: [nodeRec("a", { state: "starting" })], instances: [], want: [] },
    { name: "instance without a record", at: 0, nodes: [], instances: [inst("x")], want: [["orphan-instance", "x"]] },
    { name: "record without an instance (ready)", at: 0, nodes: [nodeRec("a")], instances: [], want: [["orphan-record", "a"]] },
    { name: "record without an instance and inactive: one action", at: 20_000, nodes: [nodeRec("a")], instances: [], want: [["orphan-record", "a"]] },
    { name: "driver unanswered: no orphan decisions", at: 0, nodes: [nodeRec("a")], instances: "unknown", want: [] },
    { name: "stopped and past delete with instance gone: delete only", at: 40_000, nodes: [nodeRec("a", { state: "stopped", stoppedAt: T0 })], instances: [], want: [["delete", "a"]] },
  ];
  for (const r of rows) {
    test(r.name, () => {
      const clock = new FakeClock(T0);
      clock.advance(r.at);
      const instances = r.instances === "unknown" ? undefined : (r.instances ?? r.nodes.map((n) => inst(n.id)));
      const plan = reapPlan(snapshot({ nodes: r.nodes, floor: r.floor ?? 0 }), instances, { ...reapCfg, ...r.cfg }, clock.now());
      expect(plan.map((a) => [a.kind, a.nodeId])).toEqual(r.want);
      for (const a of plan) expect(a.reason.length).toBeGreaterThan(0);
    });
  }

  test("the shutdown epoch is the activity decided on: new activity (or a wake) makes a new job id", () => {
    const at = T0 + 60_000;
    expect(reapPlan(snapshot({ nodes: [nodeRec("a", { stateChangedAt: T0 + 5, lastActivityAt: T0 })] }), undefined, reapCfg, at)[0]).toMatchObject({ kind: "shutdown", epoch: T0 + 5 });
    expect(reapPlan(snapshot({ nodes: [nodeRec("a", { stateChangedAt: T0 + 5, lastActivityAt: T0 + 9 })] }), undefined, reapCfg, at)[0]).toMatchObject({ kind: "shutdown", epoch: T0 + 9 });
    expect(reapPlan(snapshot({ nodes: [nodeRec("a", { state: "unhealthy", stateChangedAt: T0 + 7, lastActivityAt: T0 + 9 })] }), undefined, reapCfg, at)[0]).toMatchObject({ kind: "shutdown", epoch: T0 + 7 });
  });

  test("the default lifecycle: shut down at 10 s, deleted 30 s after", () => {
    const cfg = testConfig();
    const clock = new FakeClock(T0);
    const n = nodeRec("a");
    clock.advance(cfg.inactivityShutdownMs - 1);
    expect(reapPlan(snapshot({ nodes: [n] }), undefined, cfg, clock.now())).toEqual([]);
    clock.advance(1);
    expect(reapPlan(snapshot({ nodes: [n] }), undefined, cfg, clock.now()).map((a) => a.kind)).toEqual(["shutdown"]);
    const stopped = nodeRec("a", { state: "stopped", stoppedAt: clock.now(), stateChangedAt: clock.now() });
    clock.advance(cfg.cleanupDeleteMs - 1);
    expect(reapPlan(snapshot({ nodes: [stopped] }), undefined, cfg, clock.now())).toEqual([]);
    clock.advance(1);
    expect(reapPlan(snapshot({ nodes: [stopped] }), undefined, cfg, clock.now()).map((a) => a.kind)).toEqual(["delete"]);
  });
});

const hc: HealthConfig = { healthCheckIntervalMs: 2_000, healthCheckFailures: 3, healthCheckTimeoutMs: 1_000 };

describe("healthVerdict", () => {
  const ok: ProbeResult = { ok: true, state: "ready", rooms: 2, players: 3, nodeId: "a" };
  const bad: ProbeResult = { ok: false, error: "ECONNREFUSED" };
  const rows: { name: string; node: ReturnType<typeof nodeRec>; probe: ProbeResult; to?: string; replace: boolean; failures: number }[] = [
    { name: "ok updates counts and resets failures", node: nodeRec("a", { healthFailures: 2 }), probe: ok, replace: false, failures: 0 },
    { name: "first failure: degraded only", node: nodeRec("a"), probe: bad, replace: false, failures: 1 },
    { name: "third failure of a ready node: unhealthy + replacement", node: nodeRec("a", { healthFailures: 2 }), probe: bad, to: "unhealthy", replace: true, failures: 3 },
    { name: "third failure of a draining node: unhealthy, no replacement", node: nodeRec("a", { state: "draining", healthFailures: 2 }), probe: bad, to: "unhealthy", replace: false, failures: 3 },
    { name: "already unhealthy: counts on, no second replacement", node: nodeRec("a", { state: "unhealthy", healthFailures: 3 }), probe: bad, replace: false, failures: 4 },
    { name: "unhealthy that answers again: ready", node: nodeRec("a", { state: "unhealthy", healthFailures: 5 }), probe: ok, to: "ready", replace: false, failures: 0 },
    { name: "taken out by a gateway (failures 0), probe fails: loss confirmed, one replacement", node: nodeRec("a", { state: "unhealthy", healthFailures: 0 }), probe: bad, replace: true, failures: 1 },
    { name: "taken out by a gateway, probe fails again: no second replacement", node: nodeRec("a", { state: "unhealthy", healthFailures: 1 }), probe: bad, replace: false, failures: 2 },
    { name: "taken out by a gateway but it answers: restored to ready", node: nodeRec("a", { state: "unhealthy", healthFailures: 0 }), probe: ok, to: "ready", replace: false, failures: 0 },
    { name: "another node answering on the port is a failure", node: nodeRec("a", { healthFailures: 2 }), probe: { ...ok, nodeId: "b" } as ProbeResult, to: "unhealthy", replace: true, failures: 3 },
  ];
  for (const r of rows) {
    test(r.name, () => {
      const v = healthVerdict(r.node, r.probe, T0 + 1, hc);
      expect(v.to).toBe(r.to as typeof v.to);
      expect(v.replace).toBe(r.replace);
      expect(v.patch.healthFailures).toBe(r.failures);
      if (r.probe.ok && r.probe.nodeId === r.node.id) expect(v.patch).toMatchObject({ rooms: 2, players: 3, lastSeenAt: T0 + 1 });
    });
  }
});

describe("staleNodes", () => {
  test("table", () => {
    const clock = new FakeClock(T0);
    const nodes = [
      nodeRec("fresh", { lastSeenAt: T0 }),
      nodeRec("edge", { lastSeenAt: T0 - 7_000 }),
      nodeRec("old", { lastSeenAt: T0 - 7_001 }),
      nodeRec("old-draining", { state: "draining", lastSeenAt: T0 - 60_000 }),
      nodeRec("old-stopped", { state: "stopped", lastSeenAt: T0 - 60_000 }),
      nodeRec("never-seen", { lastSeenAt: 0 }),
    ];
    expect(staleNodes(nodes, clock.now(), hc).map((n) => n.id)).toEqual(["old", "old-draining"]);
  });
});

describe("parseHealthBody", () => {
  test("contract bodies and garbage", () => {
    expect(parseHealthBody({ state: "ready", rooms: 1, players: 2 })).toEqual({ ok: true, state: "ready", rooms: 1, players: 2 });
    expect(parseHealthBody({ state: "draining", rooms: 0, players: 0, nodeId: "x" })).toMatchObject({ ok: true, nodeId: "x" });
    expect(parseHealthBody({ state: "starting" }).ok).toBe(false);
    expect(parseHealthBody(null).ok).toBe(false);
    expect(parseHealthBody("ready").ok).toBe(false);
  });
});
