/**
 * The node contract at the edges a driver hides: the node as a plain process (`bun node/main.ts`)
 * and as a container of the offline image — refusing bad environment, exiting 0 on SIGTERM, and
 * (container) running unprivileged from scratch. The full contract (relay, echo, token, limits,
 * drain with 4009) runs through the driver conformance suites for both.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import Docker from "dockerode";
import { ensureNodeImage, IMAGE_BINARY_PATH } from "../../node/image.ts";
import { connectPlayer, waitHealth } from "../support/node-harness.ts";
import { freePort, need } from "../support/services.ts";

const MAIN = resolve(import.meta.dir, "../../node/main.ts");
const IMAGE = "fleetgate-node:latest";

const nodeEnv = (port: number, over: Record<string, string> = {}) => ({
  NODE_ID: "contract-1",
  PORT: String(port),
  HOST: "127.0.0.1",
  NODE_TOKEN: "contract-token",
  DRAIN_SECONDS: "5",
  ...over,
});

describe("node as a process", () => {
  const procs: Bun.Subprocess[] = [];
  afterAll(() => {
    for (const p of procs) p.kill("SIGKILL");
  });

  test("bad environment: one message listing every problem, exit code 2", async () => {
    const p = Bun.spawn([process.execPath, MAIN], { env: { PORT: "99999", ROOM_MODE: "chat" }, stdout: "pipe", stderr: "pipe" });
    procs.push(p);
    expect(await p.exited).toBe(2);
    const err = await new Response(p.stderr).text();
    expect(err).toContain("NODE_ID is required");
    expect(err).toContain("NODE_TOKEN is required");
    expect(err).toContain('PORT="99999"');
    expect(err).toContain('ROOM_MODE="chat" must be relay or echo');
    expect(err).not.toContain("    at "); // no stack
  });

  test("SIGTERM without players exits 0 at once, well before DRAIN_SECONDS", async () => {
    const port = freePort();
    const p = Bun.spawn([process.execPath, MAIN], { env: nodeEnv(port), stdout: "ignore", stderr: "ignore" });
    procs.push(p);
    await waitHealth({ host: "127.0.0.1", port }, 5000);
    const t0 = performance.now();
    p.kill("SIGTERM");
    expect(await p.exited).toBe(0);
    expect(performance.now() - t0).toBeLessThan(1500);
  }, 10_000);

  test("SIGTERM with a player: 4009 after DRAIN_SECONDS, then exit 0", async () => {
    const port = freePort();
    const p = Bun.spawn([process.execPath, MAIN], { env: nodeEnv(port, { DRAIN_SECONDS: "0.3", RECONNECT_DELAY_MS: "750" }), stdout: "ignore", stderr: "ignore" });
    procs.push(p);
    await waitHealth({ host: "127.0.0.1", port }, 5000);
    const player = await connectPlayer({ host: "127.0.0.1", port }, "room-term", { token: "contract-token", playerId: "a", playerName: "A" });
    p.kill("SIGTERM");
    expect(await player.closed).toEqual({ code: 4009, reason: "node draining; reconnect after 750 ms" });
    expect(await p.exited).toBe(0);
  }, 10_000);
});

const hasDocker = need("docker");

describe.skipIf(!hasDocker)("node as a container (offline image)", () => {
  const docker = new Docker({ socketPath: "/var/run/docker.sock" });
  const label = `fgtest-contract-${crypto.randomUUID().slice(0, 6)}`;
  beforeAll(async () => {
    await ensureNodeImage({ image: IMAGE });
  }, 120_000);
  afterAll(async () => {
    const list = await docker.listContainers({ all: true, filters: { label: [`fleetgate.test=${label}`] } });
    await Promise.all(list.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
  });

  const create = (env: Record<string, string>) =>
    docker.createContainer({
      Image: IMAGE,
      Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      Labels: { "fleetgate.test": label },
      HostConfig: { NetworkMode: "host" },
    });

  test("the image is FROM scratch: the node executable, unprivileged", async () => {
    const info = await docker.getImage(IMAGE).inspect();
    expect(info.Config.Entrypoint).toEqual([IMAGE_BINARY_PATH]);
    expect(info.Config.User).toBe("65534:65534");
    // Size: the Bun runtime inside the executable plus a few libraries; no distribution.
    expect(info.Size).toBeLessThan(200 * 1024 * 1024);
  });

  test("bad environment: the container exits 2 and its log says why", async () => {
    const c = await create({ PORT: "x" });
    await c.start();
    const { StatusCode } = (await c.wait()) as { StatusCode: number };
    expect(StatusCode).toBe(2);
    const logs = (await c.logs({ stdout: true, stderr: true, follow: false })).toString("utf8");
    expect(logs).toContain("NODE_ID is required");
  }, 20_000);

  test("cold start to /health ready, and SIGTERM → exit 0", async () => {
    const port = freePort();
    const t0 = performance.now();
    const c = await create(nodeEnv(port));
    await c.start();
    const { ms } = await waitHealth({ host: "127.0.0.1", port }, 5000);
    const total = performance.now() - t0;
    console.log(`container cold start: ${total.toFixed(0)} ms from create to /health ready (${ms.toFixed(0)} ms after start)`);
    expect(total).toBeLessThan(5000);
    await c.kill({ signal: "SIGTERM" });
    const { StatusCode } = (await c.wait()) as { StatusCode: number };
    expect(StatusCode).toBe(0);
  }, 20_000);
});
