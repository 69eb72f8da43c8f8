/**
 * The NodeDriver a deployment's Config asks for — for `scheduler/main.ts` and set-up scripts.
 * NODE_DRIVER=auto picks Docker when the first engine answers and has the node image, else processes.
 */
import { join } from "node:path";
import type { Config } from "../../core/config.ts";
import { silentLogger, type Logger } from "../../core/log.ts";
import { dockerFromUrl } from "../../core/docker-connect.ts";
import { DockerDriver } from "./docker-driver.ts";
import type { NodeDriver } from "./driver.ts";
import { ProcessDriver } from "./process-driver.ts";

/** Options of {@link createNodeDriver} beyond the Config. */
export interface CreateNodeDriverOptions {
  /** Fleet name (container prefix, label, state sub-directory). Default: from REDIS_PREFIX. */
  fleet?: string;
  /** Environment for process nodes besides the node contract's (e.g. PATH for a NODE_COMMAND). */
  processBaseEnv?: Readonly<Record<string, string>>;
  logger?: Logger;
}

/**
 * The fleet name of a deployment: its Redis prefix with what container names do not allow replaced
 * (`:` → `-`), so two deployments on one engine never see each other's nodes.
 */
export function fleetName(redisPrefix: string): string {
  const cleaned = redisPrefix.replace(/[^A-Za-z0-9_.-]/g, "-").replace(/^[^A-Za-z0-9]+/, "");
  return (cleaned || "fleetgate").slice(0, 63);
}

/** Whether the first Docker engine answers and holds `image`. */
export async function dockerUsable(config: Config): Promise<boolean> {
  const first = config.dockerHosts[0];
  if (!first) return false;
  try {
    const docker = dockerFromUrl(first);
    await docker.ping();
    await docker.getImage(config.nodeImage).inspect();
    return true;
  } catch {
    // No engine, or no image (404): processes it is.
    return false;
  }
}

/** The driver NODE_DRIVER names (resolving `auto`), configured from the Config. */
export async function createNodeDriver(config: Config, opts: CreateNodeDriverOptions = {}): Promise<NodeDriver> {
  const fleet = opts.fleet ?? fleetName(config.redisPrefix);
  const logger = (opts.logger ?? silentLogger).child("driver");
  const kind = config.nodeDriver === "auto" ? ((await dockerUsable(config)) ? "docker" : "process") : config.nodeDriver;
  if (kind === "docker") {
    return new DockerDriver({
      fleet,
      image: config.nodeImage,
      dockerHosts: config.dockerHosts,
      hostRegions: config.dockerHostRegions,
      defaultRegion: config.region,
      network: config.dockerNetwork,
      bindAddress: config.nodeBindAddress,
      memoryMb: config.nodeMemoryMb,
      cpus: config.nodeCpus,
      logger,
    });
  }
  return new ProcessDriver({
    fleet,
    stateDir: join(config.dataDir, "process-nodes"),
    bindAddress: config.nodeBindAddress,
    ...(config.nodeCommand ? { command: config.nodeCommand } : {}),
    ...(opts.processBaseEnv ? { baseEnv: opts.processBaseEnv } : {}),
    logger,
  });
}
