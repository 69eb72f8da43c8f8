/**
 * The driver conformance suite against DockerDriver, host and bridge networking, on the offline
 * node image (built once, or kept when up to date). Every container made here is labelled with a
 * per-run fleet name and removed by label in afterAll.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import Docker from "dockerode";
import { ensureNodeImage } from "../../node/image.ts";
import { DockerDriver, LABEL_FLEET, LABEL_NODE, demuxDockerLogs } from "../../scheduler/drivers/docker-driver.ts";
import { DriverError } from "../../scheduler/drivers/driver.ts";
import { runDriverConformance } from "../support/driver-conformance.ts";
import { freePort, need } from "../support/services.ts";
import { getHealth, waitHealth } from "../support/node-harness.ts";

const hasDocker = need("docker");
const IMAGE = "fleetgate-node:latest";
const run = crypto.randomUUID().slice(0, 6);
const docker = new Docker({ socketPath: "/var/run/docker.sock" });

let imageReady: Promise<unknown> | undefined;
const image = () => (imageReady ??= ensureNodeImage({ image: IMAGE }));

/** Removes every container of a test fleet, whatever state it is in. */
async function sweep(fleet: string): Promise<number> {
  const list = await docker.listContainers({ all: true, filters: { label: [`${LABEL_FLEET}=${fleet}`] } });
  await Promise.all(list.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
  return list.length;
}

for (const network of ["host", "bridge"] as const) {
  const fleet = `fgtest-${network}-${run}`;
  runDriverConformance(
    `docker (${network} networking)`,
    async () => {
      await image();
      return new DockerDriver({ fleet, image: IMAGE, network, memoryMb: 128, cpus: 0.5 });
    },
    {
      skip: !hasDocker,
      readyTimeoutMs: 10_000,
      testTimeoutMs: 60_000,
      cleanup: async () => {
        await sweep(fleet);
      },
    },
  );
}

describe.skipIf(!hasDocker)("DockerDriver specifics", () => {
  const fleet = `fgtest-spec-${run}`;
  let driver: DockerDriver;
  beforeAll(async () => {
    await image();
    driver = new DockerDriver({ fleet, image: IMAGE });
  }, 120_000);
  afterAll(async () => {
    await sweep(fleet);
  });

  const spec = (nodeId: string, port = freePort()) => ({ nodeId, port, token: "tok-123", maxRooms: 5, maxPlayers: 5, drainSeconds: 0.2, roomMode: "relay" as const });

  test("containers are named <fleet>-<nodeId> and labelled; logs are demultiplexed text", async () => {
    const h = await driver.start(spec("named"));
    await waitHealth(h, 5000);
    const info = await docker.getContainer(`${fleet}-named`).inspect();
    expect(info.Config.Labels[LABEL_FLEET]).toBe(fleet);
    expect(info.Config.Labels[LABEL_NODE]).toBe("named");
    expect(info.HostConfig.NetworkMode).toBe("host");
    expect(info.HostConfig.Memory).toBe(256 * 1024 * 1024);
    const logs = await driver.logs("named", 20);
    expect(logs).toContain("node listening");
    expect(logs).not.toContain("\u0001\u0000\u0000\u0000"); // no stream headers left
  }, 30_000);

  test("a new driver (scheduler restart) finds the fleet's containers by label and name", async () => {
    const h = await driver.start(spec("survivor"));
    await waitHealth(h, 5000);
    const restarted = new DockerDriver({ fleet, image: IMAGE });
    expect(await restarted.inspect("survivor")).toMatchObject({ ref: h.ref, running: true, port: h.port });
    expect((await restarted.list()).some((n) => n.nodeId === "survivor" && n.running)).toBe(true);
    // Idempotent across the restart: the running container, not a second one.
    expect((await restarted.start(spec("survivor", h.port))).ref).toBe(h.ref);
    await restarted.remove("survivor");
    expect(await driver.inspect("survivor")).toBeUndefined();
  }, 30_000);

  test("a missing image is a non-retryable DriverError", async () => {
    const bad = new DockerDriver({ fleet, image: `fleetgate-missing-${run}:nope` });
    const err = await bad.start(spec("noimage")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DriverError);
    expect((err as DriverError).retryable).toBe(false);
  });

  test("a node started again with a different spec is recreated, not woken with stale settings", async () => {
    const s = spec("respec");
    const h1 = await driver.start(s);
    await waitHealth(h1, 5000);
    await driver.stop("respec", 2000);
    const s2 = { ...s, port: freePort(), token: "tok-456" };
    const h2 = await driver.start(s2);
    expect(h2.ref).not.toBe(h1.ref);
    expect(h2.port).toBe(s2.port);
    await waitHealth(h2, 5000);
    expect(await getHealth(h1, 300)).toBeUndefined();
  }, 30_000);

  test("engines: an unreachable engine makes lookups fail retryably rather than guess", async () => {
    const local = "unix:///var/run/docker.sock";
    const dead = "tcp://127.0.0.1:1";
    const two = new DockerDriver({ fleet: `${fleet}-two`, image: IMAGE, dockerHosts: [local, dead] });
    const err = await two.start(spec("two1")).catch((e: unknown) => e);
    // The node might exist on the dead engine: starting a second copy elsewhere would duplicate it.
    expect(err).toBeInstanceOf(DriverError);
    expect((err as DriverError).retryable).toBe(true);
    await sweep(`${fleet}-two`);
  });

  test("demuxDockerLogs joins stdout and stderr frames", () => {
    const frame = (type: number, text: string) => {
      const body = Buffer.from(text);
      const head = Buffer.alloc(8);
      head[0] = type;
      head.writeUInt32BE(body.length, 4);
      return Buffer.concat([head, body]);
    };
    expect(demuxDockerLogs(Buffer.concat([frame(1, "out\n"), frame(2, "err\n"), frame(1, "more")]))).toBe("out\nerr\nmore");
    expect(demuxDockerLogs(Buffer.from("plain text"))).toBe("plain text");
  });
});
