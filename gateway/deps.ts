/**
 * Everything the gateway's features need, built in gateway/main.ts (or a test) and passed in.
 * No feature opens a connection or reads the environment at import time.
 */
import type { GatewayRegistry } from "../model/gateway-registry.ts";
import type { MetricsRegistry } from "../core/metrics.ts";
import type { NodeRegistry } from "../model/node-registry.ts";
import type { SchedulerClient, SchedulerQueues } from "../model/jobs.ts";
import type { BaseDeps } from "../core/deps.ts";
import type { Authenticator, Placement, RoomPresence, SeatChecker, TokenSigner } from "./contracts.ts";

export interface GatewayDeps extends BaseDeps {
  metrics: MetricsRegistry;
  nodes: NodeRegistry;
  gateways: GatewayRegistry;
  auth: Authenticator;
  /** Signs access tokens (guest sign-in, refresh). */
  signer: TokenSigner;
  placement: Placement;
  seats: SeatChecker;
  /** Seated players' presence in their rooms (the seat reaper). Absent: presence is not tracked (some unit tests). */
  presence?: RoomPresence;
  scheduler: SchedulerClient;
  /** The scheduler's queues (for the BullMQ board). */
  queues: SchedulerQueues;
  /** This replica's id. */
  gatewayId: string;
}
