/**
 * Two matchmaker workers (BullMQ job scheduler ticks) over 1,000 tickets against a real Redis:
 * every ticket is matched exactly once or expires, every room is within capacity, teams balanced.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { realClock } from "../../core/clock.ts";
import { testConfig } from "../../core/config.ts";
import { silentLogger } from "../../core/log.ts";
import { MetricsRegistry } from "../../core/metrics.ts";
import type { QueuedTicket } from "../../model/tickets/match-plan.ts";
import { startMatchmaker } from "../../scheduler/matchmaker/index.ts";
import type { MatchPassResult } from "../../scheduler/matchmaker/match-pass.ts";
import { TicketStore } from "../../model/tickets/ticket-store.ts";
import { RoomStore } from "../../model/rooms/room-store.ts";
import { need, testRedis, waitFor } from "../support/services.ts";

describe.skipIf(!need("redis"))("two matchmaker workers, 1,000 tickets", () => {
  const tr = testRedis("mmw");
  const closers: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of closers) await c();
    await tr.cleanup();
  });

  test("every ticket matched exactly once or expired; rooms within capacity; teams balanced", async () => {
    const config = testConfig({
      matchmakerIntervalMs: 20,
      flushWaitMs: 400,
      regionFallbackWaitMs: 250,
      ticketTtlMs: 1500,
      sessionSize: 8,
      minPartialSessionSize: 2,
    });
    const ticks = new Map<string, MatchPassResult[]>();
    const metrics = new MetricsRegistry();
    for (const name of ["w1", "w2"]) {
      const mm = await startMatchmaker({
        config,
        keys: tr.keys,
        redis: tr.redis,
        newRedis: () => tr.connect(),
        clock: realClock,
        log: silentLogger,
        name,
        metrics,
        onTick: (r, w) => ticks.set(w, [...(ticks.get(w) ?? []), r]),
      });
      closers.push(() => mm.close());
    }

    const store = new TicketStore({ redis: tr.redis, keys: tr.keys, config });
    // ctf: rated, three regions of different sizes; dm: unrated; rare: one ticket that can only expire.
    const plan: { mode: string; region: string; rated: boolean; n: number }[] = [
      { mode: "ctf", region: "eu", rated: true, n: 400 },
      { mode: "ctf", region: "us", rated: true, n: 300 },
      { mode: "ctf", region: "ap", rated: true, n: 103 },
      { mode: "dm", region: "eu", rated: false, n: 196 },
      { mode: "rare", region: "eu", rated: false, n: 1 },
    ];
    const all: QueuedTicket[] = [];
    for (const p of plan) for (let i = 0; i < p.n; i++) all.push({ id: "", playerId: `${p.mode}-${p.region}-${i}`, mode: p.mode, region: p.region, createdAt: 0, ...(p.rated ? { rating: 800 + ((i * 7919) % 1600) } : {}) });
    all.sort(() => Math.random() - 0.5);
    expect(all).toHaveLength(1000);

    // Arrivals in waves of 100 every 40 ms, so ticks overlap arrivals as in production.
    const created: QueuedTicket[] = [];
    for (let w = 0; w < all.length; w += 100) {
      const wave = all.slice(w, w + 100);
      const ids = await Promise.all(wave.map((t) => store.create(t, realClock.now())));
      wave.forEach((t, i) => created.push({ ...t, id: ids[i]! }));
      await Bun.sleep(40);
    }

    // Done when no ticket is queued any more (bounded: TTL + a margin).
    const records = await waitFor(
      async () => {
        const recs = await Promise.all(created.map((t) => store.get(t.id)));
        return recs.every((r) => r && r.status !== "queued") ? recs : null;
      },
      config.ticketTtlMs + 5000,
      "every ticket matched or expired",
      100,
    );

    const byRoom = new Map<string, { playerId: string; team: number; rating: number | undefined }[]>();
    let expired = 0;
    for (const r of records) {
      expect(["matched", "expired"]).toContain(r!.status);
      if (r!.status === "expired") {
        expired++;
        continue;
      }
      byRoom.set(r!.roomCode!, [...(byRoom.get(r!.roomCode!) ?? []), { playerId: r!.playerId, team: r!.team!, rating: r!.rating }]);
    }
    const rareTicket = created.find((t) => t.mode === "rare")!;
    expect(records.find((r) => r!.id === rareTicket.id)!.status).toBe("expired");
    // At most one leftover per mode can be left to expire.
    expect(expired).toBeLessThanOrEqual(3);

    const rooms = new RoomStore({ redis: tr.redis, keys: tr.keys, config });
    const seenPlayers = new Set<string>();
    let full = 0;
    for (const [code, members] of byRoom) {
      const room = (await rooms.get(code))!;
      // The room's seats are exactly the tickets that name it: nothing matched twice, nothing lost.
      expect(room.players.slice().sort()).toEqual(members.map((m) => m.playerId).sort());
      expect(members.length).toBeLessThanOrEqual(config.sessionSize);
      expect(members.length).toBeGreaterThanOrEqual(config.minPartialSessionSize);
      if (members.length === config.sessionSize) full++;
      for (const m of members) {
        expect(seenPlayers.has(m.playerId)).toBe(false);
        seenPlayers.add(m.playerId);
      }
      const a = members.filter((m) => m.team === 0);
      const b = members.filter((m) => m.team === 1);
      expect(Math.abs(a.length - b.length)).toBeLessThanOrEqual(1);
      expect(room.teams!.map((t) => t.length)).toEqual([a.length, b.length]);
      if (members.every((m) => m.rating !== undefined)) {
        const diff = Math.abs(sum(a) - sum(b));
        expect(diff).toBe(bestSplit(members.map((m) => m.rating!)));
      }
    }
    expect(seenPlayers.size + expired).toBe(1000);
    expect(full).toBeGreaterThanOrEqual(110);
    // Both workers ran ticks and placed players.
    expect([...ticks.keys()].sort()).toEqual(["w1", "w2"]);
    for (const name of ["w1", "w2"]) expect(ticks.get(name)!.length).toBeGreaterThan(0);
    const placed = [...ticks.values()].flat().reduce((s, r) => s + r.matched, 0);
    expect(placed).toBe(seenPlayers.size);
    expect(metrics.counter("fleetgate_matchmaker_tickets_total", "").get({ outcome: "matched" })).toBe(seenPlayers.size);
    expect(metrics.histogram("fleetgate_matchmaker_ticket_wait_seconds", "").count()).toBe(seenPlayers.size);
    expect(await metrics.render()).toContain("fleetgate_matchmaker_rooms_total");
  }, 20_000);
});

const sum = (ms: { rating: number | undefined }[]) => ms.reduce((s, m) => s + (m.rating ?? 0), 0);

/** The smallest possible rating difference between two teams of sizes ceil(n/2) / floor(n/2), by brute force. */
function bestSplit(ratings: number[]): number {
  const n = ratings.length;
  const total = ratings.reduce((a, b) => a + b, 0);
  let best = Infinity;
  for (let mask = 0; mask < 1 << n; mask++) {
    let count = 0;
    let s = 0;
    for (let i = 0; i < n; i++)
      if (mask & (1 << i)) {
        count++;
        s += ratings[i]!;
      }
    if (count === Math.ceil(n / 2)) best = Math.min(best, Math.abs(total - 2 * s));
  }
  return best;
}
