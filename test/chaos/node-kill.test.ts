/**
 * Chaos: a node container killed mid-match (`docker kill`, real Docker, real gateway and scheduler).
 * Its player sees either 4009 within 1 s and is back in the room — on a new node — within 2 s of
 * the kill by reconnecting after the delay the close asks for (what the client SDK does), or, with
 * session resume, no close at all and frames flowing again within 2 s (a pause).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { docker, containerOf, join, startStack, type Stack } from "../support/scheduler-stack.ts";
import { need, waitFor } from "../support/services.ts";
import { openPlayer, reconnectDelayMs, reportChaos, within, type Player } from "../support/chaos.ts";

// With session resume (the default) and without it (RESUME=false: the contract's 4009 path).
for (const resume of [true, false]) {
  describe.skipIf(!(need("docker") && need("redis")))(`chaos: node container killed mid-match (RESUME=${resume})`, () => {
    let stack: Stack;

    beforeAll(async () => {
      stack = await startStack("docker", {
        nodeRoomMode: "echo",
        minReadyServers: 2,
        maxPlayersPerServer: 1,
        healthCheckIntervalMs: 300,
        healthCheckFailures: 2,
        healthCheckTimeoutMs: 300,
        autoscaleIntervalMs: 300,
        inactivityShutdownMs: 120_000,
        reconnectDelayMs: 200,
        joinWaitTimeoutMs: 5_000,
        resume,
      });
      await waitFor(async () => (await stack.registry.list()).filter((n) => n.state === "ready").length >= 2, 30_000, "two ready nodes", 100);
    }, 60_000);

    afterAll(async () => {
      await stack?.stop();
    }, 60_000);

    test(
      "the player gets 4009 within 1 s and is back in the room on a new node within 2 s (or resumes without a close)",
      async () => {
        const { token, body } = await join(stack.gw);
        const url = `${stack.gw.wsUrl}/v1/connect?room=${encodeURIComponent(body.roomCode)}`;
        let player: Player = openPlayer(url, ["bearer", token]);
        await player.opened;
        let seq = 0;
        const sendOne = () => {
          if (player.ws.readyState === WebSocket.OPEN) player.ws.send(`f${seq++}`);
        };
        sendOne();
        await player.waitFrames(1, 5_000);
        const oldNode = body.nodeId;
        const container = await containerOf(stack.fleet, oldNode);
        expect(container?.running).toBe(true);
        // Mid-match: frames keep going every 20 ms through the kill.
        const ticker = setInterval(sendOne, 20);
        try {
          const killedAt = Date.now();
          // Frames from here on can only come back from a node that is alive after the kill.
          const markAtKill = seq;
          await docker.getContainer(container!.id).kill();
          const close = await within(player.closed, 1_000);
          // Without resume the close is the contract's: 4009 within 1 s.
          if (!resume) expect(close?.code).toBe(4009);
          let recoveryMs: number;
          let saw = close ? `${close.code} after ${close.at - killedAt} ms ("${close.reason}")` : "no close within 1 s";
          const done = "docker kill of the node of a live player session";
          try {
            if (close) {
              expect(close.code).toBe(4009);
              const closeMs = close.at - killedAt;
              // Reconnect as the SDK does: after the delay the reason asks for, to the same room.
              await Bun.sleep(reconnectDelayMs(close.reason, 200));
              player = openPlayer(url, ["bearer", token]);
              await player.opened;
              const before = seq;
              sendOne();
              await player.waitFrames(1, Math.max(100, 2_000 - (Date.now() - killedAt)));
              expect(player.received[0]).toBe(`f${before}`);
              recoveryMs = Date.now() - killedAt;
              saw = `4009 after ${closeMs} ms ("${close.reason}"), reconnected and echoed`;
            } else {
              // Resume: no close; frames flow again (an echo of a frame sent after the kill).
              const p = player;
              const firstAfter = () => p.received.findIndex((f) => Number(f.slice(1)) > markAtKill);
              await waitFor(() => firstAfter() >= 0, 2_000 - (Date.now() - killedAt), "frames flowing again", 10);
              recoveryMs = p.receivedAt[firstAfter()]! - killedAt;
              saw = `no close; frames flowed again after ${recoveryMs} ms (resume)`;
            }
          } catch (e) {
            saw += `; then ${e instanceof Error ? e.message : String(e)}`;
            reportChaos({ scenario: `node container killed (RESUME=${resume})`, done, players: saw, recoveryMs: undefined, ok: false });
            throw e;
          }
          // The room now lives on another node (placement never points at the dead one again).
          const nowOn = await stack.t.redis.get(stack.t.keys.roomNode(body.roomCode));
          const ok = recoveryMs <= 2_000 && nowOn !== oldNode;
          saw += `; room now on ${nowOn === oldNode ? "the SAME dead node" : "a new node"}`;
          reportChaos({ scenario: `node container killed (RESUME=${resume})`, done, players: saw, recoveryMs, ok });
          expect(recoveryMs).toBeLessThanOrEqual(2_000);
          expect(nowOn).not.toBe(oldNode);
          // Back on a node that is alive: the old one is gone from ready placement.
          const live = await stack.registry.list();
          const oldRecord = live.find((n) => n.id === oldNode);
          expect(oldRecord?.state === "ready").toBe(false);
        } finally {
          clearInterval(ticker);
          player.ws.close();
        }
      },
      30_000,
    );
  });
}
