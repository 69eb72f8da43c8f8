/**
 * The gateway process: config from the environment, real dependencies, listen, register the
 * replica, and shut down gracefully on SIGINT/SIGTERM (stop accepting, tell connected clients to
 * reconnect elsewhere, deregister, close Redis).
 */
import { loadConfigOrExit, type Config } from "../core/config.ts";
import { armShutdownDeadline, supervisorPidFrom, surviveHangup, watchSupervisor, within } from "../core/process-lifecycle.ts";
import { resolveJwtSecret } from "../core/secrets.ts";
import { createApp } from "./app.ts";
import { buildGatewayDeps } from "./ops/build-deps.ts";
import { startReplicaHeartbeat } from "./ops/replica.ts";
import { gatewayHttpUrl } from "./ops/regions.ts";

const config: Config = loadConfigOrExit(process.env);
const supervisorPid = supervisorPidFrom(process.env.FLEETGATE_SUPERVISOR_PID);
surviveHangup(supervisorPid !== undefined);

const built = buildGatewayDeps(config, { jwtSecret: config.jwtAlg === "HS256" ? resolveJwtSecret(config) : undefined });
const { deps } = built;
const app = createApp(deps);
app.listen({ hostname: config.host, port: config.port });
const port = app.server?.port ?? config.port;
// Not awaited before the signal handlers below are in place: a SIGTERM during start-up must
// still shut down cleanly (and deregister), not kill the process with the default action.
const presenceStarting = startReplicaHeartbeat(
  deps.gateways,
  { id: deps.gatewayId, host: config.host, port, region: config.gatewayRegion, publicUrl: gatewayHttpUrl(config, port), startedAt: deps.clock.now() },
  // Re-registers the moment Redis is back, so an outage longer than the TTL is not an empty edge.
  { clock: deps.clock, intervalMs: config.gatewayHeartbeatMs, log: deps.log, onRedisRecovered: (fn) => built.outage.onRecover(fn) },
);

/** Time for close frames to reach clients before the sockets are torn down. */
const SHUTDOWN_FLUSH_MS = 200;
let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  deps.log.info(`${signal}: shutting down`);
  // Bounded, also when Redis is gone (deregistering and closing its connections would wait).
  armShutdownDeadline(config.shutdownTimeoutMs, deps.log);
  // Redis already gone: its steps cannot succeed, so they get little time.
  const step = built.outage.outage ? 200 : Math.max(200, Math.floor(config.shutdownTimeoutMs / 4));
  // Leave the edge first (HAProxy drops this replica on its next render), stop accepting, then
  // tell connected clients to reconnect (4009) — to another replica — and let the closes flush.
  await within(presenceStarting.then((presence) => presence.stop()).catch(() => {}), step, undefined);
  // stop(false) stops accepting and resolves only once every connection is gone: not awaited.
  void app.server?.stop(false);
  app.decorator.gateway.hub.closeAll();
  await Bun.sleep(SHUTDOWN_FLUSH_MS);
  await within(app.stop(true).catch(() => {}), step, undefined);
  await within(built.close(), step, undefined);
  process.exit(0);
}
process.on("SIGINT", () => void shutdown("SIGINT"));
process.on("SIGTERM", () => void shutdown("SIGTERM"));
// Started by `npm start`: a supervisor that died (even by SIGKILL) takes this process with it.
watchSupervisor(supervisorPid, () => void shutdown("supervisor gone"));

await presenceStarting;
deps.log.info(`gateway ${deps.gatewayId} listening on http://${config.host}:${port}`);
console.log(`fleetgate gateway: http://${config.host}:${port} (docs: http://${config.host}:${port}/docs)`);
