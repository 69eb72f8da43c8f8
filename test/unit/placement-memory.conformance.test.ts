import { expect, test } from "bun:test";
import { MemoryNodeRegistry } from "../../model/node-registry.ts";
import { MemoryPlacement } from "../../model/placement/memory-placement.ts";
import { makeNode } from "../support/nodes.ts";
import { placementConformance } from "../support/placement-conformance.ts";

placementConformance("MemoryPlacement", () => {
  const registry = new MemoryNodeRegistry();
  return { registry, placement: new MemoryPlacement(registry) };
});

test("MemoryPlacement: its own room count agrees with the record's reservedRooms", async () => {
  const registry = new MemoryNodeRegistry();
  const p = new MemoryPlacement(registry);
  await registry.create(makeNode({ id: "n1", capacity: 8, maxRooms: 8 }), 1);
  for (const code of ["room-a", "room-b", "room-c"]) await p.placeRoom(code, { now: 1, seats: 2 });
  await p.releaseRoom("room-b");
  expect(p.roomsOn("n1")).toBe(2);
  expect((await registry.get("n1"))!).toMatchObject({ reservedRooms: 2, reservedSeats: 4 });
});
