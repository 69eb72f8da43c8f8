/**
 * NodeDriver: how the scheduler runs game-server nodes. DockerDriver (dockerode) and ProcessDriver
 * (Bun.spawn) implement it for real; FakeDriver for unit tests. One conformance suite
 * (test/support/driver-conformance.ts) runs against every driver.
 */
import type { RoomMode } from "../../core/config.ts";
import type { NodeStats } from "../../model/dashboard-history.ts";

/** Everything a node needs to start; becomes the node contract's environment. */
export interface NodeSpec {
  nodeId: string;
  /** Port the node listens on (inside the container for bridge networking). */
  port: number;
  /** NODE_TOKEN: the node accepts gateway connections only with it. */
  token: string;
  maxRooms: number;
  maxPlayers: number;
  drainSeconds: number;
  roomMode: RoomMode;
  /**
   * Region the node is wanted in (its scale-up's). A driver with engines in several regions
   * (DOCKER_HOSTS `region=url`) starts it on one of that region's; unset or unknown: any engine.
   */
  region?: string;
  /** Extra environment for the node (image-specific settings). */
  env?: Record<string, string>;
  /** Image to run (a fleet version's); unset: the driver's default (NODE_IMAGE). Process nodes ignore it. */
  image?: string;
}

/** Where a started node can be reached and how the driver refers to it. */
export interface NodeHandle {
  nodeId: string;
  driver: string;
  /** Container id, pid, or fake id. */
  ref: string;
  /** Address to dial from this machine (127.0.0.1 for local nodes). */
  host: string;
  port: number;
  /** DOCKER_HOSTS entry the node runs on ("" when not docker). */
  dockerHost: string;
  /** Region of the engine the node runs on, when the driver knows it (the docker driver). */
  region?: string;
}

export interface DriverNodeInfo extends NodeHandle {
  running: boolean;
  /** Exit code once exited. */
  exitCode: number | undefined;
  startedAt: number | undefined;
}

/** One reading of a node's resource use (stored for the dashboard as it is). */
export type { NodeStats };

export interface NodeDriver {
  readonly kind: string;
  /**
   * Starts a node. Idempotent by nodeId: if an instance of that node exists and runs, returns its
   * handle; if it exists stopped (not yet removed), starts it again (a wake).
   */
  start(spec: NodeSpec): Promise<NodeHandle>;
  /** SIGTERM, then SIGKILL after `graceMs`. Resolves once the node has exited. Idempotent. */
  stop(nodeId: string, graceMs: number): Promise<void>;
  /** Deletes the stopped instance (container, logs). Idempotent; kills it first if still running. */
  remove(nodeId: string): Promise<void>;
  /** Every node instance of this fleet the driver knows, running or not. */
  list(): Promise<DriverNodeInfo[]>;
  inspect(nodeId: string): Promise<DriverNodeInfo | undefined>;
  /** Recent output of the node, for operators and failed-start reports. */
  logs(nodeId: string, tailLines?: number): Promise<string>;
  /**
   * CPU and memory of a running node as its host measures it (Docker: the engine's container
   * stats; processes: /proc), for the dashboard's node view. Undefined when the node is not
   * running.
   */
  stats?(nodeId: string): Promise<NodeStats | undefined>;
  /** Releases driver resources (not the nodes). */
  close(): Promise<void>;
}

/**
 * How long a node's closing players may take after its drain deadline: the reference node waits up
 * to this long for the close handshakes of the players it closed with 4009 before it exits.
 */
export const NODE_CLOSE_GRACE_MS = 1000;

/**
 * The grace to give `stop` so a node can finish its SIGTERM drain and exit 0: DRAIN_SECONDS, the
 * close handshakes, and a margin for process exit. A grace of just DRAIN_SECONDS SIGKILLs the node
 * at the moment it starts telling players to reconnect (they would see 1006, not 4009).
 */
export function stopGraceMs(drainSeconds: number, marginMs = 1000): number {
  return Math.ceil(drainSeconds * 1000) + NODE_CLOSE_GRACE_MS + marginMs;
}

export { DriverError } from "../../core/errors.ts";
