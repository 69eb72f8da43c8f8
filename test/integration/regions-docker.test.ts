/**
 * Regions end to end on this machine's Docker engine, listed twice under two region names
 * (DOCKER_HOSTS `us=unix:///var/run/docker.sock,eu=unix:///var/run/docker.sock`): one gateway per
 * region (GATEWAY_REGION), each behind a delaying TCP proxy that stands for its distance (no
 * `netem` here), so the client SDK's measured round trips favour `us`. A player lands in `us`;
 * with `us` full (and MAX_SERVERS reached) in `eu` — only after REGION_FALLBACK_WAIT; and never in
 * a region beyond MAX_REGION_RTT, even with a free seat there.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { realClock } from "../../core/clock.ts";
import type { Config } from "../../core/config.ts";
import { silentLogger } from "../../core/log.ts";
import { startReplicaHeartbeat, type ReplicaPresence } from "../../gateway/ops/replica.ts";
import { ensureNodeImage } from "../../node/image.ts";
import { DockerDriver, LABEL_FLEET, LABEL_REGION } from "../../scheduler/drivers/docker-driver.ts";
import { fleetName } from "../../scheduler/drivers/create-driver.ts";
import { startScheduler, type RunningScheduler } from "../../scheduler/start-scheduler.ts";
import { FleetgateClient } from "../../sdk/client/src/index.ts";
import { startDelayProxy, type DelayProxy } from "../support/delay-proxy.ts";
import { TicketStore } from "../../model/tickets/ticket-store.ts";
import { gatewayTestConfig, openSocket, startTestGateway, type TestGateway } from "../support/gateway-fixtures.ts";
import { NODE_IMAGE, docker, removeFleetContainers } from "../support/scheduler-stack.ts";
import { need, testRedis, waitFor, type TestRedis } from "../support/services.ts";

const SOCK = "unix:///var/run/docker.sock";
const FALLBACK_WAIT_MS = 1500;
const JOIN_WAIT_MS = 4000;

describe.skipIf(!(need("redis") && need("docker")))("regions on two region-named Docker hosts", () => {
  let tr: TestRedis;
  let config: Config;
  let fleet: string;
  const gw: Record<"us" | "eu", TestGateway> = {} as Record<"us" | "eu", TestGateway>;
  const proxy: Record<"us" | "eu", DelayProxy> = {} as Record<"us" | "eu", DelayProxy>;
  const presence: ReplicaPresence[] = [];
  let sched: RunningScheduler;
  const clients: FleetgateClient[] = [];

  beforeAll(async () => {
    tr = testRedis("regions");
    fleet = fleetName(tr.prefix);
    await ensureNodeImage({ image: NODE_IMAGE });
    const start = 43_000 + Math.floor(Math.random() * 100) * 20;
    const common: Partial<Config> = {
      region: "us",
      dockerHosts: [SOCK, SOCK],
      dockerHostRegions: ["us", "eu"],
      regionFallbackWaitMs: FALLBACK_WAIT_MS,
      maxRegionRttMs: 150,
      maxPlayersPerServer: 2,
      nodeMaxPlayers: 8,
      maxServers: 2,
      joinWaitTimeoutMs: JOIN_WAIT_MS,
      inactivityShutdownMs: 120_000,
      nodeImage: NODE_IMAGE,
      nodeRoomMode: "echo",
      schedulerMetricsPort: 0,
      stopNodesOnExit: true,
      serverPortStart: start,
      serverPortEnd: start + 19,
    };
    config = gatewayTestConfig(tr.prefix, common);
    for (const region of ["us", "eu"] as const) {
      gw[region] = await startTestGateway(tr.prefix, { ...common, gatewayRegion: region });
      proxy[region] = startDelayProxy(gw[region].port, region === "us" ? 15 : 90);
      // As gateway/main.ts registers a replica: its region and the URL clients reach it at.
      presence.push(
        await startReplicaHeartbeat(
          gw[region].deps.gateways,
          { id: `gw-${region}`, host: "127.0.0.1", port: gw[region].port, region, publicUrl: proxy[region].url, startedAt: Date.now() },
          { clock: realClock, intervalMs: 500, log: silentLogger },
        ),
      );
    }
    const driver = new DockerDriver({ fleet, image: NODE_IMAGE, dockerHosts: [SOCK, SOCK], hostRegions: ["us", "eu"], network: "host", bindAddress: "127.0.0.1", memoryMb: 128, cpus: 0.5 });
    sched = await startScheduler({ config, driver, log: silentLogger, matchmaker: false, sweepSessions: false });
    // One node per region, asked for by region as a scale-up does.
    await sched.client.requestScaleUp({ count: 1, region: "us", reason: "test", requestId: "us-1" });
    await sched.client.requestScaleUp({ count: 1, region: "eu", reason: "test", requestId: "eu-1" });
    await waitFor(async () => (await sched.registry.list()).filter((n) => n.state === "ready").length === 2, 30_000, "a ready node in each region", 100);
  }, 60_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    for (const p of presence) await p.stop().catch(() => {});
    for (const r of ["us", "eu"] as const) {
      proxy[r]?.stop();
      await gw[r]?.stop();
    }
    await sched?.close();
    if (fleet) await removeFleetContainers(fleet);
    await tr?.cleanup();
  });

  const nodeIn = async (region: string) => (await sched.registry.list()).find((n) => n.region === region)!;

  async function player(name: string): Promise<FleetgateClient> {
    const c = new FleetgateClient({ baseUrl: gw.us.url, requestTimeoutMs: 20_000 });
    clients.push(c);
    await c.signInAsGuest({ displayName: name });
    return c;
  }

  test("each node carries its Docker host's region (record and container label)", async () => {
    const nodes = await sched.registry.list();
    expect(nodes.map((n) => n.region).sort()).toEqual(["eu", "us"]);
    const containers = await docker.listContainers({ all: true, filters: { label: [`${LABEL_FLEET}=${fleet}`] } });
    expect(containers.map((c) => c.Labels[LABEL_REGION]).sort()).toEqual(["eu", "us"]);
    // The same engine listed twice: the driver still sees each container once.
    expect((await sched.registry.list()).length).toBe(2);
  });

  test("GET /v1/regions: every region with its own gateway's ping URL, nodes and capacity; the ping URL answers 204", async () => {
    const res = await fetch(`${gw.us.url}/v1/regions`);
    expect(res.status).toBe(200);
    const { regions } = (await res.json()) as { regions: { name: string; pingUrl: string; nodes: number; capacity: number; players: number }[] };
    expect(regions).toEqual([
      { name: "eu", pingUrl: `${proxy.eu.url}/v1/ping`, nodes: 1, capacity: 2, players: 0 },
      { name: "us", pingUrl: `${proxy.us.url}/v1/ping`, nodes: 1, capacity: 2, players: 0 },
    ]);
    const ping = await fetch(regions[0]!.pingUrl);
    expect(ping.status).toBe(204);
  });

  test("measured round trips favour us: two players land in us at once; the third waits REGION_FALLBACK_WAIT, then eu", async () => {
    for (const name of ["a", "b"]) {
      const p = await player(name);
      const choice = await p.regions.choose({ samples: 3 });
      expect(choice.region).toBe("us");
      expect(choice.latencies.us!).toBeLessThan(choice.latencies.eu!);
      expect(choice.latencies.eu!).toBeGreaterThanOrEqual(90);
      expect(choice.latencies.eu!).toBeLessThanOrEqual(150);
      const t0 = performance.now();
      const s = await p.join({ latencies: choice.latencies });
      expect(performance.now() - t0).toBeLessThan(FALLBACK_WAIT_MS);
      expect(s.nodeId).toBe((await nodeIn("us")).id);
    }
    // us is full (2 of 2) and MAX_SERVERS (2) is reached: no us node can come.
    const c = await player("c");
    const choice = await c.regions.choose({ samples: 3 });
    expect(choice.region).toBe("us");
    const t0 = performance.now();
    const s = await c.join({ latencies: choice.latencies });
    const waited = performance.now() - t0;
    expect(s.nodeId).toBe((await nodeIn("eu")).id);
    expect(waited).toBeGreaterThanOrEqual(FALLBACK_WAIT_MS - 50);
    expect(waited).toBeLessThan(JOIN_WAIT_MS);
  }, 30_000);

  test("never beyond MAX_REGION_RTT: with eu measured at 300 ms the player gets 503, though eu has a free seat", async () => {
    proxy.eu.delayMs = 300;
    const d = await player("d");
    const choice = await d.regions.choose({ samples: 2 });
    expect(choice.latencies.eu!).toBeGreaterThan(150);
    const t0 = performance.now();
    const err = await d.join({ latencies: choice.latencies }).then(
      () => undefined,
      (e: unknown) => e as { status?: number; code?: string },
    );
    // us is full with MAX_SERVERS reached and eu is too far: no node can take this player, so the
    // join says so (the previous test's player, with eu within MAX_REGION_RTT, got eu instead).
    expect(err?.status).toBe(503);
    expect(err?.code).toBe("NO_CAPACITY");
    expect(performance.now() - t0).toBeLessThan(JOIN_WAIT_MS);
    const eu = await nodeIn("eu");
    expect(eu.reservedSeats).toBe(1);
    proxy.eu.delayMs = 90;
  }, 30_000);

  test("a player whose round trips favour eu lands there at once", async () => {
    proxy.us.delayMs = 200;
    proxy.eu.delayMs = 10;
    const e = await player("e");
    const choice = await e.regions.choose({ samples: 3 });
    expect(choice.region).toBe("eu");
    const t0 = performance.now();
    const s = await e.join({ latencies: choice.latencies });
    expect(performance.now() - t0).toBeLessThan(FALLBACK_WAIT_MS);
    expect(s.nodeId).toBe((await nodeIn("eu")).id);
    // And /v1/regions counts the players where they are.
    const { regions } = (await (await fetch(`${gw.eu.url}/v1/regions`)).json()) as { regions: { name: string; players: number }[] };
    expect(Object.fromEntries(regions.map((r) => [r.name, r.players]))).toEqual({ eu: 2, us: 2 });
  }, 30_000);

  test("rooms and tickets take latencies: a room goes to the creator's best region on its first connect; a ticket queues there with its fallbacks", async () => {
    // Free every seat: the sessions leave.
    for (const c of clients) if (c.session) await c.leave();
    await waitFor(async () => (await sched.registry.list()).every((n) => n.reservedSeats === 0), 5000, "seats released");
    proxy.us.delayMs = 15;
    proxy.eu.delayMs = 90;
    const host = await player("host");
    const choice = await host.regions.choose({ samples: 3 });
    expect(choice.region).toBe("us");
    const room = await host.rooms.create({ visibility: "public", maxPlayers: 2, latencies: choice.latencies });
    expect(room.region).toBe("us");
    const s = openSocket(room.connectUrl, ["bearer", (await host.tokenForSocket(false))!]);
    try {
      await s.opened;
      expect((await host.rooms.get(room.code)).nodeId).toBe((await nodeIn("us")).id);
    } finally {
      s.ws.close();
    }

    const q = await player("queued");
    const mine = await q.regions.choose({ samples: 3 });
    const ticket = await q.matchmaking.createTicket({ mode: "duel", latencies: mine.latencies });
    const store = new TicketStore({ redis: tr.redis, keys: tr.keys, config });
    const queued = await store.readQueue("duel", "us", 10);
    expect(queued.tickets.map((t) => [t.id, t.region, t.fallbacks])).toEqual([[ticket.ticketId, "us", ["eu"]]]);
  }, 30_000);
});
