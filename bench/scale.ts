/**
 * `npm run bench:scale`: how fast a player gets a game server.
 *
 *  - warm: join → first relayed frame when a ready node has a free seat (MIN_READY_SERVERS warm
 *    nodes with MAX_PLAYERS_PER_SERVER seats each): 50 joins one at a time, then 50 paced at
 *    500 joins/s;
 *  - cold: join → first relayed frame when every join needs a new node (MAX_PLAYERS_PER_SERVER=1,
 *    no warm pool): gateway join → scale-up job → container start → /health ready → placement →
 *    WebSocket → echo; 50 joins one after another;
 *  - container starts per second: one scale-up request for 20 nodes, until all are ready.
 *
 * Gateway and scheduler run as their own processes (no HAProxy) against local Redis, with
 * Docker when an engine answers (else ProcessDriver, and it says so). Targets: warm p50 ≤ 5 ms,
 * p99 ≤ 20 ms at ≥ 500 joins/s; cold p50 ≤ 0.6 s. Bounded: 100 + 50 joins, 20 starts, every wait
 * has a timeout. Everything it starts is removed at the end.
 */
import { availableParallelism, loadavg } from "node:os";
import { firstFrame, join, startStack, type Stack, type StackDriver } from "../test/support/scheduler-stack.ts";
import { hasDocker, hasRedis, waitFor } from "../test/support/services.ts";

const JOINS = 50;
const WARM_RATE = 500; // joins per second offered in the warm run
const BURST = 20;

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

const fmt = (ms: number) => (ms >= 100 ? `${(ms / 1000).toFixed(3)} s` : `${ms.toFixed(2)} ms`);

async function readyCount(stack: Stack): Promise<number> {
  return (await stack.registry.list()).filter((n) => n.state === "ready").length;
}

interface WarmResult {
  /** One join at a time: the path's own latency. */
  sequential: { p50: number; p99: number };
  /** Joins paced at WARM_RATE: latency under load and the rate achieved. */
  paced: { p50: number; p99: number; max: number; rate: number; joinP50: number; frameP50: number };
}

async function warm(kind: StackDriver): Promise<WarmResult> {
  // 2 warm nodes × 100 seats hold the 1 + 50 + 50 players of this run with utilisation below
  // SCALE_UP_UTILIZATION, so no node starts mid-measurement.
  const seats = 100;
  const stack = await startStack(kind, { maxPlayersPerServer: seats, minReadyServers: 2, maxServers: 10, inactivityShutdownMs: 600_000, joinWaitTimeoutMs: 10_000 }, { processes: true });
  try {
    await waitFor(async () => (await readyCount(stack)) >= 2, 30_000, "warm pool", 50);
    // Tokens first: signing is not part of a join.
    const tokens = await Promise.all(Array.from({ length: JOINS }, () => stack.gw.token()));
    // One untimed join warms the gateway's code paths and connections.
    const w = await join(stack.gw);
    (await firstFrame(stack.gw, w.token, w.body)).close();
    const seq: number[] = [];
    for (let i = 0; i < JOINS; i++) {
      const tok = await stack.gw.token();
      const s = performance.now();
      const j = await join(stack.gw, tok);
      const f = await firstFrame(stack.gw, tok, j.body);
      seq.push(performance.now() - s);
      f.close();
    }
    const times: number[] = [];
    const joinTimes: number[] = [];
    const frameTimes: number[] = [];
    const closers: (() => void)[] = [];
    const t0 = performance.now();
    await Promise.all(
      tokens.map(async (tok, i) => {
        await Bun.sleep((i * 1000) / WARM_RATE);
        const s = performance.now();
        const j = await join(stack.gw, tok);
        const f = await firstFrame(stack.gw, tok, j.body);
        times.push(performance.now() - s);
        joinTimes.push(j.ms);
        frameTimes.push(f.ms);
        closers.push(f.close);
      }),
    );
    const wall = performance.now() - t0;
    for (const c of closers) c();
    return {
      sequential: { p50: pct(seq, 50), p99: pct(seq, 99) },
      paced: {
        p50: pct(times, 50),
        p99: pct(times, 99),
        max: Math.max(...times),
        rate: (JOINS / wall) * 1000,
        // Where the time goes: the HTTP join, then WebSocket open + first echo.
        joinP50: pct(joinTimes, 50),
        frameP50: pct(frameTimes, 50),
      },
    };
  } finally {
    await stack.stop();
  }
}

async function cold(kind: StackDriver): Promise<{ p50: number; p99: number; startsPerSecond: number; burstMs: number }> {
  // SCALE_UP_UTILIZATION=1: no spare started ahead of demand, so every join really is cold.
  const stack = await startStack(kind, { maxPlayersPerServer: 1, minReadyServers: 0, scaleUpUtilization: 1, maxServers: JOINS + BURST + 10, inactivityShutdownMs: 600_000, joinWaitTimeoutMs: 20_000 }, { processes: true });
  try {
    const times: number[] = [];
    for (let i = 0; i < JOINS; i++) {
      const tok = await stack.gw.token();
      const s = performance.now();
      const j = await join(stack.gw, tok);
      const f = await firstFrame(stack.gw, tok, j.body);
      times.push(performance.now() - s);
      f.close();
    }
    const before = await readyCount(stack);
    const s = performance.now();
    await stack.client.requestScaleUp({ count: BURST, region: stack.config.region, reason: "bench: start burst", requestId: `bench-burst-${Date.now()}` });
    await waitFor(async () => (await readyCount(stack)) >= before + BURST, 120_000, `${BURST} nodes ready`, 20);
    const burstMs = performance.now() - s;
    return { p50: pct(times, 50), p99: pct(times, 99), startsPerSecond: (BURST / burstMs) * 1000, burstMs };
  } finally {
    await stack.stop();
  }
}

async function main(): Promise<void> {
  if (!hasRedis) {
    console.error("bench:scale needs Redis at REDIS_URL");
    process.exit(1);
  }
  const kind: StackDriver = hasDocker ? "docker" : "process";
  console.log(`bench:scale — driver ${kind}${hasDocker ? "" : " (no Docker engine answers: cold starts are processes, not containers)"}; gateway and scheduler as processes, no HAProxy`);
  const w = await warm(kind);
  console.log(`load: ${loadavg().map((l) => l.toFixed(2)).join(" ")} (1/5/15 min) on ${availableParallelism()} cores`);
  console.log(`warm  join → first frame, one at a time: p50 ${fmt(w.sequential.p50)}  p99 ${fmt(w.sequential.p99)}`);
  console.log(
    `warm  join → first frame, paced: p50 ${fmt(w.paced.p50)}  p99 ${fmt(w.paced.p99)}  max ${fmt(w.paced.max)}  at ${w.paced.rate.toFixed(0)} joins/s (offered ${WARM_RATE}; p50 of the join ${fmt(w.paced.joinP50)}, of connect + first frame ${fmt(w.paced.frameP50)})  (targets p50 ≤ 5 ms, p99 ≤ 20 ms, ≥ 500 joins/s)`,
  );
  const c = await cold(kind);
  console.log(`cold  join → first frame: p50 ${fmt(c.p50)}  p99 ${fmt(c.p99)}  (target p50 ≤ 0.6 s)`);
  console.log(`starts: ${BURST} nodes in ${fmt(c.burstMs)} = ${c.startsPerSecond.toFixed(1)} starts/s`);
  console.log(JSON.stringify({ driver: kind, warm: w, cold: c }));
  process.exit(0);
}

await main();
