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
  opts: { clock: Clock; intervalMs: number; log: Logger },
): Promise<ReplicaPresence> {
  const beat = () => registry.heartbeat(self, opts.clock.now()).catch((err: unknown) => opts.log.warn("gateway heartbeat failed", { err }));
  await registry.heartbeat(self, opts.clock.now());
  const timer: TimerHandle = opts.clock.setInterval(() => void beat(), opts.intervalMs);
  let stopped = false;
  return {
    async stop() {
      if (stopped) return;
      stopped = true;
      timer.cancel();
      await registry.deregister(self.id, opts.clock.now());
    },
  };
}
