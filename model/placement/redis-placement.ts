/**
 * Room placement in Redis. The ring order comes from the pure module; the bounded-load choice, the
 * write and the seat reservation happen in one atomic step of the seat budget (model/seat-budget.ts),
 * so two gateways placing the same new room at once agree (the second sees the first's
 * `room → node` and returns it), and two rooms racing for a node's last seats cannot both get them.
 * The placement is never recomputed while the room lives.
 */
import { noCapacity } from "../../core/errors.ts";
import type { Keys } from "../../core/keys.ts";
import type { NodeRegistry } from "../node-registry.ts";
import type { Redis } from "../../core/redis.ts";
import type { NodeRecord } from "../../core/types.ts";
import type { PlaceOptions, Placement } from "../contracts.ts";
import { byVersion, placementCandidates, placementCandidatesIn, placementIsLive } from "./candidates.ts";
import { RedisRolloutStore, versionForNewRoom, type RolloutStore } from "../rollouts.ts";
import { DEFAULT_LOAD_FACTOR, RingCache } from "./ring.ts";
import { SeatBudget } from "../seat-budget.ts";

export interface RedisPlacementOptions {
  /** Bounded-load factor. Default 1.25. */
  loadFactor?: number;
  /**
   * Fleet versions (model/rollouts.ts): which version a new room goes to. Default: the Redis store
   * of this prefix — until a rollout has stored an active version, no version is preferred.
   */
  versions?: Pick<RolloutStore, "routing" | "canaryTicket">;
}

export class RedisPlacement implements Placement {
  private readonly rings = new RingCache();
  private readonly factor: number;
  private readonly budget: SeatBudget;
  private readonly versions: Pick<RolloutStore, "routing" | "canaryTicket">;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly nodes: NodeRegistry,
    opts: RedisPlacementOptions = {},
  ) {
    this.factor = opts.loadFactor ?? DEFAULT_LOAD_FACTOR;
    this.budget = new SeatBudget(redis, keys);
    this.versions = opts.versions ?? new RedisRolloutStore(redis, keys, { version: "", image: "" });
  }

  async nodeForRoom(roomCode: string): Promise<NodeRecord | undefined> {
    const id = await this.redis.get(this.keys.roomNode(roomCode));
    return id ? this.nodes.get(id) : undefined;
  }

  async placeRoom(roomCode: string, opts: PlaceOptions): Promise<NodeRecord> {
    const placed = await this.place(roomCode, opts.region, "", opts.seats ?? 1, opts.regions);
    if (!placed) throw noCapacity("no ready game server has room for a new room");
    return placed;
  }

  /**
   * Places a new room and reserves one player seat on its node in the same atomic step (player
   * sessions: MAX_PLAYERS_PER_SERVER bounds the seats). Undefined when no ready node has both.
   * With `regions`, only nodes of those regions, the first region with a free seat winning.
   */
  async placeRoomWithSeat(roomCode: string, seatHolder: string, region?: string, regions?: readonly string[]): Promise<NodeRecord | undefined> {
    return this.place(roomCode, region, seatHolder, 1, regions);
  }

  async releaseRoom(roomCode: string): Promise<void> {
    const id = await this.redis.get(this.keys.roomNode(roomCode));
    if (id) await this.release(roomCode, id, "");
  }

  /** Forgets a room placed on `nodeId` and frees the seat `seatHolder` held there. Idempotent. */
  async release(roomCode: string, nodeId: string, seatHolder: string): Promise<void> {
    await this.budget.release(roomCode, nodeId, seatHolder);
  }

  private async place(roomCode: string, region: string | undefined, seat: string, seats: number, regions?: readonly string[]): Promise<NodeRecord | undefined> {
    const roomKey = this.keys.roomNode(roomCode);
    // Existing placement: kept while its node lives (draining included), whatever the ring says now.
    let stale = "";
    const existing = await this.redis.get(roomKey);
    if (existing) {
      const node = await this.nodes.get(existing);
      if (placementIsLive(node)) return node;
      stale = existing;
    }
    const all = await this.nodes.list();
    // Regions in the player's order, each its own bounded-load choice; without them, the legacy rule.
    const byRegion = regions ? regions.map((r) => placementCandidatesIn(all, r)) : [placementCandidates(all, region)];
    // Within each region, the version the room should run first (a rollout's target, a canary's share).
    const { want, active } = await versionForNewRoom(this.versions);
    const groups = byRegion.flatMap((c) => byVersion(c, want, active));
    let r: Awaited<ReturnType<SeatBudget["reserve"]>> | undefined;
    for (const candidates of groups) {
      if (candidates.length === 0) continue;
      const order = this.rings.get(candidates.map((n) => n.id)).order(roomCode);
      r = await this.budget.reserve(roomCode, order, { loadFactor: this.factor, seatHolder: seat, seats, stale });
      if (r.status !== "full") break;
    }
    if (!r || r.status === "full") return undefined;
    const nodeId = r.nodeId;
    if (stale && r.status === "placed") await this.release(roomCode, stale, "").catch(() => {});
    if (r.status === "already" && seat) return undefined; // someone else placed this (new, unique) room: not ours
    const node = await this.nodes.get(nodeId);
    return node;
  }
}
