/**
 * This replica's presence in the GatewayRegistry: a heartbeat every GATEWAY_HEARTBEAT (the
 * registry's TTL is three of them, so one missed beat is tolerated) and a deregistration on
 * shutdown, so HAProxy's `backend gateways` lists exactly the live replicas.
 */
import type { Clock, TimerHandle } from "../../core/clock.ts";
import type { GatewayRegistry } from "../../model/gateway-registry.ts";
import type { Logger } from "../../core/log.ts";
import type { GatewayRecord } from "../../core/types.ts";

export interface ReplicaPresence {
  /** Stops the heartbeat and removes the replica from the registry. */
  stop(): Promise<void>;
}

export async function startReplicaHeartbeat(
  registry: GatewayRegistry,
  self: Omit<GatewayRecord, "lastSeenAt">,
  opts: {
    clock: Clock;
    intervalMs: number;
    log: Logger;
    /**
     * Subscribes to "Redis is reachable again" (RedisOutageWatch.onRecover): the replica
     * re-registers at that moment, not at its next beat, so an outage longer than the registry TTL
     * keeps it off the edge for no longer than the reconnect takes.
     */
    onRedisRecovered?: (fn: () => void) => () => void;
  },
): Promise<ReplicaPresence> {
  let failing = false;
  let stopped = false;
  const beat = () =>
    registry.heartbeat(self, opts.clock.now()).then(
      () => {
        if (failing) opts.log.info("gateway heartbeat registered again");
        failing = false;
      },
      (err: unknown) => {
        // Once per failure streak: the Redis outage itself is logged by RedisOutageWatch.
        if (!failing) opts.log.warn("gateway heartbeat failed; retrying every beat", { error: err instanceof Error ? err.message : String(err) });
        failing = true;
      },
    );
  // Redis unreachable at start: the replica serves anyway and registers at the next beat, or the
  // moment Redis is back (a failed first beat is logged, not thrown).
  await beat();
  const timer: TimerHandle = opts.clock.setInterval(() => void beat(), opts.intervalMs);
  const unsubscribe = opts.onRedisRecovered?.(() => {
    if (!stopped) void beat();
  });
  return {
    async stop() {
      if (stopped) return;
      stopped = true;
      timer.cancel();
      unsubscribe?.();
      await registry.deregister(self.id, opts.clock.now());
    },
  };
}
