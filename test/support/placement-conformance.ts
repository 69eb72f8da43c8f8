/**
 * One placement suite, run against MemoryPlacement (test/unit/placement-memory.conformance.test.ts)
 * and RedisPlacement on real Redis (test/integration/placement-redis.conformance.test.ts): the ring
 * with bounded load, rooms that never move, and the seat budget — what is reserved on a node is
 * kept apart from what the node reports, and both count against its capacity.
 */
import { describe, expect, test } from "bun:test";
import { AppError } from "../../core/errors.ts";
import type { NodeRecord } from "../../core/types.ts";
import type { Placement } from "../../model/contracts.ts";
import type { NodeRegistry } from "../../model/node-registry.ts";
import { usedSeats } from "../../model/seat-budget.ts";
import { makeNode } from "./nodes.ts";

export interface PlacementUnderTest {
  placement: Placement;
  registry: NodeRegistry;
}

const NOW = 1_700_000_000_000;

export function placementConformance(name: string, make: () => Promise<PlacementUnderTest> | PlacementUnderTest, cleanup: () => Promise<void> = async () => {}): void {
  describe(`placement conformance: ${name}`, () => {
    async function setup(nodes: number, over: Partial<NodeRecord> = {}): Promise<PlacementUnderTest> {
      const t = await make();
      for (let i = 0; i < nodes; i++) await t.registry.create(makeNode({ id: `node-${i}`, capacity: 10_000, maxRooms: 10_000, ...over }), NOW);
      return t;
    }
    const reserved = async (t: PlacementUnderTest, id: string) => {
      const n = (await t.registry.get(id))!;
      return { rooms: n.reservedRooms, seats: n.reservedSeats, players: n.players };
    };

    test("bounded load: 400 rooms on 4 nodes, none above ceil(1.25 × mean); a room keeps its node", async () => {
      const t = await setup(4);
      try {
        const placed = new Map<string, string>();
        for (let i = 0; i < 400; i++) placed.set(`room-${i}`, (await t.placement.placeRoom(`room-${i}`, { now: NOW })).id);
        const counts = await Promise.all([0, 1, 2, 3].map(async (i) => (await reserved(t, `node-${i}`)).rooms));
        expect(counts.reduce((a, b) => a + b, 0)).toBe(400);
        expect(Math.max(...counts)).toBeLessThanOrEqual(125);
        await t.registry.create(makeNode({ id: "node-new", capacity: 10_000, maxRooms: 10_000 }), NOW);
        let moved = 0;
        for (const [code, id] of placed) if ((await t.placement.placeRoom(code, { now: NOW })).id !== id) moved++;
        expect(moved).toBe(0);
      } finally {
        await cleanup();
      }
    });

    test("draining, starting and unhealthy nodes take no new room; a draining node keeps its rooms", async () => {
      const t = await setup(3);
      try {
        const first = await t.placement.placeRoom("keep-me", { now: NOW });
        await t.registry.transition(first.id, "draining", NOW);
        expect((await t.placement.placeRoom("keep-me", { now: NOW })).id).toBe(first.id);
        for (let i = 0; i < 30; i++) expect((await t.placement.placeRoom(`new-${i}`, { now: NOW })).id).not.toBe(first.id);
        for (const n of await t.registry.list()) if (n.id !== first.id) await t.registry.transition(n.id, "draining", NOW);
        await expect(t.placement.placeRoom("nowhere", { now: NOW })).rejects.toBeInstanceOf(AppError);
      } finally {
        await cleanup();
      }
    });

    test("seats: 8-player lobbies on 32-seat nodes fit 4 a node; the record shows 32 reserved, 0 reported", async () => {
      const t = await setup(2, { capacity: 32, maxRooms: 32 });
      try {
        const r = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => t.placement.placeRoom(`lobby-${i}`, { now: NOW, seats: 8 })));
        expect(r.filter((x) => x.status === "fulfilled").length).toBe(8);
        for (const id of ["node-0", "node-1"]) {
          expect(await reserved(t, id)).toEqual({ rooms: 4, seats: 32, players: 0 });
          expect(usedSeats((await t.registry.get(id))!)).toBe(32);
        }
        // Full: no session seat fits; releasing a lobby frees its 8 seats.
        expect(await t.placement.placeRoomWithSeat("s-room", "s_holder")).toBeUndefined();
        const freed = (await t.placement.nodeForRoom("lobby-0"))!.id;
        await t.placement.releaseRoom("lobby-0");
        expect(await reserved(t, freed)).toEqual({ rooms: 3, seats: 24, players: 0 });
        expect((await t.placement.placeRoomWithSeat("s-room", "s_holder"))?.id).toBe(freed);
        expect((await reserved(t, freed)).seats).toBe(25);
      } finally {
        await cleanup();
      }
    });

    test("reported players count too: a node reporting 30 of 32 takes no 8-player room", async () => {
      const t = await setup(1, { capacity: 32, maxRooms: 32 });
      try {
        await t.registry.update("node-0", { players: 30 });
        await expect(t.placement.placeRoom("big-room", { now: NOW, seats: 8 })).rejects.toBeInstanceOf(AppError);
        expect((await t.placement.placeRoom("small", { now: NOW, seats: 2 })).id).toBe("node-0");
      } finally {
        await cleanup();
      }
    });

    test("one server per match: a room of 8 takes a capacity-1 node whole (one seat, not eight)", async () => {
      const t = await setup(2, { capacity: 1, maxRooms: 1 });
      try {
        const a = await t.placement.placeRoom("match-a", { now: NOW, seats: 8 });
        const b = await t.placement.placeRoom("match-b", { now: NOW, seats: 8 });
        expect(a.id).not.toBe(b.id);
        expect(await reserved(t, a.id)).toEqual({ rooms: 1, seats: 1, players: 0 });
        await expect(t.placement.placeRoom("match-c", { now: NOW, seats: 8 })).rejects.toBeInstanceOf(AppError);
      } finally {
        await cleanup();
      }
    });

    test("session seats never exceed the capacity; a room whose node is gone is placed again", async () => {
      const t = await setup(3, { capacity: 2, maxRooms: 2 });
      try {
        const got = [];
        for (let i = 0; i < 8; i++) got.push(await t.placement.placeRoomWithSeat(`sess-${i}`, `holder-${i}`));
        expect(got.filter(Boolean).length).toBe(6);
        for (let i = 0; i < 3; i++) expect((await reserved(t, `node-${i}`)).seats).toBe(2);
        const lost = (await t.placement.nodeForRoom("sess-0"))!.id;
        await t.registry.transition(lost, "unhealthy", NOW);
        // releaseRoom frees the room, not a session's seat (that is the session's own release).
        await t.placement.releaseRoom("sess-1");
        expect(await t.placement.placeRoomWithSeat("sess-extra", "holder-extra")).toBeUndefined();
        // sess-0's node is lost: placing the room again picks a live node with a free seat.
        await t.registry.create(makeNode({ id: "node-spare", capacity: 2, maxRooms: 2 }), NOW);
        const again = await t.placement.placeRoom("sess-0", { now: NOW });
        expect(again.id).toBe("node-spare");
      } finally {
        await cleanup();
      }
    });

    test("regions: the first open region with room wins, never a node outside them", async () => {
      const t = await make();
      try {
        for (const [id, region] of [["us-1", "us"], ["eu-1", "eu"], ["ap-1", "ap"]] as const) await t.registry.create(makeNode({ id, region, capacity: 8, maxRooms: 10 }), NOW);
        // Rooms of 8 on 8-seat nodes: one per node.
        expect((await t.placement.placeRoom("room-us", { now: NOW, seats: 8, regions: ["us"] })).id).toBe("us-1");
        // us is full: with only us open there is nothing, whatever is free elsewhere.
        await expect(t.placement.placeRoom("room-wait", { now: NOW, seats: 8, regions: ["us"] })).rejects.toBeInstanceOf(AppError);
        expect(await t.placement.nodeForRoom("room-wait")).toBeUndefined();
        // Fallbacks open: the next region in the player's order, not the ring's choice.
        expect((await t.placement.placeRoom("room-wait", { now: NOW, seats: 8, regions: ["us", "eu", "ap"] })).id).toBe("eu-1");
        expect((await t.placement.placeRoom("room-3", { now: NOW, seats: 8, regions: ["us", "eu", "ap"] })).id).toBe("ap-1");
        // A region with no node at all is skipped; an unlisted region is never used.
        await t.registry.create(makeNode({ id: "sa-1", region: "sa", capacity: 8, maxRooms: 10 }), NOW);
        await expect(t.placement.placeRoom("room-4", { now: NOW, seats: 8, regions: ["mars", "us", "eu"] })).rejects.toBeInstanceOf(AppError);
        // Sessions walk the regions the same way.
        expect((await t.placement.placeRoomWithSeat("sess-us", "h-1", "us", ["us", "sa"]))?.id).toBe("sa-1");
        // A placed room stays where it is, whatever regions a later call names.
        expect((await t.placement.placeRoom("room-wait", { now: NOW, regions: ["us"] })).id).toBe("eu-1");
      } finally {
        await cleanup();
      }
    });
  });
}
