/**
 * Chaos (Docker hosts): nodes started at once — MIN_READY_SERVERS=4 on an empty fleet, one
 * autoscale tick asking for all four — must spread over both DOCKER_HOSTS engines, not all land on
 * the first. (Its own file: it failed — all four on host 1 — until the driver counted its own
 * starts under way, e725cca.)
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ensureNodeImage } from "../../node/image.ts";
import { LOCAL_HOST, fleetContainers, startFleet, type Fleet } from "../support/docker-fleet.ts";
import { NODE_IMAGE, docker as docker1, removeFleetContainers } from "../support/scheduler-stack.ts";
import { need, waitFor } from "../support/services.ts";
import { startSecondDockerd, type SecondDockerd } from "../support/second-dockerd.ts";
import { reportChaos } from "../support/chaos.ts";

describe.skipIf(!(need("docker") && need("redis")))("chaos: Docker hosts, nodes started at once", () => {
  let d2: SecondDockerd;
  const fleets: Fleet[] = [];

  beforeAll(async () => {
    await ensureNodeImage({ image: NODE_IMAGE });
    d2 = await startSecondDockerd(NODE_IMAGE);
  }, 120_000);

  afterAll(async () => {
    for (const f of fleets) {
      await f.stop();
      await removeFleetContainers(f.fleet);
      for (const c of await fleetContainers(d2.docker, f.fleet)) await d2.docker.getContainer(c.Id).remove({ force: true }).catch(() => {});
    }
    await d2?.stop();
  }, 120_000);

  test(
    "nodes started at once spread over both hosts",
    async () => {
      const f = await startFleet([LOCAL_HOST, d2.host], 4);
      fleets.push(f);
      await waitFor(async () => (await f.sched.registry.list()).filter((n) => n.state === "ready").length >= 4, 60_000, "4 ready nodes", 100);
      const on1 = (await fleetContainers(docker1, f.fleet)).length;
      const on2 = (await fleetContainers(d2.docker, f.fleet)).length;
      reportChaos({ scenario: "nodes started at once, two hosts", done: "MIN_READY_SERVERS=4 on an empty fleet over two DOCKER_HOSTS", players: `${on1} nodes on host 1, ${on2} on host 2`, recoveryMs: undefined, ok: Math.min(on1, on2) > 0 });
      expect(Math.min(on1, on2)).toBeGreaterThan(0);
    },
    90_000,
  );
});
