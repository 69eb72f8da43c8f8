/**
 * `npm run bench:resume`: what a player notices when the game server under its room is lost
 * (issue 12, CONTRACT "Session resume").
 *
 * One room of 8 players, each sending 20 msg/s through an in-process gateway to a Docker node
 * (relay mode, host networking; a scheduler in this process keeps a spare node ready):
 *  - kill: the room's node container is `docker kill`ed (SIGKILL), 20 times;
 *  - drain: the room's node is drained with a 0.2 s deadline (scheduler drain job: the node closes
 *    its players 4009 at the deadline), 20 times.
 * Per event: time from the kill (or the node's 4009) to the first frame relayed by the new node,
 * at each player (p50/p99 over all players and events), the longest silence a player heard,
 * frames the gateway held and delivered, frames lost in flight to a dead node, sockets closed.
 *
 * Bounded: 2 × 20 events, every wait has a timeout; everything it starts is removed at the end.
 */
import { availableParallelism, loadavg } from "node:os";
import type { NodeRecord } from "../core/types.ts";
import type { TestGateway } from "../test/support/gateway-fixtures.ts";
import { firstFrameAfter, longestSilence, openRoomPlayer, percentile, startTraffic, type RoomPlayer } from "../test/support/resume-room.ts";
import { docker, startStack, type Stack } from "../test/support/scheduler-stack.ts";
import { freePort, hasDocker, hasRedis, waitFor } from "../test/support/services.ts";

const PLAYERS = 8;
const HZ = 20;
const EVENTS = Number(process.env.RESUME_BENCH_EVENTS ?? 20);

interface Outcome {
  firstFrame: number[];
  silence: number[];
  heldFrames: number;
  delivered: number;
  lostInFlight: number;
  closed: number;
  failedEvents: number;
}

async function ready(stack: Stack): Promise<NodeRecord[]> {
  return (await stack.registry.list()).filter((n) => n.state === "ready");
}

async function run(stack: Stack, kind: "kill" | "drain"): Promise<Outcome> {
  const gw = stack.gw as TestGateway;
  const stats = gw.app.decorator.gateway.hub.resumer!.stats;
  const room = `bench-resume-${kind}-${crypto.randomUUID().slice(0, 6)}`;
  const players: RoomPlayer[] = [];
  for (let i = 0; i < PLAYERS; i++) players.push(openRoomPlayer(stack.gw.wsUrl, room, `p${i}`, await stack.gw.token(`p_bench_${kind}_${i}`)));
  await Promise.all(players.map((p) => p.opened));
  const out: Outcome = { firstFrame: [], silence: [], heldFrames: 0, delivered: 0, lostInFlight: 0, closed: 0, failedEvents: 0 };
  const heldBefore = stats.heldFrames;
  const stop = startTraffic(players, HZ, 1_000_000);
  try {
    for (let e = 0; e < EVENTS; e++) {
      // A spare ready node besides the room's (the resume asks for a replacement of a lost one).
      const spareReq = `bench-${kind}-${e}`;
      if ((await ready(stack)).length < 2) await stack.client.requestScaleUp({ count: 1, region: "local", reason: "bench spare", requestId: spareReq });
      await waitFor(async () => (await ready(stack)).length >= 2, 30_000, "a spare node", 50);
      const nodeId = (await stack.t.redis.get(stack.t.keys.roomNode(room)))!;
      const node = (await stack.registry.get(nodeId))!;
      const noticesBefore = players.map((p) => p.notices.length);
      await Bun.sleep(300); // traffic flowing
      let at = performance.now();
      if (kind === "kill") {
        await docker.getContainer(node.ref).kill();
      } else {
        await stack.client.requestDrain({ nodeId, deadlineMs: 200, reason: "bench drain" });
      }
      const ok = await waitFor(() => players.every((p, i) => p.notices.slice(noticesBefore[i]).some((n) => n.fleetgate === "resumed")), 15_000, "resumed", 20).catch(() => false);
      if (!ok) {
        out.failedEvents++;
        console.error(`[bench:resume] ${kind} ${e + 1}/${EVENTS}: not every player resumed within 15 s`);
        continue;
      }
      console.error(`[bench:resume] ${kind} ${e + 1}/${EVENTS} on ${nodeId}: resumed`);
      // For a drain, the clock starts when the node closed the players (the gateway's "paused").
      if (kind === "drain") at = Math.min(...players.map((p, i) => p.notices.slice(noticesBefore[i]).find((n) => n.fleetgate === "paused")!.at));
      await Bun.sleep(300);
      for (const [i, p] of players.entries()) {
        const resumedAt = p.notices.slice(noticesBefore[i]).find((n) => n.fleetgate === "resumed")!.at;
        const first = firstFrameAfter(p, resumedAt);
        if (first !== undefined) out.firstFrame.push(resumedAt - at + first);
        out.silence.push(longestSilence(p, at - 100, performance.now() - 200));
      }
      if (kind === "drain") {
        // The drained node leaves the fleet (stopped after its deadline).
        await waitFor(async () => (await stack.registry.get(nodeId))?.state !== "draining", 30_000, "drained node gone", 100).catch(() => undefined);
      }
    }
  } finally {
    stop();
    await Bun.sleep(300);
    out.heldFrames = stats.heldFrames - heldBefore;
    out.delivered = players.reduce((n, p) => n + p.received, 0);
    // A frame lost with the node is missed by each of the other players: count it once.
    out.lostInFlight = Math.round(players.reduce((n, p) => n + p.gaps, 0) / (PLAYERS - 1));
    out.closed = players.reduce((n, p) => n + p.closes.length, 0);
    for (const p of players) p.ws.close();
  }
  return out;
}

function row(kind: string, o: Outcome): string {
  const f = (x: number) => `${x.toFixed(0)} ms`;
  return `| ${kind} | ${EVENTS - o.failedEvents}/${EVENTS} | ${f(percentile(o.firstFrame, 0.5))} | ${f(percentile(o.firstFrame, 0.99))} | ${f(percentile(o.silence, 0.99))} | ${o.heldFrames} | ${o.delivered} | ${o.lostInFlight} | ${o.closed} |`;
}

if (!hasRedis || !hasDocker) {
  console.error("bench:resume needs Redis and a Docker engine");
  process.exit(1);
}
const port = freePort();
const stack = await startStack("docker", {
  port,
  fleetgateUrl: `http://127.0.0.1:${port}`,
  nodeRoomMode: "relay",
  maxPlayersPerServer: 16,
  minReadyServers: 0,
  // Killed nodes stay in the registry (unhealthy) until reaped: room for 2 × EVENTS of them.
  maxServers: 2 * EVENTS + 4,
  scaleUpUtilization: 1,
  inactivityShutdownMs: 600_000,
  healthCheckIntervalMs: 500,
  healthCheckTimeoutMs: 300,
  nodeDrainMs: 1000,
  cleanupDeleteMs: 1,
});
try {
  await stack.client.requestScaleUp({ count: 2, region: "local", reason: "bench", requestId: "bench-first" });
  await waitFor(async () => (await ready(stack)).length >= 2, 60_000, "two nodes", 100);
  const kill = await run(stack, "kill");
  const drain = await run(stack, "drain");
  console.log(`\nbench:resume — ${PLAYERS} players in one room at ${HZ} msg/s each, Docker nodes (host network), ${EVENTS} events each; ${availableParallelism()} cores, load ${loadavg()[0]!.toFixed(2)}\n`);
  console.log("| event | resumed | loss → first frame on the new node p50 | p99 | longest silence p99 | frames held by the gateway and delivered | frames received (all players) | frames lost in flight to the old node | sockets closed |");
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  console.log(row("docker kill", kill));
  console.log(row("drain deadline (0.2 s)", drain));
} finally {
  await stack.stop();
}
