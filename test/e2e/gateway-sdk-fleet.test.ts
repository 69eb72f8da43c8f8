/**
 * The SDK against the whole fleet loop, no hand-made nodes: gateway + scheduler (ProcessDriver,
 * real `bun node/main.ts` nodes) + Redis. A cold join waits for the node the scheduler starts;
 * the node is then SIGKILLed and the SDK's reconnect lands on another node once the scheduler's
 * health checks have given the dead one up.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { FleetgateClient, type RoomEvents } from "../../sdk/client/src/index.ts";
import { startStack, type Stack } from "../support/scheduler-stack.ts";
import { need, waitFor } from "../support/services.ts";

describe.skipIf(!need("redis"))("SDK on a scheduled fleet (process driver)", () => {
  let stack: Stack | undefined;
  afterAll(async () => {
    await stack?.stop();
  });

  test("cold join, relay, node SIGKILLed, reconnect to a healthy node, leave", async () => {
    stack = await startStack("process", {
      maxPlayersPerServer: 1,
      minReadyServers: 0,
      maxServers: 4,
      joinWaitTimeoutMs: 20_000,
      healthCheckIntervalMs: 250,
      healthCheckTimeoutMs: 250,
      healthCheckFailures: 2,
      autoscaleIntervalMs: 250,
      heartbeatIntervalMs: 500,
      sessionTtlMs: 3000,
      inactivityShutdownMs: 30_000,
      reconnectDelayMs: 100,
      // The SDK's reconnect after a 4009 is what this tests (resume keeps the socket: resume-docker.test.ts).
      resume: false,
    });
    const { gw, registry } = stack;
    const client = new FleetgateClient({ baseUrl: gw.url, token: await gw.token(), backoff: { initialMs: 100, maxMs: 1000, maxAttempts: 60 } });
    const session = await client.join(); // no node yet: the join asks the scheduler and waits
    const room = client.connect();
    const got: (string | ArrayBuffer)[] = [];
    const closes: RoomEvents["close"][] = [];
    room.on("message", (m) => got.push(m));
    room.on("close", (c) => closes.push(c));
    let opens = 0;
    room.on("open", () => opens++);
    await room.once("open");
    room.send("hello fleet");
    await waitFor(() => got.length === 1, 5000, "echo from the scheduled node");
    expect(got[0]).toBe("hello fleet");

    // A second join gets a node of its own: now two nodes run, so the killed one has a successor.
    const other = new FleetgateClient({ baseUrl: gw.url, token: await gw.token() });
    const s2 = await other.join();
    expect(s2.nodeId).not.toBe(session.nodeId);
    await other.leave();
    other.close();

    const first = (await registry.get(session.nodeId))!;
    const opensBefore = opens;
    process.kill(Number(first.ref), "SIGKILL");
    await waitFor(() => closes.some((c) => c.code === 4009 && c.willReconnect), 5000, "4009 after the kill");
    // Reconnects fail (1011) until the health checks give the node up; then the room is placed
    // on a healthy node and a reconnect sticks. Probe with a frame until one comes back.
    const before = got.length;
    await waitFor(
      () => {
        if (room.isOpen) room.send("after the kill");
        return got.length > before;
      },
      20_000,
      "echo after reconnect",
      300,
    );
    expect(got[before]).toBe("after the kill");
    expect(opens).toBeGreaterThan(opensBefore);
    expect(await stack.t.redis.get(stack.t.keys.roomNode(session.roomCode))).not.toBe(first.id);
    expect((await registry.get(first.id))?.state).not.toBe("ready");

    await client.leave();
    client.close();
  }, 60_000);
});
