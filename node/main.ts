/**
 * The reference node's entry point (also the `bun build --compile` entry of the node image): reads
 * the node contract env, serves rooms, and on SIGTERM drains — refuses new rooms, waits up to
 * DRAIN_SECONDS for rooms to empty, closes the rest with 4009 — and exits 0.
 */
import { ConfigError } from "../core/config.ts";
import { createLogger } from "../core/log.ts";
import { parseNodeEnv, type NodeEnv } from "./node-env.ts";
import { startNodeServer, type NodeServer } from "./server.ts";

let env: NodeEnv;
try {
  env = parseNodeEnv(process.env);
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(`node: ${err.message}`);
    process.exit(2);
  }
  throw err;
}

const log = createLogger("node", env.logLevel);

function listen(e: NodeEnv): NodeServer {
  try {
    return startNodeServer({
      nodeId: e.nodeId,
      port: e.port,
      hostname: e.host,
      maxRooms: e.maxRooms,
      maxPlayers: e.maxPlayers,
      token: e.token,
      roomMode: e.roomMode,
      reconnectDelayMs: e.reconnectDelayMs,
      snapshots: e.fleetgateUrl ? { fleetgateUrl: e.fleetgateUrl, intervalMs: e.snapshotIntervalMs } : undefined,
      version: e.version,
      logger: log,
    });
  } catch (err) {
    // Typically the port is taken: say so plainly and exit non-zero so the driver sees a failed start.
    log.error("cannot listen", { host: e.host, port: e.port, error: err instanceof Error ? err.message : String(err) });
    process.exit(3);
  }
}

const node = listen(env);
let shuttingDown = false;
const shutdown = (signal: string) => {
  if (shuttingDown) return;
  shuttingDown = true;
  log.info("signal received; draining", { signal, drainMs: env.drainMs });
  void node
    .drain(env.drainMs)
    .then(() => node.stop())
    .then(
      () => process.exit(0),
      (err: unknown) => {
        log.error("drain failed", { error: err instanceof Error ? err.message : String(err) });
        process.exit(1);
      },
    );
};
process.on("SIGTERM", () => shutdown("SIGTERM"));
process.on("SIGINT", () => shutdown("SIGINT"));
