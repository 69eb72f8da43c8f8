/**
 * The templater process (`npm run templater`): wiring only. Reads the environment once, checks
 * that HAProxy is installed, then keeps a master-worker HAProxy (started as a daemon, or attached
 * to on its master socket) in step with the registry until SIGINT/SIGTERM.
 */
import { resolve } from "node:path";
import { realClock } from "../core/clock.ts";
import { loadConfigOrExit, type Config } from "../core/config.ts";
import { GatewayRegistry } from "../model/gateway-registry.ts";
import { createKeys } from "../core/keys.ts";
import { createLogger } from "../core/log.ts";
import { armShutdownDeadline, supervisorPidFrom, surviveHangup, watchSupervisor } from "../core/process-lifecycle.ts";
import { RedisOutageWatch } from "../core/redis-outage.ts";
import { MetricsRegistry } from "../core/metrics.ts";
import { RedisNodeRegistry } from "../model/node-registry.ts";
import { createRedis, redisAnswers } from "../core/redis.ts";
import { HaproxyControl } from "./control.ts";
import { EdgeSettingsError } from "./render.ts";
import { startTemplater } from "./sync.ts";

function fail(message: string): never {
  console.error(`templater: ${message}`);
  process.exit(1);
}


// HAProxy reads a `stats socket` path without a leading "/" as host:port: every path it is given
// must be absolute, whatever directory the templater was started in.
const loaded = loadConfigOrExit(process.env, (m) => console.error(`templater: ${m}`));
const config: Config = Object.freeze({
  ...loaded,
  haproxyConfig: resolve(loaded.haproxyConfig),
  dataDir: resolve(loaded.dataDir),
  haproxyTlsCert: loaded.haproxyTlsCert === undefined ? undefined : resolve(loaded.haproxyTlsCert),
});

if (!Bun.which(config.haproxyBin)) {
  fail(`HAProxy is not installed (no "${config.haproxyBin}" on PATH). Install it (e.g. apt-get install -y haproxy) or set HAPROXY_BIN.`);
}
if (!(await redisAnswers(config, 2000))) fail(`Redis does not answer at ${config.redisUrl}`);

const log = createLogger("templater", config.logLevel, { format: config.logFormat });
const keys = createKeys(config.redisPrefix);
const supervisorPid = supervisorPidFrom(process.env.FLEETGATE_SUPERVISOR_PID);
surviveHangup(supervisorPid !== undefined);
// One log line when Redis goes away and one when it is back (ioredis would print every retry).
const outage = new RedisOutageWatch(log);
const redis = createRedis(config);
outage.watch(redis);
const newRedis = () => outage.watch(createRedis(config));

// Signals are handled from before start-up: one that arrives while HAProxy is being started
// waits for the start to finish, then stops it too (in child mode), instead of orphaning it.
const starting = startTemplater({
  config,
  keys,
  redis,
  newRedis,
  nodes: new RedisNodeRegistry(redis, keys, newRedis),
  // A replica is live for three heartbeats (the gateway registers itself with the same TTL).
  gateways: new GatewayRegistry(redis, keys, config.gatewayHeartbeatMs * 3),
  clock: realClock,
  log,
  metrics: new MetricsRegistry({ processMetrics: true }),
  haproxyMode: config.haproxyMode,
});
let stopping = false;
const shutdown = async (sig: string) => {
  if (stopping) return;
  stopping = true;
  // Bounded, also when Redis is gone.
  armShutdownDeadline(config.shutdownTimeoutMs, log);
  const templater = await starting.catch(() => undefined);
  if (templater) {
    await templater.stop();
    if (config.haproxyMode === "child" && templater.control instanceof HaproxyControl) {
      log.info(`${sig}: stopping HAProxy and the templater`);
      await templater.control.stop();
    } else {
      log.info(`${sig}: stopping (HAProxy keeps serving; a restarted templater attaches to it)`);
    }
  }
  redis.disconnect();
  process.exit(0);
};
process.on("SIGINT", () => void shutdown("SIGINT"));
process.on("SIGTERM", () => void shutdown("SIGTERM"));
// Started by `npm start`: a supervisor that died (even by SIGKILL) takes this process with it.
watchSupervisor(supervisorPid, () => void shutdown("supervisor gone"));

try {
  await starting;
  log.info(`HAProxy edge on ${config.haproxyBind}:${config.haproxyPort}, stats on :${config.haproxyStatsPort}/stats, config ${config.haproxyConfig}`);
} catch (err) {
  if (err instanceof EdgeSettingsError) fail(err.message);
  throw err;
}
