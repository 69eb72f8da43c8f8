/**
 * Which NodeDriver runs the fleet (NODE_DRIVER): `docker`, `process`, or `auto` — Docker when the
 * first engine answers and has the node image, else local processes. The choice is logged.
 */
import { join } from "node:path";
import type { Config } from "../../core/config.ts";
import type { Logger } from "../../core/log.ts";
import { dockerFromUrl } from "../drivers/docker-connect.ts";
import { DockerDriver } from "../drivers/docker-driver.ts";
import type { NodeDriver } from "../drivers/driver.ts";
import { ProcessDriver } from "../drivers/process-driver.ts";

/**
 * The fleet name drivers label and name nodes with: the Redis prefix made safe for container
 * names, so two deployments (or two tests) on one engine never see each other's nodes.
 */
export function fleetName(prefix: string): string {
  const s = prefix.replace(/[^A-Za-z0-9_.-]/g, "-").replace(/^[^A-Za-z0-9]+/, "");
  return (s || "fleetgate").slice(0, 63);
}

/** Whether the engine at `url` answers and holds `image`, each within `timeoutMs`. */
export async function dockerReady(url: string, image: string, timeoutMs = 2_000): Promise<{ engine: boolean; image: boolean }> {
  const docker = dockerFromUrl(url);
  const within = <T,>(p: Promise<T>) => Promise.race([p, Bun.sleep(timeoutMs).then(() => Promise.reject(new Error("timeout")))]);
  try {
    await within(docker.ping());
  } catch {
    return { engine: false, image: false };
  }
  try {
    await within(docker.getImage(image).inspect());
    return { engine: true, image: true };
  } catch {
    return { engine: true, image: false };
  }
}

export async function chooseDriver(config: Config, log: Logger): Promise<NodeDriver> {
  const fleet = fleetName(config.redisPrefix);
  const docker = () =>
    new DockerDriver({
      fleet,
      image: config.nodeImage,
      dockerHosts: config.dockerHosts,
      network: config.dockerNetwork,
      bindAddress: config.nodeBindAddress,
      memoryMb: config.nodeMemoryMb,
      cpus: config.nodeCpus,
      logger: log.child("docker"),
    });
  const processes = () =>
    new ProcessDriver({
      fleet,
      stateDir: join(config.dataDir, "process-nodes"),
      bindAddress: config.nodeBindAddress,
      ...(config.nodeCommand ? { command: config.nodeCommand } : {}),
      // Own session: a terminal's Ctrl-C reaches the scheduler, not the fleet's nodes.
      detached: true,
      logger: log.child("process"),
    });
  if (config.nodeDriver === "docker") {
    log.info("node driver: docker (NODE_DRIVER=docker)", { hosts: config.dockerHosts, image: config.nodeImage, network: config.dockerNetwork });
    return docker();
  }
  if (config.nodeDriver === "process") {
    log.info("node driver: process (NODE_DRIVER=process)");
    return processes();
  }
  const first = config.dockerHosts[0] ?? "unix:///var/run/docker.sock";
  const r = await dockerReady(first, config.nodeImage);
  if (r.engine && r.image) {
    log.info("node driver: docker (auto: engine answers and the image exists)", { host: first, image: config.nodeImage });
    return docker();
  }
  log.info(`node driver: process (auto: ${r.engine ? `image ${config.nodeImage} not found — npm run node:image builds it` : "no Docker engine answers"})`);
  return processes();
}
