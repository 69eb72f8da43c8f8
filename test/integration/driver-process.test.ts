/**
 * The driver conformance suite against ProcessDriver, then what only processes have: nodes that
 * outlive the driver (scheduler restart), SIGKILL past the grace, failed starts, log files.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DriverError, type NodeSpec } from "../../scheduler/drivers/driver.ts";
import { ProcessDriver } from "../../scheduler/drivers/process-driver.ts";
import { runDriverConformance } from "../support/driver-conformance.ts";
import { getHealth, waitHealth } from "../support/node-harness.ts";
import { freePort, waitFor } from "../support/services.ts";

const stateDir = join(tmpdir(), `fg-process-driver-${crypto.randomUUID().slice(0, 8)}`);

runDriverConformance("process (Bun.spawn)", () => new ProcessDriver({ fleet: "conformance", stateDir }), { readyTimeoutMs: 10_000 });

describe("ProcessDriver specifics", () => {
  const fleet = "specifics";
  const drivers: ProcessDriver[] = [];
  const make = (over: Partial<ConstructorParameters<typeof ProcessDriver>[0]> = {}) => {
    const d = new ProcessDriver({ fleet, stateDir, ...over });
    drivers.push(d);
    return d;
  };
  const spec = (nodeId: string, over: Partial<NodeSpec> = {}): NodeSpec => ({
    nodeId,
    port: freePort(),
    token: "tok",
    maxRooms: 2,
    maxPlayers: 2,
    drainSeconds: 0.2,
    roomMode: "relay",
    ...over,
  });
  const ids = new Set<string>();

  afterAll(async () => {
    const d = make();
    await Promise.allSettled([...ids].map((id) => d.remove(id)));
    rmSync(stateDir, { recursive: true, force: true });
  });

  test("a node outlives its driver: a new driver (scheduler restart) lists, stops and removes it", async () => {
    ids.add("orphan");
    const first = make();
    const h = await first.start(spec("orphan"));
    await waitHealth(h, 5000);
    await first.close();

    const second = make();
    const info = await second.inspect("orphan");
    expect(info).toMatchObject({ nodeId: "orphan", running: true, ref: h.ref, port: h.port });
    // Idempotent across the restart: the same process, not a second one.
    expect((await second.start(spec("orphan", { port: h.port }))).ref).toBe(h.ref);
    await second.stop("orphan", 5000);
    expect((await second.inspect("orphan"))?.running).toBe(false);
    expect(await getHealth(h, 300)).toBeUndefined();
    await second.remove("orphan");
    expect(await second.inspect("orphan")).toBeUndefined();
  }, 20_000);

  test("a scheduler killed between spawn and its state write leaks nothing: the next driver finds the node by its marker", async () => {
    ids.add("half-started");
    const first = make();
    const h = await first.start(spec("half-started"));
    await waitHealth(h, 5000);
    await first.close();
    // What the dead scheduler left: the intent (pid 0) written before spawning, never updated.
    const statePath = join(stateDir, fleet, "half-started.json");
    const state = JSON.parse(readFileSync(statePath, "utf8")) as Record<string, unknown>;
    writeFileSync(statePath, JSON.stringify({ ...state, pid: 0 }));

    const second = make();
    const info = await second.inspect("half-started");
    expect(info).toMatchObject({ running: true, ref: h.ref });
    expect((await second.list()).some((n) => n.nodeId === "half-started" && n.running)).toBe(true);
    await second.stop("half-started", 5000);
    expect(await getHealth(h, 300)).toBeUndefined();
    expect((await second.inspect("half-started"))?.running).toBe(false);
  }, 20_000);

  test("a node that ignores SIGTERM is killed after the grace (exit 137)", async () => {
    ids.add("stubborn");
    const d = make({ command: ["sh", "-c", "trap '' TERM; echo stubborn up; while :; do sleep 0.05; done"] });
    await d.start(spec("stubborn"));
    await waitFor(async () => (await d.logs("stubborn")).includes("stubborn up"), 3000, "stubborn node output");
    const t0 = performance.now();
    await d.stop("stubborn", 300);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(280);
    expect(await d.inspect("stubborn")).toMatchObject({ running: false, exitCode: 137 });
  }, 10_000);

  test("a node that cannot bind its port exits non-zero, and its log says why", async () => {
    ids.add("taken");
    const blocker = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const d = make();
      await d.start(spec("taken", { port: blocker.port }));
      const info = await waitFor(async () => {
        const i = await d.inspect("taken");
        return i && !i.running ? i : undefined;
      }, 5000, "node exit");
      expect(info.exitCode).not.toBe(0);
      expect(await d.logs("taken")).toContain("cannot listen");
    } finally {
      blocker.stop(true);
    }
  }, 10_000);

  test("a command that does not exist is a non-retryable DriverError; bad node ids are refused", async () => {
    const d = make({ command: [join(stateDir, "no-such-binary")] });
    const err = await d.start(spec("nobinary")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DriverError);
    expect((err as DriverError).retryable).toBe(false);
    const bad = await make().start(spec("../escape")).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(DriverError);
    expect(existsSync(join(stateDir, "escape.json"))).toBe(false);
  });

  test("concurrent starts of one node spawn one process", async () => {
    ids.add("racy");
    const d = make();
    const s = spec("racy");
    const handles = await Promise.all([d.start(s), d.start(s), d.start(s)]);
    expect(new Set(handles.map((h) => h.ref)).size).toBe(1);
    await waitHealth(handles[0]!, 5000);
  }, 10_000);

  test("the state of another fleet is invisible", async () => {
    const other = new ProcessDriver({ fleet: "other-fleet", stateDir });
    expect(await other.list()).toEqual([]);
  });
});
