/**
 * Gateway replicas register themselves with a heartbeat; the HAProxy templater lists the live ones
 * into `backend gateways`. A replica whose heartbeat is older than its TTL is not live: `list` leaves
 * it out (a pure read — it never deletes or publishes), the templater re-renders when the oldest
 * listed heartbeat expires, so a killed gateway leaves the edge within one TTL; the entries of
 * dead replicas are pruned by the next heartbeat of a live one (a write).
 */
import type { Keys } from "../core/keys.ts";
import type { Redis } from "../core/redis.ts";
import type { GatewayEvent, GatewayRecord } from "../core/types.ts";

export class GatewayRegistry {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    /** A replica is live while its last heartbeat is younger than this. */
    readonly ttlMs: number,
  ) {}

  /**
   * Registers or refreshes a replica; publishes `up` when it was not registered (first beat, or its
   * record expired — e.g. across a Redis outage longer than the TTL). Prunes replicas dead for two
   * TTLs from the set (`list` already leaves them out).
   */
  async heartbeat(g: Omit<GatewayRecord, "lastSeenAt">, now: number): Promise<void> {
    const key = this.keys.gateway(g.id);
    const res = await this.redis
      .multi()
      .zadd(this.keys.gateways, String(now), g.id)
      .hset(key, { id: g.id, host: g.host, port: String(g.port), region: g.region ?? "", publicUrl: g.publicUrl ?? "", startedAt: String(g.startedAt), lastSeenAt: String(now) })
      .pexpire(key, this.ttlMs)
      .zremrangebyscore(this.keys.gateways, "-inf", `(${now - 2 * this.ttlMs}`)
      .exec();
    const added = res?.[0]?.[1];
    const newFields = res?.[1]?.[1];
    if (added === 1 || (typeof newFields === "number" && newFields > 0)) await this.publish({ type: "gateway", gatewayId: g.id, change: "up", at: now });
  }

  async deregister(gatewayId: string, now: number): Promise<void> {
    await this.redis.multi().zrem(this.keys.gateways, gatewayId).del(this.keys.gateway(gatewayId)).exec();
    await this.publish({ type: "gateway", gatewayId, change: "down", at: now });
  }

  /** Live replicas (last heartbeat younger than the TTL), sorted by id. A pure read. */
  async list(now: number): Promise<GatewayRecord[]> {
    const ids = await this.redis.zrangebyscore(this.keys.gateways, `(${now - this.ttlMs}`, "+inf");
    if (ids.length === 0) return [];
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.hgetall(this.keys.gateway(id));
    const out: GatewayRecord[] = [];
    for (const [err, raw] of (await pipe.exec()) ?? []) {
      if (err) throw err;
      const h = raw as Record<string, string>;
      if (!h.id) continue;
      out.push({ id: h.id, host: h.host ?? "127.0.0.1", port: Number(h.port), region: h.region ?? "", publicUrl: h.publicUrl ?? "", startedAt: Number(h.startedAt), lastSeenAt: Number(h.lastSeenAt) });
    }
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }

  private async publish(e: GatewayEvent): Promise<void> {
    await this.redis.publish(this.keys.gatewayEventsChannel, JSON.stringify(e));
  }
}
