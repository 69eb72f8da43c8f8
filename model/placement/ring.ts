/**
 * Pure placement decisions: a consistent-hash ring with virtual nodes, and the bounded-load rule
 * ("consistent hashing with bounded loads", Mirrokni et al.): a key goes to the first node
 * clockwise from its hash whose load is below both its capacity and ceil(factor × mean), where
 * the mean counts the key being placed. No I/O; the Redis placement runs the same rule in Lua.
 */

/** Virtual nodes per node on the ring: enough that 3+ nodes split the ring within a few percent. */
export const DEFAULT_VNODES = 160;
/** No node gets a new room while it holds ceil(1.25 × mean) or more. */
export const DEFAULT_LOAD_FACTOR = 1.25;

/** 32-bit FNV-1a followed by murmur3's finaliser (FNV alone clusters on similar strings). */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A consistent-hash ring over node ids. Immutable; build a new one when the node set changes. */
export class HashRing {
  private readonly points: Uint32Array;
  private readonly owners: string[];
  readonly nodeIds: readonly string[];

  constructor(nodeIds: readonly string[], vnodes = DEFAULT_VNODES) {
    this.nodeIds = [...new Set(nodeIds)].sort();
    const pts: { p: number; id: string }[] = [];
    for (const id of this.nodeIds) for (let v = 0; v < vnodes; v++) pts.push({ p: hash32(`${id}#${v}`), id });
    // Ties (astronomically rare) are broken by id so every gateway builds the same ring.
    pts.sort((a, b) => a.p - b.p || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    this.points = Uint32Array.from(pts.map((x) => x.p));
    this.owners = pts.map((x) => x.id);
  }

  /** Every node id, each once, in clockwise order starting at the key's position. */
  order(key: string): string[] {
    const n = this.points.length;
    if (n === 0) return [];
    const h = hash32(key);
    // First point >= h (binary search); wraps to 0.
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.points[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    const out: string[] = [];
    const seen = new Set<string>();
    for (let i = 0; i < n && out.length < this.nodeIds.length; i++) {
      const id = this.owners[(lo + i) % n]!;
      if (!seen.has(id)) {
        seen.add(id);
        out.push(id);
      }
    }
    return out;
  }
}

/** A candidate node's load as placement sees it. */
export interface NodeLoad {
  /** Rooms on the node now. */
  load: number;
  /** Rooms it may hold at most. */
  capacity: number;
}

/** ceil(factor × mean), the mean counting the item being placed. */
export function loadBound(totalLoad: number, nodeCount: number, factor = DEFAULT_LOAD_FACTOR): number {
  if (nodeCount <= 0) return 0;
  return Math.ceil((factor * (totalLoad + 1)) / nodeCount);
}

/**
 * The node for one new item: first in ring `order` whose load is below min(capacity, bound).
 * Nodes missing from `loads` are not candidates (not ready, draining, other region). Undefined
 * when every candidate is full.
 */
export function chooseNode(order: readonly string[], loads: ReadonlyMap<string, NodeLoad>, factor = DEFAULT_LOAD_FACTOR): string | undefined {
  let total = 0;
  let count = 0;
  for (const id of order) {
    const l = loads.get(id);
    if (!l) continue;
    total += l.load;
    count++;
  }
  const bound = loadBound(total, count, factor);
  for (const id of order) {
    const l = loads.get(id);
    if (l && l.load < l.capacity && l.load < bound) return id;
  }
  return undefined;
}

/** Caches the ring for the current node set: rebuilding costs vnodes × nodes hashes. */
export class RingCache {
  private key = "";
  private ring = new HashRing([]);
  constructor(private readonly vnodes = DEFAULT_VNODES) {}
  get(nodeIds: readonly string[]): HashRing {
    const key = [...nodeIds].sort().join(",");
    if (key !== this.key) {
      this.ring = new HashRing(nodeIds, this.vnodes);
      this.key = key;
    }
    return this.ring;
  }
}
