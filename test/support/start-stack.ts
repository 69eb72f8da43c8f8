/**
 * What every test that runs `npm start`'s supervisor (scripts/start.ts) needs: a fresh Redis
 * prefix, data dir and free ports, the environment that points the whole stack at them, and a
 * cleanup that leaves nothing (keys, containers of the fleet, files).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Docker from "dockerode";
import { createRedis, deletePrefix } from "../../core/redis.ts";
import { fleetName } from "../../scheduler/drivers/create-driver.ts";
import { REDIS_URL, freePort, hasDocker } from "./services.ts";

export const ROOT = join(import.meta.dir, "..", "..");

export interface StackFixture {
  prefix: string;
  dataDir: string;
  ports: { api: number; edge: number; stats: number; sched: number; tpl: number; nodes: number };
  /** `http://127.0.0.1:<PORT>` and `http://127.0.0.1:<HAPROXY_PORT>`. */
  api: string;
  edge: string;
  /** The Docker label of this stack's node containers. */
  label: string;
  /** The process environment plus this stack's Redis, prefix, data dir and ports. */
  baseEnv: Record<string, string | undefined>;
  /** Deletes the prefix's keys, the fleet's containers (running or stopped) and the data dir. */
  cleanup(): Promise<void>;
}

export function stackFixture(name: string, opts: { redisUrl?: string } = {}): StackFixture {
  const redisUrl = opts.redisUrl ?? REDIS_URL;
  const prefix = `fgtest-${name}-${crypto.randomUUID().slice(0, 8)}`;
  const dataDir = mkdtempSync(join(tmpdir(), `fg-${name}-`));
  const ports = { api: freePort(), edge: freePort(), stats: freePort(), sched: freePort(), tpl: freePort(), nodes: 20000 + Math.floor(Math.random() * 20000) };
  const label = `fleetgate.fleet=${fleetName(prefix)}`;
  return {
    prefix,
    dataDir,
    ports,
    api: `http://127.0.0.1:${ports.api}`,
    edge: `http://127.0.0.1:${ports.edge}`,
    label,
    baseEnv: {
      ...process.env,
      REDIS_URL: redisUrl,
      REDIS_PREFIX: prefix,
      DATA_DIR: dataDir,
      HAPROXY_CONFIG: join(dataDir, "haproxy", "haproxy.cfg"),
      PORT: String(ports.api),
      HAPROXY_BIND: "127.0.0.1",
      HAPROXY_PORT: String(ports.edge),
      HAPROXY_STATS_PORT: String(ports.stats),
      SCHEDULER_METRICS_PORT: String(ports.sched),
      TEMPLATER_METRICS_PORT: String(ports.tpl),
      SERVER_PORT_START: String(ports.nodes),
      SERVER_PORT_END: String(ports.nodes + 50),
    },
    async cleanup() {
      if (hasDocker) {
        const docker = new Docker();
        const left = await docker.listContainers({ all: true, filters: { label: [label] } }).catch(() => []);
        await Promise.all(left.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => {})));
      }
      const r = createRedis(redisUrl);
      await deletePrefix(r, prefix).catch(() => {});
      r.disconnect();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
