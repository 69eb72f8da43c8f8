/**
 * Matchmaking benchmark (`npm run bench:matchmaking`): 10,000 tickets arrive as fast as the
 * client can enqueue them (saturation), BullMQ matchmaker workers place them in full 4v4 rooms.
 * Reports the time to place them all and the ticket wait (matchedAt - createdAt) percentiles,
 * for one worker (baseline) and for two workers, in the same run. Each scenario runs under its own
 * random Redis prefix, deleted afterwards.
 *
 * Environment (entry point, like a main.ts): REDIS_URL, BENCH_TICKETS (10000), BENCH_WORKERS
 * ("1,2"), MATCHMAKER_INTERVAL (0.1 s, the default tick).
 */
import { realClock } from "../core/clock.ts";
import { loadConfig, type Config } from "../core/config.ts";
import { createKeys } from "../core/keys.ts";
import { silentLogger } from "../core/log.ts";
import { createRedis, deletePrefix, type Redis } from "../core/redis.ts";
import { startMatchmaker } from "../scheduler/matchmaker/index.ts";
import { TicketStore } from "../model/tickets/ticket-store.ts";

const env = process.env;
const baseConfig = loadConfig(env);
const TICKETS = Number(env.BENCH_TICKETS ?? 10_000);
const WORKER_COUNTS = (env.BENCH_WORKERS ?? "1,2").split(",").map(Number);
/** Enqueue requests in flight at once (a crowd of clients). */
const ENQUEUE_CONCURRENCY = 200;
/** A scenario gives up after this long (bounded even if something is broken). */
const SCENARIO_TIMEOUT_MS = 60_000;
const REGIONS: [string, number][] = [
  ["eu", 0.5],
  ["us", 0.3],
  ["ap", 0.2],
];

/**
 * `arrivals`: workers run while the tickets arrive (saturation: arrivals as fast as the client
 * can enqueue). `backlog`: all tickets are queued first, then the workers start — the matcher's
 * own throughput, where a second worker could show.
 */
type Shape = "arrivals" | "backlog";

interface Outcome {
  shape: Shape;
  workers: number;
  placeAllMs: number;
  enqueueMs: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  rooms: number;
  ticks: number;
  lostClaims: number;
  overCapacity: number;
  doubleMatched: number;
}

async function scenario(shape: Shape, workers: number): Promise<Outcome> {
  const prefix = `fgbench-mm-${crypto.randomUUID().slice(0, 8)}`;
  const config: Config = Object.freeze({ ...baseConfig, redisPrefix: prefix });
  const keys = createKeys(prefix);
  const redis = createRedis(config.redisUrl);
  const extra: Redis[] = [];
  const newRedis = () => {
    const r = createRedis(config.redisUrl);
    extra.push(r);
    return r;
  };
  let ticks = 0;
  let lost = 0;
  const mms: { close(): Promise<void> }[] = [];
  const startWorkers = async () => {
    for (let w = 0; w < workers; w++) {
      mms.push(
        await startMatchmaker({
          config,
          keys,
          redis,
          newRedis,
          clock: realClock,
          log: silentLogger,
          name: `w${w}`,
          onTick: (r) => {
            ticks += 1;
            lost += r.lost;
          },
        }),
      );
    }
  };
  try {
    if (shape === "arrivals") await startWorkers();
    const store = new TicketStore({ redis, keys, config });
    // Region sizes are multiples of the session size, so every ticket can be placed in a full room.
    const plan: { region: string; rating: number; player: string }[] = [];
    for (const [region, share] of REGIONS) {
      const n = Math.round((TICKETS * share) / config.sessionSize) * config.sessionSize;
      for (let i = 0; i < n; i++) plan.push({ region, rating: 800 + Math.floor(Math.random() * 1600), player: `${region}-${i}` });
    }
    plan.sort(() => Math.random() - 0.5);

    const t0 = performance.now();
    const ids: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: ENQUEUE_CONCURRENCY }, async () => {
        while (next < plan.length) {
          const p = plan[next++]!;
          ids.push(await store.create({ playerId: p.player, mode: "ctf", region: p.region, rating: p.rating }, realClock.now()));
        }
      }),
    );
    const enqueueMs = performance.now() - t0;
    const tPlace = shape === "arrivals" ? t0 : performance.now();
    if (shape === "backlog") await startWorkers();

    const deadline = Date.now() + SCENARIO_TIMEOUT_MS;
    for (;;) {
      const left = (await Promise.all(REGIONS.map(([r]) => redis.zcard(keys.ticketQueue("ctf", r))))).reduce((a, b) => a + b, 0);
      if (left === 0) break;
      if (Date.now() > deadline) throw new Error(`${left} tickets still queued after ${SCENARIO_TIMEOUT_MS} ms`);
      await Bun.sleep(10);
    }
    const placeAllMs = performance.now() - tPlace;

    // Waits and integrity from what Redis recorded.
    const p = redis.pipeline();
    for (const id of ids) p.hmget(keys.ticket(id), "status", "createdAt", "matchedAt", "roomCode", "playerId");
    const rows = ((await p.exec()) ?? []).map(([, v]) => v as (string | null)[]);
    const waits: number[] = [];
    const rooms = new Map<string, Set<string>>();
    let doubleMatched = 0;
    for (const [status, createdAt, matchedAt, roomCode, playerId] of rows) {
      if (status !== "matched") continue;
      waits.push(Number(matchedAt) - Number(createdAt));
      const set = rooms.get(roomCode!) ?? new Set<string>();
      if (set.has(playerId!)) doubleMatched++;
      set.add(playerId!);
      rooms.set(roomCode!, set);
    }
    if (waits.length !== plan.length) throw new Error(`only ${waits.length} of ${plan.length} tickets matched`);
    let overCapacity = 0;
    for (const [code, members] of rooms) {
      const seated = await redis.hlen(keys.roomPlayers(code));
      if (seated !== members.size || seated > config.sessionSize) overCapacity++;
    }
    waits.sort((a, b) => a - b);
    const pct = (q: number) => waits[Math.min(waits.length - 1, Math.floor(q * waits.length))]!;
    return { shape, workers, placeAllMs, enqueueMs, p50: pct(0.5), p90: pct(0.9), p99: pct(0.99), max: waits[waits.length - 1]!, rooms: rooms.size, ticks, lostClaims: lost, overCapacity, doubleMatched };
  } finally {
    for (const m of mms) await m.close();
    await deletePrefix(redis, prefix);
    for (const r of extra) r.disconnect();
    redis.disconnect();
  }
}

const results: Outcome[] = [];
for (const shape of ["arrivals", "backlog"] as const) for (const w of WORKER_COUNTS) results.push(await scenario(shape, w));

console.log(`matchmaking: ${TICKETS} tickets (eu/us/ap 50/30/20, rated), SESSION_SIZE=${baseConfig.sessionSize}, MATCHMAKER_INTERVAL=${baseConfig.matchmakerIntervalMs} ms, ${ENQUEUE_CONCURRENCY} concurrent enqueuers`);
console.log("shape | workers | enqueue all | place all | wait p50 | p90 | p99 | max | rooms | ticks | lost claims | over capacity | double matched");
console.log("(arrivals: place all = first enqueue → last ticket matched; backlog: workers start after every ticket is queued, place all = worker start → last matched, waits include the queueing time)");
for (const r of results) {
  const ms = (x: number) => `${Math.round(x)} ms`;
  console.log(
    [r.shape, r.workers, ms(r.enqueueMs), ms(r.placeAllMs), ms(r.p50), ms(r.p90), ms(r.p99), ms(r.max), r.rooms, r.ticks, r.lostClaims, r.overCapacity, r.doubleMatched].join(" | "),
  );
}
const worst = Math.max(...results.filter((r) => r.shape === "arrivals").map((r) => r.p99));
console.log(`target p99 < 2000 ms for full rooms under saturation: ${worst < 2000 ? "met" : "NOT met"} (worst p99 ${Math.round(worst)} ms)`);
process.exit(0);
