/**
 * In-memory placement with the same rule as RedisPlacement (ring order + bounded load, placements
 * kept while their node lives), for unit tests and single-process tools. One difference: every room
 * counts as one seat here — `seats` (a room's maxPlayers) is weighed only by RedisPlacement, whose
 * integration tests cover it.
 */
import { noCapacity } from "../../core/errors.ts";
import type { NodeRegistry } from "../node-registry.ts";
import type { NodeRecord } from "../../core/types.ts";
import type { Placement } from "../contracts.ts";
import { placementCandidates, placementIsLive, roomCapacity } from "./candidates.ts";
import { chooseNode, DEFAULT_LOAD_FACTOR, RingCache, type NodeLoad } from "./ring.ts";

export class MemoryPlacement implements Placement {
  private readonly roomNode = new Map<string, string>();
  private readonly nodeRooms = new Map<string, Set<string>>();
  private readonly rings = new RingCache();

  constructor(
    private readonly nodes: NodeRegistry,
    private readonly factor = DEFAULT_LOAD_FACTOR,
  ) {}

  async nodeForRoom(roomCode: string): Promise<NodeRecord | undefined> {
    const id = this.roomNode.get(roomCode);
    return id ? this.nodes.get(id) : undefined;
  }

  async placeRoom(roomCode: string, opts: { region?: string; now: number }): Promise<NodeRecord> {
    const existing = this.roomNode.get(roomCode);
    if (existing) {
      const node = await this.nodes.get(existing);
      if (node && placementIsLive(node)) return node;
      this.forget(roomCode, existing);
    }
    const candidates = placementCandidates(await this.nodes.list(), opts.region);
    const loads = new Map<string, NodeLoad>(candidates.map((n) => [n.id, { load: this.roomsOn(n.id), capacity: roomCapacity(n) }]));
    const order = this.rings.get(candidates.map((n) => n.id)).order(roomCode);
    const id = chooseNode(order, loads, this.factor);
    if (!id) throw noCapacity("no ready game server has room for a new room");
    this.roomNode.set(roomCode, id);
    let set = this.nodeRooms.get(id);
    if (!set) this.nodeRooms.set(id, (set = new Set()));
    set.add(roomCode);
    return (await this.nodes.get(id))!;
  }

  async releaseRoom(roomCode: string): Promise<void> {
    const id = this.roomNode.get(roomCode);
    if (id) this.forget(roomCode, id);
  }

  /** Rooms placed on a node. */
  roomsOn(nodeId: string): number {
    return this.nodeRooms.get(nodeId)?.size ?? 0;
  }

  private forget(roomCode: string, nodeId: string): void {
    this.roomNode.delete(roomCode);
    this.nodeRooms.get(nodeId)?.delete(roomCode);
  }
}
