import { describe, expect, test } from "bun:test";
import { FakeClock } from "../../core/clock.ts";
import { testConfig } from "../../core/config.ts";
import { desiredNodes, removableNodes, type FleetSnapshot, type PolicyConfig } from "../../scheduler/policy/desired-nodes.ts";
import { countFleet } from "../../scheduler/policy/fleet-counts.ts";
import { T0, nodeRec, snapshot } from "../support/scheduler-fixtures.ts";

const base: PolicyConfig = { maxServers: 10, minReadyServers: 0, maxPlayersPerServer: 1, scaleUpUtilization: 0.8, scaleDownCooldownMs: 30_000 };

const ready = (id: string, players = 0, rooms = players > 0 ? 1 : 0, capacity = 1) => nodeRec(id, { state: "ready", players, rooms, capacity });
const starting = (id: string) => nodeRec(id, { state: "starting" });

interface Row {
  name: string;
  config?: Partial<PolicyConfig>;
  state: Partial<FleetSnapshot>;
  /** ms after T0 at which the decision is taken. */
  at?: number;
  want: { action: "none" | "up" | "down"; count: number; nodeIds?: string[]; reason?: RegExp };
}

const rows: Row[] = [
  { name: "empty fleet, no buffer: nothing", state: {}, want: { action: "none", count: 0 } },
  { name: "buffer of 2 on an empty fleet: +2", config: { minReadyServers: 2 }, state: {}, want: { action: "up", count: 2, reason: /MIN_READY_SERVERS=2/ } },
  { name: "buffer counts starting nodes", config: { minReadyServers: 2 }, state: { nodes: [ready("a"), starting("b")] }, want: { action: "none", count: 0 } },
  { name: "buffer counts pending starts", config: { minReadyServers: 2 }, state: { nodes: [ready("a")], pendingStarts: 1 }, want: { action: "none", count: 0 } },
  {
    name: "busy nodes are not spares",
    config: { minReadyServers: 1, scaleUpUtilization: 1 },
    state: { nodes: [ready("a", 1), ready("b", 1)] },
    want: { action: "up", count: 1, reason: /buffer/ },
  },
  { name: "3 queued joins, dedicated servers: +3", state: { pendingJoins: 3 }, want: { action: "up", count: 3, reason: /3 queued join/ } },
  { name: "queued joins already covered by starting nodes", state: { pendingJoins: 2, nodes: [starting("a"), starting("b")] }, want: { action: "none", count: 0 } },
  { name: "5 queued joins, 4 players per node: +2", config: { maxPlayersPerServer: 4 }, state: { pendingJoins: 5 }, want: { action: "up", count: 2 } },
  {
    name: "utilisation 0.9 of 10 seats > 0.8: +1 node",
    config: { maxPlayersPerServer: 5 },
    state: { nodes: [ready("a", 5, 1, 5), ready("b", 4, 1, 5)] },
    want: { action: "up", count: 1, reason: /utilisation 0.90/ },
  },
  {
    name: "a whole 8-player room on a one-per-match node counts as full, not 800 %: +1 spare, not +9",
    state: { nodes: [ready("a", 8, 1, 1)] },
    want: { action: "up", count: 1, reason: /utilisation 1.00/ },
  },
  { name: "utilisation exactly at threshold: nothing", config: { maxPlayersPerServer: 5 }, state: { nodes: [ready("a", 4, 1, 5)] }, want: { action: "none", count: 0 } },
  { name: "admin floor 4 with 1 ready: +3", state: { floor: 4, nodes: [ready("a", 1)], lastScaleUpAt: T0 }, config: { scaleUpUtilization: 1 }, want: { action: "up", count: 3, reason: /floor 4/ } },
  { name: "MAX_SERVERS caps a scale-up", config: { maxServers: 3 }, state: { pendingJoins: 5, nodes: [ready("a", 1)] }, want: { action: "up", count: 2, reason: /capped by MAX_SERVERS=3/ } },
  {
    name: "at MAX_SERVERS: nothing, says why",
    config: { maxServers: 2, scaleUpUtilization: 1 },
    state: { pendingJoins: 1, nodes: [ready("a", 1), ready("b", 1)] },
    want: { action: "none", count: 0, reason: /at MAX_SERVERS=2/ },
  },
  {
    name: "stopping nodes hold a slot, stopped ones do not",
    config: { maxServers: 2, scaleUpUtilization: 1 },
    state: { pendingJoins: 1, nodes: [nodeRec("a", { state: "stopping" }), nodeRec("b", { state: "stopped" })] },
    want: { action: "up", count: 1 },
  },
  {
    name: "surplus idle node inside cooldown: none",
    state: { nodes: [ready("a")], lastScaleUpAt: T0 },
    at: 10_000,
    want: { action: "none", count: 0, reason: /cooling down/ },
  },
  {
    name: "surplus idle node after cooldown: down, the least recently active first",
    state: {
      nodes: [nodeRec("a", { lastActivityAt: T0 + 5 }), nodeRec("b", { lastActivityAt: T0 + 1 }), ready("c", 1)],
      lastScaleUpAt: T0,
    },
    config: { minReadyServers: 1, scaleUpUtilization: 1 },
    at: 31_000,
    want: { action: "down", count: 1, nodeIds: ["b"] },
  },
  {
    name: "never scales down busy nodes",
    config: { scaleUpUtilization: 1 },
    state: { nodes: [ready("a", 1), ready("b", 1)] },
    at: 60_000,
    want: { action: "none", count: 0 },
  },
  {
    name: "a room without players is not idle",
    state: { nodes: [nodeRec("a", { rooms: 1 })] },
    at: 60_000,
    want: { action: "none", count: 0 },
  },
  {
    name: "floor keeps idle nodes",
    state: { nodes: [ready("a"), ready("b"), ready("c")], floor: 2 },
    at: 60_000,
    want: { action: "down", count: 1, nodeIds: ["a"] },
  },
  {
    name: "utilisation keeps idle nodes",
    config: { maxPlayersPerServer: 2 },
    state: { nodes: [ready("a", 2, 1, 2), ready("b", 0, 0, 2), ready("c", 0, 0, 2)] },
    at: 60_000,
    // 2 players need 3 seats at 0.8: a (2) + one idle (2) = 4 seats; one idle can go.
    want: { action: "down", count: 1, nodeIds: ["b"] },
  },
  {
    name: "a node ready for less than the cooldown is not scaled down, however old the last event",
    state: { nodes: [nodeRec("a", { stateChangedAt: T0 + 50_000, lastActivityAt: T0 + 50_000 })], lastScaleUpAt: 0 },
    at: 60_000,
    want: { action: "none", count: 0 },
  },
  {
    name: "the same node once idle for the cooldown is",
    state: { nodes: [nodeRec("a", { stateChangedAt: T0 + 50_000, lastActivityAt: T0 + 50_000 })], lastScaleUpAt: 0 },
    at: 80_000,
    want: { action: "down", count: 1, nodeIds: ["a"] },
  },
  { name: "no scale-down while joins wait", state: { nodes: [ready("a")], pendingJoins: 1 }, at: 60_000, want: { action: "none", count: 0 } },
];

describe("desiredNodes", () => {
  for (const r of rows) {
    test(r.name, () => {
      const clock = new FakeClock(T0);
      clock.advance(r.at ?? 0);
      const d = desiredNodes(snapshot(r.state), { ...base, ...r.config }, clock.now());
      expect(d.action).toBe(r.want.action);
      expect(d.count).toBe(r.want.count);
      if (r.want.nodeIds) expect(d.action === "down" ? d.nodeIds : []).toEqual(r.want.nodeIds);
      if (r.want.reason) expect(d.reason).toMatch(r.want.reason);
      expect(d.reason.length).toBeGreaterThan(0);
    });
  }

  test("every decision stays within MAX_SERVERS over a random sweep", () => {
    let seed = 42;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    for (let i = 0; i < 500; i++) {
      const cfg: PolicyConfig = { ...base, maxServers: 1 + rnd(8), minReadyServers: rnd(3), maxPlayersPerServer: 1 + rnd(4) };
      const states = ["starting", "ready", "draining", "unhealthy", "stopping", "stopped"] as const;
      const nodes = Array.from({ length: rnd(cfg.maxServers + 1) }, (_, j) => {
        const state = states[rnd(states.length)]!;
        const players = state === "ready" ? rnd(cfg.maxPlayersPerServer + 1) : 0;
        return nodeRec(`n${j}`, { state, players, rooms: players ? 1 : 0, capacity: cfg.maxPlayersPerServer });
      });
      const s = snapshot({ nodes, pendingJoins: rnd(5), floor: rnd(6) });
      const d = desiredNodes(s, cfg, T0 + 100_000);
      const live = countFleet(nodes, 0).live;
      if (d.action === "up") expect(live + d.count).toBeLessThanOrEqual(Math.max(cfg.maxServers, live));
      if (d.action === "down") for (const id of d.nodeIds) expect(nodes.find((n) => n.id === id)?.players).toBe(0);
    }
  });
});

describe("removableNodes", () => {
  test("keeps the buffer of idle spares", () => {
    const nodes = [ready("a"), ready("b"), ready("c")];
    const got = removableNodes(nodes, snapshot({ nodes }), { ...base, minReadyServers: 2 });
    expect(got.map((n) => n.id)).toEqual(["a"]);
  });

  test("uses the default config sensibly", () => {
    const cfg = testConfig();
    const nodes = [ready("a")];
    expect(removableNodes(nodes, snapshot({ nodes }), cfg).map((n) => n.id)).toEqual(["a"]);
  });
});
