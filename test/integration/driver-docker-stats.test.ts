/**
 * The Docker driver's node stats (the dashboard's node view): CPU and memory of a running
 * container as the engine's stats API reports them (memory under the container's limit), and
 * nothing for a stopped one.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import Docker from "dockerode";
import { ensureNodeImage } from "../../node/image.ts";
import { DockerDriver, LABEL_FLEET } from "../../scheduler/drivers/docker-driver.ts";
import { waitHealth } from "../support/node-harness.ts";
import { freePort, need } from "../support/services.ts";

const IMAGE = "fleetgate-node:latest";
const fleet = `fgtest-stats-${crypto.randomUUID().slice(0, 6)}`;
const docker = new Docker({ socketPath: "/var/run/docker.sock" });

async function sweep(): Promise<void> {
  const list = await docker.listContainers({ all: true, filters: { label: [`${LABEL_FLEET}=${fleet}`] } });
  await Promise.all(list.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
}

describe.skipIf(!need("docker"))("docker driver stats", () => {
  let driver: DockerDriver;
  beforeAll(async () => {
    await ensureNodeImage({ image: IMAGE });
    driver = new DockerDriver({ fleet, image: IMAGE, memoryMb: 96 });
  }, 120_000);
  afterAll(async () => {
    await sweep();
  });

  test("a running node's CPU and memory under its limit; none once stopped", async () => {
    const port = freePort();
    const h = await driver.start({ nodeId: "stats", port, token: "tok-stats-123", maxRooms: 2, maxPlayers: 2, drainSeconds: 0.2, roomMode: "echo" });
    await waitHealth({ host: h.host, port: h.port }, 10_000);
    const s = await driver.stats("stats");
    expect(s).toBeDefined();
    expect(s!.memoryBytes).toBeGreaterThan(1024 * 1024);
    expect(s!.memoryLimitBytes).toBe(96 * 1024 * 1024);
    expect(s!.memoryBytes).toBeLessThan(s!.memoryLimitBytes!);
    expect(s!.cpuPercent).toBeGreaterThanOrEqual(0);
    expect(Math.abs(s!.at - Date.now())).toBeLessThan(10_000);
    await driver.stop("stats", 2000);
    expect(await driver.stats("stats")).toBeUndefined();
    expect(await driver.stats("never-started")).toBeUndefined();
  }, 60_000);
});
