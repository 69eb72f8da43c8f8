import { describe, expect, test } from "bun:test";
import { summarizeCapacity } from "../../gateway/ops/capacity.ts";
import { makeNode } from "../support/nodes.ts";

describe("summarizeCapacity", () => {
  test.each([
    { name: "empty fleet", nodes: [], players: 0, capacity: 0, utilization: 0 },
    { name: "ready nodes only count toward capacity", nodes: [makeNode({ id: "a", state: "ready", players: 1, capacity: 4 }), makeNode({ id: "b", state: "draining", players: 2, capacity: 4 })], players: 3, capacity: 4, utilization: 0.75 },
    { name: "a room's 8 players on a capacity-1 node: full, not over", nodes: [makeNode({ id: "a", state: "ready", players: 8, capacity: 1 }), makeNode({ id: "b", state: "ready", players: 0, capacity: 1 })], players: 8, capacity: 2, utilization: 0.5 },
    { name: "starting and stopped nodes hold no players", nodes: [makeNode({ id: "a", state: "starting", players: 0, capacity: 4 }), makeNode({ id: "b", state: "stopped", players: 5, capacity: 4 })], players: 0, capacity: 0, utilization: 0 },
  ])("$name", ({ nodes, players, capacity, utilization }) => {
    const s = summarizeCapacity(nodes, { "scale-up": 2, drain: 1 });
    expect(s.players).toBe(players);
    expect(s.capacity).toBe(capacity);
    expect(s.utilization).toBe(utilization);
    expect(s.queuedJobs).toBe(3);
    expect(Object.values(s.nodes).reduce((a, b) => a + b, 0)).toBe(nodes.length);
  });
});
