/**
 * Builds the gateway's real dependencies from a Config (Redis registry, queues, scheduler client,
 * JWT keys). Used by gateway/main.ts and by tests/benchmarks that run a real gateway in-process;
 * it opens connections but reads no environment.
 */
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { realClock, type Clock } from "../../core/clock.ts";
import type { Config } from "../../core/config.ts";
import { GatewayRegistry } from "../../model/gateway-registry.ts";
import { createKeys } from "../../core/keys.ts";
import { createLogger, type Logger } from "../../core/log.ts";
import { MetricsRegistry } from "../../core/metrics.ts";
import { RedisNodeRegistry } from "../../model/node-registry.ts";
import { createRedis } from "../../core/redis.ts";
import { isRedisUnavailable, RedisOutageWatch } from "../../core/redis-outage.ts";
import { createQueues, createSchedulerClient } from "../../model/jobs.ts";
import { JwtAuthenticator, jwtKeysFromConfig } from "../auth/jwt.ts";
import type { GatewayDeps } from "../deps.ts";
import { RedisPlacement } from "../../model/placement/redis-placement.ts";
import { createSeatChecker } from "../../model/rooms/seat-check.ts";
import { createRoomPresence } from "../../model/rooms/presence.ts";

export interface BuiltDeps {
  deps: GatewayDeps;
  /** Redis outages of this gateway's connections (logged once each way; recovery hooks). */
  outage: RedisOutageWatch;
  /** Closes the queues and every Redis connection made here. */
  close(): Promise<void>;
}

/** A replica id: GATEWAY_ID, else host name plus a random suffix (several replicas per host). */
export function gatewayIdFor(config: Pick<Config, "gatewayId">): string {
  const host = hostname().replace(/[^A-Za-z0-9_.-]/g, "-").slice(0, 40) || "host";
  return config.gatewayId ?? `gw-${host}-${randomBytes(3).toString("hex")}`;
}

export function buildGatewayDeps(config: Config, opts: { jwtSecret: string | undefined; clock?: Clock; log?: Logger }): BuiltDeps {
  const clock = opts.clock ?? realClock;
  const log = opts.log ?? createLogger("gateway", config.logLevel, { format: config.logFormat });
  const keys = createKeys(config.redisPrefix);
  const redis = createRedis(config);
  // Request paths fail fast while Redis is unreachable (503 REDIS_UNAVAILABLE) instead of waiting
  // in ioredis's offline queue until it is back. Subscriber connections (newRedis) keep no timeout.
  redis.options.commandTimeout = config.redisCommandTimeoutMs;
  // One log line when Redis goes away and one when it is back, not one per reconnect attempt.
  const outage = new RedisOutageWatch(log);
  outage.watch(redis);
  const extra: ReturnType<typeof createRedis>[] = [];
  const newRedis = () => {
    const r = createRedis(config);
    outage.watch(r);
    extra.push(r);
    return r;
  };
  const nodes = new RedisNodeRegistry(redis, keys, newRedis);
  const gateways = new GatewayRegistry(redis, keys, config.gatewayHeartbeatMs * 3);
  const jwt = new JwtAuthenticator(jwtKeysFromConfig(config, opts.jwtSecret), config.jwtTtlMs, clock);
  // A connection of its own (maxRetriesPerRequest: null, as BullMQ needs); closed with the queues.
  const queueConnection = newRedis();
  // Adding a job is on a request path (join, scale): bounded like the command connection.
  queueConnection.options.commandTimeout = config.redisCommandTimeoutMs;
  const queues = createQueues(queueConnection, keys);
  // A queue re-emits its connection's errors, one per reconnect attempt (printed with a stack when
  // nobody listens): the outage watch reports the outage once, a failed add rejects its request.
  for (const q of queues.all()) q.on("error", (err: Error) => !outage.outage && !isRedisUnavailable(err) && log.warn("job queue error", { error: err.message }));
  const scheduler = createSchedulerClient(queues);
  const partial = { config, keys, redis, newRedis, clock, log, metrics: new MetricsRegistry({ processMetrics: true }), nodes, gateways, auth: jwt, signer: jwt, placement: new RedisPlacement(redis, keys, nodes), scheduler, queues, gatewayId: gatewayIdFor(config) };
  const deps: GatewayDeps = { ...partial, seats: createSeatChecker(partial), presence: createRoomPresence(partial) };
  return {
    deps,
    outage,
    async close() {
      await queues.close().catch(() => {});
      for (const r of extra) r.disconnect();
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
