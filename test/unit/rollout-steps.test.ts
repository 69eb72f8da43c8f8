/** The rollout's pure step policy, table-driven, and the version choices of model/rollouts.ts. */
import { describe, expect, test } from "bun:test";
import type { NodeRecord } from "../../core/types.ts";
import { MemoryRolloutStore, canaryPick, versionForNewNode, versionForNewRoom, versionOfImage, type FleetRouting, type RolloutRecord } from "../../model/rollouts.ts";
import { desiredNewNodes, nextRolloutStep, type RolloutStep } from "../../scheduler/policy/rollout-steps.ts";
import { T0, nodeRec } from "../support/scheduler-fixtures.ts";

function rollout(over: Partial<RolloutRecord> = {}): RolloutRecord {
  return {
    id: "r1",
    version: "v2",
    image: "img:v2",
    env: {},
    fromVersion: "v1",
    fromImage: "img:v1",
    state: "running",
    reason: "",
    canaryPercent: 100,
    maxSurge: 1,
    drainDeadlineMs: 20_000,
    startedAt: T0,
    finishedAt: 0,
    oldNodes: ["a", "b"],
    newNodes: [],
    drained: [],
    failures: 0,
    slots: 0,
    by: "admin",
    ...over,
  };
}
const v1 = (id: string, over: Partial<NodeRecord> = {}) => nodeRec(id, { version: "v1", ...over });
const v2 = (id: string, over: Partial<NodeRecord> = {}) => nodeRec(id, { version: "v2", requestId: `rollout-r1-${id}`, ...over });

interface Row {
  name: string;
  r?: Partial<RolloutRecord>;
  nodes: NodeRecord[];
  pending?: number;
  atCapacity?: boolean;
  inFlight?: string[];
  want: Partial<RolloutStep> & { kind: RolloutStep["kind"] };
}

const rows: Row[] = [
  { name: "start: one new node (maxSurge 1), nothing drained before it is ready", nodes: [v1("a"), v1("b")], want: { kind: "act", start: 1, drain: [] } },
  { name: "maxSurge 2 starts two", r: { maxSurge: 2 }, nodes: [v1("a"), v1("b")], want: { kind: "act", start: 2, drain: [] } },
  { name: "a start under way counts against the surge", nodes: [v1("a"), v1("b"), v2("n1", { state: "starting" })], inFlight: ["n1"], want: { kind: "wait" } },
  { name: "a start launched but not yet registered counts too", nodes: [v1("a"), v1("b")], pending: 1, want: { kind: "wait" } },
  { name: "one new ready → the emptiest old node drains, the next new node starts", nodes: [v1("a", { players: 5 }), v1("b", { players: 2 }), v2("n1")], want: { kind: "act", start: 1, drain: ["b"] } },
  { name: "an old node already draining counts as replaced", nodes: [v1("a"), v1("b", { state: "draining" }), v2("n1")], want: { kind: "act", start: 1, drain: [] } },
  { name: "all new ready → every old node drains", r: { drained: ["b"] }, nodes: [v1("a"), v1("b", { state: "draining" }), v2("n1"), v2("n2")], want: { kind: "act", start: 0, drain: ["a"] } },
  { name: "old nodes draining: wait for them to empty or reach the deadline", nodes: [v1("a", { state: "draining" }), v1("b", { state: "stopping" }), v2("n1"), v2("n2")], want: { kind: "wait" } },
  { name: "an old node stopped by idleness is deleted, never woken", nodes: [v1("a", { state: "stopped" }), v2("n1"), v2("n2")], want: { kind: "act", remove: ["a"] } },
  { name: "no old node left → succeeded", nodes: [v2("n1"), v2("n2")], want: { kind: "succeed" } },
  { name: "a node without a version runs the old (active) one", nodes: [nodeRec("a", { version: "" }), v2("n1"), v2("n2")], want: { kind: "act", drain: ["a"] } },
  { name: "at MAX_SERVERS: nothing starts; the emptiest old node is retired first to free a slot", nodes: [v1("a", { players: 3 }), v1("b", { players: 1 })], atCapacity: true, want: { kind: "act", start: 0, drain: ["b"] } },
  { name: "at MAX_SERVERS with an old node already leaving: wait for its slot", nodes: [v1("a"), v1("b", { state: "draining" })], atCapacity: true, want: { kind: "wait" } },
  { name: "failures at the limit roll back", r: { failures: 3 }, nodes: [v1("a"), v1("b")], want: { kind: "rollback" } },
  { name: "failures below the limit start another", r: { failures: 2 }, nodes: [v1("a"), v1("b")], want: { kind: "act", start: 1 } },
  { name: "a starting node nobody here brings up is adopted", nodes: [v1("a"), v1("b"), v2("n1", { state: "starting" })], want: { kind: "act", start: 0, adopt: ["n1"] } },
  { name: "canary 25% of 2 old nodes: one new node, old nodes stay", r: { canaryPercent: 25 }, nodes: [v1("a"), v1("b")], want: { kind: "act", start: 1, drain: [] } },
  { name: "canary ready: waits for promote, retires nothing", r: { canaryPercent: 25 }, nodes: [v1("a"), v1("b"), v2("n1")], want: { kind: "wait" } },
  { name: "rolled back: new nodes drain, old stay", r: { state: "rolled_back" }, nodes: [v1("a"), v2("n1"), v2("n2", { state: "draining" })], want: { kind: "cleanup", drain: ["n1"] } },
  { name: "rolled back with a node still starting: waits for it", r: { state: "cancelled", drained: ["n1"] }, nodes: [v1("a"), v2("n1", { state: "draining" }), v2("n3", { state: "starting" })], want: { kind: "cleanup", drain: [], waitFor: 1 } },
  { name: "rolled back and cleaned up: done", r: { state: "rolled_back", drained: ["n1"] }, nodes: [v1("a"), v2("n1", { state: "stopping" })], want: { kind: "done" } },
  { name: "succeeded: done", r: { state: "succeeded" }, nodes: [v2("n1")], want: { kind: "done" } },
];

describe("nextRolloutStep", () => {
  for (const row of rows) {
    test(row.name, () => {
      const step = nextRolloutStep({
        rollout: rollout(row.r),
        nodes: row.nodes,
        activeVersion: "v1",
        failureLimit: 3,
        pendingStarts: row.pending ?? 0,
        inFlight: new Set(row.inFlight ?? []),
        atCapacity: row.atCapacity ?? false,
      });
      expect(step).toMatchObject(row.want);
    });
  }

  test("desired new nodes: as many as old at the start (at least one); a canary its share", () => {
    expect(desiredNewNodes({ oldNodes: [], canaryPercent: 100 })).toBe(1);
    expect(desiredNewNodes({ oldNodes: ["a", "b", "c"], canaryPercent: 100 })).toBe(3);
    expect(desiredNewNodes({ oldNodes: ["a", "b", "c", "d"], canaryPercent: 25 })).toBe(1);
    expect(desiredNewNodes({ oldNodes: ["a", "b", "c", "d", "e"], canaryPercent: 50 })).toBe(3);
  });
});

describe("version choice", () => {
  const active = { version: "v1", image: "img:v1" };
  const target = { version: "v2", image: "img:v2" };
  test("rooms: the active version without a rollout, the target at 100%, a canary its exact share", async () => {
    const store = new MemoryRolloutStore(active);
    expect(await versionForNewRoom(store)).toEqual({ want: "v1", active: "v1" });
    const begin = (id: string, canaryPercent: number) => store.begin({ id, version: "v2", image: "img:v2", env: {}, canaryPercent, maxSurge: 1, drainDeadlineMs: 1, startedAt: 1, oldNodes: [], by: "t" });
    await begin("r1", 100);
    expect((await versionForNewRoom(store)).want).toBe("v2");
    await store.finish("r1", "cancelled", "t", 2);
    await begin("r2", 25);
    const picks: string[] = [];
    for (let i = 0; i < 100; i++) picks.push((await versionForNewRoom(store)).want!);
    expect(picks.filter((v) => v === "v2").length).toBe(25);
    // Spread out, not in a block: every run of 4 new rooms has one on the canary.
    for (let i = 0; i < 100; i += 4) expect(picks.slice(i, i + 4).filter((v) => v === "v2").length).toBe(1);
  });

  test("canaryPick: exactly p of every 100 tickets, for every p", () => {
    for (const p of [1, 7, 25, 33, 50, 99, 100]) {
      let n = 0;
      for (let t = 1; t <= 100; t++) if (canaryPick(p, t)) n++;
      expect(n).toBe(p);
    }
    expect(canaryPick(0, 5)).toBe(false);
  });

  test("new nodes: the target until it holds its canary share of ready + starting nodes", () => {
    const routing: FleetRouting = { active, target, canaryPercent: 25, rolloutId: "r" };
    const n = (version: string, state = "ready") => ({ version, state });
    expect(versionForNewNode(routing, [n("v1"), n("v1"), n("v1"), n("v1")]).version).toBe("v2");
    expect(versionForNewNode(routing, [n("v1"), n("v1"), n("v1"), n("v2", "starting")]).version).toBe("v1");
    expect(versionForNewNode({ active, canaryPercent: 100 }, []).version).toBe("v1");
    expect(versionForNewNode({ active, target, canaryPercent: 100, rolloutId: "r" }, [n("v1")]).version).toBe("v2");
  });

  test("a version defaults to the image's tag", () => {
    expect(versionOfImage("fleetgate-node:v2")).toBe("v2");
    expect(versionOfImage("registry:5000/game/node:1.4.2")).toBe("1.4.2");
    expect(versionOfImage("registry:5000/game/node")).toBe("registry:5000/game/node");
  });
});
