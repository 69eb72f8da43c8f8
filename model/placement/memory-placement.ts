/**
 * In-memory placement with the same rules as RedisPlacement — ring order, bounded load, placements
 * kept while their node lives, and the seat budget (a room takes its maxPlayers seats, at most the
 * node's capacity; a player session takes one; max(reported, reserved) must fit the capacity) —
 * for unit tests and single-process tools. It writes the node records' `reservedRooms` /
 * `reservedSeats` as the Redis seat budget does, so everything that reads node records (the
 * autoscaler, /v1/capacity) sees the same numbers. test/support/placement-conformance.ts runs one
 * suite against both implementations.
 */
import { noCapacity } from "../../core/errors.ts";
import type { NodeRegistry } from "../node-registry.ts";
import type { NodeRecord } from "../../core/types.ts";
import type { PlaceOptions, Placement } from "../contracts.ts";
import { roomSeatsOn } from "../seat-budget.ts";
import { byVersion, placementCandidates, placementCandidatesIn, placementIsLive } from "./candidates.ts";
import { versionForNewRoom, type RolloutStore } from "../rollouts.ts";
import { loadBound, DEFAULT_LOAD_FACTOR, RingCache } from "./ring.ts";

interface NodeReservations {
  rooms: Set<string>;
  /** room code → seats it takes */
  roomSeats: Map<string, number>;
  /** session ids holding a seat */
  sessionSeats: Set<string>;
}

export class MemoryPlacement implements Placement {
  private readonly roomNode = new Map<string, string>();
  private readonly reservations = new Map<string, NodeReservations>();
  private readonly rings = new RingCache();

  constructor(
    private readonly nodes: NodeRegistry,
    private readonly factor = DEFAULT_LOAD_FACTOR,
    /** Fleet versions: the version a new room goes to first (see candidates.ts byVersion). Default: none. */
    private readonly versions?: Pick<RolloutStore, "routing" | "canaryTicket">,
  ) {}

  async nodeForRoom(roomCode: string): Promise<NodeRecord | undefined> {
    const id = this.roomNode.get(roomCode);
    return id ? this.nodes.get(id) : undefined;
  }

  async placeRoom(roomCode: string, opts: PlaceOptions): Promise<NodeRecord> {
    const placed = await this.place(roomCode, opts.region, "", opts.seats ?? 1, opts.regions);
    if (!placed) throw noCapacity("no ready game server has room for a new room");
    return placed;
  }

  async placeRoomWithSeat(roomCode: string, seatHolder: string, region?: string, regions?: readonly string[]): Promise<NodeRecord | undefined> {
    return this.place(roomCode, region, seatHolder, 1, regions);
  }

  async releaseRoom(roomCode: string): Promise<void> {
    const id = this.roomNode.get(roomCode);
    if (id) await this.release(roomCode, id, "");
  }

  async release(roomCode: string, nodeId: string, seatHolder = ""): Promise<void> {
    if (this.roomNode.get(roomCode) === nodeId) this.roomNode.delete(roomCode);
    const r = this.reservations.get(nodeId);
    if (!r) return;
    r.rooms.delete(roomCode);
    r.roomSeats.delete(roomCode);
    if (seatHolder) r.sessionSeats.delete(seatHolder);
    await this.recount(nodeId);
  }

  /** Rooms placed on a node. */
  roomsOn(nodeId: string): number {
    return this.reservations.get(nodeId)?.rooms.size ?? 0;
  }

  private res(nodeId: string): NodeReservations {
    let r = this.reservations.get(nodeId);
    if (!r) this.reservations.set(nodeId, (r = { rooms: new Set(), roomSeats: new Map(), sessionSeats: new Set() }));
    return r;
  }

  private reservedSeats(nodeId: string): number {
    const r = this.reservations.get(nodeId);
    if (!r) return 0;
    let seats = r.sessionSeats.size;
    for (const s of r.roomSeats.values()) seats += s;
    return seats;
  }

  private async recount(nodeId: string): Promise<void> {
    await this.nodes.update(nodeId, { reservedRooms: this.roomsOn(nodeId), reservedSeats: this.reservedSeats(nodeId) });
  }

  private async place(roomCode: string, region: string | undefined, seatHolder: string, seats: number, regions?: readonly string[]): Promise<NodeRecord | undefined> {
    const existing = this.roomNode.get(roomCode);
    if (existing) {
      const node = await this.nodes.get(existing);
      if (placementIsLive(node)) return node;
      await this.release(roomCode, existing, "");
    }
    const all = await this.nodes.list();
    const { want, active } = this.versions ? await versionForNewRoom(this.versions) : { want: undefined, active: "" };
    const groups = (regions ? regions.map((r) => placementCandidatesIn(all, r)) : [placementCandidates(all, region)]).flatMap((c) => byVersion(c, want, active));
    for (const candidates of groups) {
      const placed = await this.placeAmong(roomCode, candidates, seatHolder, seats);
      if (placed) return placed;
    }
    return undefined;
  }

  private async placeAmong(roomCode: string, candidates: NodeRecord[], seatHolder: string, seats: number): Promise<NodeRecord | undefined> {
    const byId = new Map(candidates.map((n) => [n.id, n]));
    const order = this.rings.get(candidates.map((n) => n.id)).order(roomCode);
    const total = candidates.reduce((a, n) => a + this.roomsOn(n.id), 0);
    const bound = loadBound(total, candidates.length, this.factor);
    for (const id of order) {
      const n = byId.get(id)!;
      const rooms = this.roomsOn(id);
      const want = seatHolder ? 1 : roomSeatsOn(n, seats);
      const used = Math.max(this.reservedSeats(id), n.players);
      if (rooms < n.maxRooms && rooms < bound && used + want <= n.capacity) {
        this.roomNode.set(roomCode, id);
        const r = this.res(id);
        r.rooms.add(roomCode);
        if (seatHolder) r.sessionSeats.add(seatHolder);
        else r.roomSeats.set(roomCode, want);
        await this.recount(id);
        return this.nodes.get(id);
      }
    }
    return undefined;
  }
}
