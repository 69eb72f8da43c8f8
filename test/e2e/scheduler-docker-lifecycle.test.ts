/**
 * The dedicated-server lifecycle on the REAL Docker engine: a player joins and gets a container of
 * its own (gateway join → scheduler scale-up → DockerDriver → node image), its heartbeats keep it
 * alive, and once they stop the container is stopped after INACTIVITY_SHUTDOWN and deleted
 * CLEANUP_DELETE after that — each within its window plus one reaper tick (AUTOSCALE_INTERVAL).
 *
 * Two runs: scaled timings (HEARTBEAT_INTERVAL 0.5 s, INACTIVITY_SHUTDOWN 1 s, CLEANUP_DELETE 3 s),
 * and the defaults (5 s / 10 s / 30 s, one tick = 1 s) — the SLOW one, ~45 s, set
 * FLEETGATE_SLOW_TESTS=0 to skip it.
 */
import { afterEach, describe, expect, test } from "bun:test";
import type { Config } from "../../core/config.ts";
import { firstFrame, containerOf, heartbeat, join, startStack, type Stack } from "../support/scheduler-stack.ts";
import { need, waitFor } from "../support/services.ts";

/**
 * What a stop or delete may take beyond "window + one tick": the reap job's queue hop, the
 * engine's `docker stop` / `docker rm` and this test's 50 ms polling. Measured here at 150-400 ms.
 */
const ENGINE_SLACK_MS = 1_000;

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

async function lifecycle(timings: Partial<Config>, keepAliveWindows: number): Promise<Record<string, number>> {
  stack = await startStack("docker", { maxPlayersPerServer: 1, joinWaitTimeoutMs: 20_000, nodeDrainMs: 1_000, ...timings });
  const { gw, registry, fleet, config } = stack;
  const tick = config.autoscaleIntervalMs;

  // A player joins and gets a container of its own.
  const j = await join(gw);
  const node = await registry.get(j.body.nodeId);
  expect(node?.state).toBe("ready");
  expect(node?.driver).toBe("docker");
  const c0 = await containerOf(fleet, j.body.nodeId);
  expect(c0?.running).toBe(true);
  const frame = await firstFrame(gw, j.token, j.body);
  frame.close();
  const other = await join(gw);
  expect(other.body.nodeId).not.toBe(j.body.nodeId); // one server per player

  // Heartbeats every HEARTBEAT_INTERVAL keep it alive across several shutdown windows.
  const aliveUntil = Date.now() + keepAliveWindows * config.inactivityShutdownMs;
  while (Date.now() < aliveUntil) {
    expect(await heartbeat(gw, j.token, j.body.sessionId)).toBe(204);
    expect((await registry.get(j.body.nodeId))?.state).toBe("ready");
    expect((await containerOf(fleet, j.body.nodeId))?.running).toBe(true);
    await Bun.sleep(config.heartbeatIntervalMs);
  }
  const lastActivity = (await registry.get(j.body.nodeId))!.lastActivityAt;

  // Silence: stopped within the shutdown window + one tick, deleted within the delete window + one tick.
  await waitFor(async () => (await containerOf(fleet, j.body.nodeId))?.running === false, config.inactivityShutdownMs + tick + 10_000, "container stopped", 50);
  const stoppedSeen = Date.now();
  // The registry stamps stoppedAt once the driver's stop returns (the delete window counts from it).
  const stoppedAt = (await waitFor(async () => (await registry.get(j.body.nodeId))?.stoppedAt, 5_000, "stoppedAt", 20));
  await waitFor(async () => (await containerOf(fleet, j.body.nodeId)) === undefined, config.cleanupDeleteMs + tick + 20_000, "container deleted", 50);
  const deletedSeen = Date.now();
  const figures = {
    joinMs: Math.round(j.ms),
    firstFrameMs: Math.round(frame.ms),
    stopAfterLastActivityMs: stoppedSeen - lastActivity,
    deleteAfterStopMs: deletedSeen - stoppedAt,
  };
  console.log(`scheduler lifecycle (${config.inactivityShutdownMs} / ${config.cleanupDeleteMs} ms, tick ${tick} ms):`, figures);
  expect(figures.stopAfterLastActivityMs).toBeGreaterThanOrEqual(config.inactivityShutdownMs);
  expect(figures.stopAfterLastActivityMs).toBeLessThanOrEqual(config.inactivityShutdownMs + tick + ENGINE_SLACK_MS);
  expect(figures.deleteAfterStopMs).toBeGreaterThanOrEqual(config.cleanupDeleteMs);
  expect(figures.deleteAfterStopMs).toBeLessThanOrEqual(config.cleanupDeleteMs + tick + ENGINE_SLACK_MS);
  expect(await registry.get(j.body.nodeId)).toBeUndefined();
  return figures;
}

describe.skipIf(!need("docker") || !need("redis"))("scheduler on Docker: one container per player", () => {
  test(
    "scaled timings 0.5 s / 1 s / 3 s: alive across 5 shutdown windows, then stopped and deleted on time",
    async () => {
      await lifecycle({ heartbeatIntervalMs: 500, sessionTtlMs: 1_500, inactivityShutdownMs: 1_000, cleanupDeleteMs: 3_000, autoscaleIntervalMs: 250, healthCheckIntervalMs: 500 }, 5);
    },
    90_000,
  );

  test.skipIf(process.env.FLEETGATE_SLOW_TESTS === "0")(
    "SLOW (~45 s): the default 5 s / 10 s / 30 s lifecycle",
    async () => {
      // Defaults from core/config.ts: HEARTBEAT_INTERVAL 5, INACTIVITY_SHUTDOWN 10, CLEANUP_DELETE 30, AUTOSCALE_INTERVAL 1.
      await lifecycle({}, 0.5);
    },
    120_000,
  );
});
