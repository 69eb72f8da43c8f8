/**
 * The scheduler process: `npm run scheduler` (or a child of `npm start`). Wiring only — config from
 * the environment (the one place that reads it), the node driver, then startScheduler. SIGINT /
 * SIGTERM close it gracefully; nodes keep running (they belong to the fleet) unless
 * STOP_NODES_ON_EXIT is set.
 */
import { loadConfigOrExit, type Config } from "../core/config.ts";
import { createLogger } from "../core/log.ts";
import { armShutdownDeadline, supervisorPidFrom, surviveHangup, watchSupervisor } from "../core/process-lifecycle.ts";
import { createNodeDriver } from "./drivers/create-driver.ts";
import { startScheduler, type RunningScheduler } from "./start-scheduler.ts";

export { startScheduler, type RunningScheduler, type StartSchedulerDeps } from "./start-scheduler.ts";

async function main(): Promise<void> {
  const config: Config = loadConfigOrExit(process.env);
  const log = createLogger("scheduler", config.logLevel, { format: config.logFormat });
  const supervisorPid = supervisorPidFrom(process.env.FLEETGATE_SUPERVISOR_PID);
  surviveHangup(supervisorPid !== undefined);
  // Signal handlers first: the OS applies the default action (exit 143) to a signal that arrives
  // before a listener exists. One that arrives while the scheduler is starting waits for the start
  // to finish, then closes it cleanly.
  let starting: Promise<RunningScheduler> | undefined;
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info(`${signal}: shutting down`);
    // Bounded, also when Redis is gone: close() bounds its own Redis steps, this is the backstop.
    armShutdownDeadline(config.shutdownTimeoutMs, log);
    Promise.resolve(starting)
      .then((running) => running?.close())
      .then(
        () => process.exit(0),
        (e: unknown) => {
          log.error("shutdown failed", { error: e });
          process.exit(1);
        },
      );
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
  // Started by `npm start`: a supervisor that died (even by SIGKILL) takes this process with it.
  watchSupervisor(supervisorPid, () => stop("supervisor gone"));

  const driver = await createNodeDriver(config, { logger: log });
  const why =
    config.nodeDriver !== "auto"
      ? `NODE_DRIVER=${config.nodeDriver}`
      : driver.kind === "docker"
        ? "auto: a Docker engine answers and has the node image"
        : `auto: no Docker engine answers, or it lacks ${config.nodeImage} (npm run node:image builds it)`;
  log.info(`node driver: ${driver.kind} (${why})`, { image: config.nodeImage, hosts: config.dockerHosts });
  if (stopping) {
    await driver.close();
    return;
  }
  starting = startScheduler({ config, driver, log });
  await starting;
}

if (import.meta.main) await main();
