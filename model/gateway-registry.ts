/**
 * Gateway replicas register themselves with a heartbeat; the HAProxy templater lists the live ones
 * into `backend gateways`. A replica whose heartbeat is older than its TTL is not live (and is
 * pruned by whoever lists next), so a killed gateway leaves the edge within one TTL.
 */
import type { Keys } from "../core/keys.ts";
import type { Redis } from "../core/redis.ts";
import type { GatewayEvent, GatewayRecord } from "../core/types.ts";

export class GatewayRegistry {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    /** A replica is live while its last heartbeat is younger than this. */
    private readonly ttlMs: number,
  ) {}

  /** Registers or refreshes a replica; publishes `up` the first time it is seen. */
  async heartbeat(g: Omit<GatewayRecord, "lastSeenAt">, now: number): Promise<void> {
    const key = this.keys.gateway(g.id);
    const res = await this.redis
      .multi()
      .zadd(this.keys.gateways, String(now), g.id)
      .hset(key, { id: g.id, host: g.host, port: String(g.port), region: g.region ?? "", publicUrl: g.publicUrl ?? "", startedAt: String(g.startedAt), lastSeenAt: String(now) })
      .pexpire(key, this.ttlMs)
      .exec();
    const added = res?.[0]?.[1];
    if (added === 1) await this.publish({ type: "gateway", gatewayId: g.id, change: "up", at: now });
  }

  async deregister(gatewayId: string, now: number): Promise<void> {
    await this.redis.multi().zrem(this.keys.gateways, gatewayId).del(this.keys.gateway(gatewayId)).exec();
    await this.publish({ type: "gateway", gatewayId, change: "down", at: now });
  }

  /** Live replicas, sorted by id. Prunes dead ones (and says so on the channel). */
  async list(now: number): Promise<GatewayRecord[]> {
    const dead = await this.redis.zrangebyscore(this.keys.gateways, "-inf", `${now - this.ttlMs}`);
    for (const id of dead) {
      if ((await this.redis.zrem(this.keys.gateways, id)) === 1) await this.publish({ type: "gateway", gatewayId: id, change: "down", at: now });
    }
    const ids = await this.redis.zrange(this.keys.gateways, "0", "-1");
    const out: GatewayRecord[] = [];
    for (const id of ids) {
      const h = await this.redis.hgetall(this.keys.gateway(id));
      if (!h.id) continue;
      out.push({ id: h.id, host: h.host ?? "127.0.0.1", port: Number(h.port), region: h.region ?? "", publicUrl: h.publicUrl ?? "", startedAt: Number(h.startedAt), lastSeenAt: Number(h.lastSeenAt) });
    }
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }

  private async publish(e: GatewayEvent): Promise<void> {
    await this.redis.publish(this.keys.gatewayEventsChannel, JSON.stringify(e));
  }
}
