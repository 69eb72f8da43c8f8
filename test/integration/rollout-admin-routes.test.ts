/**
 * The fleet version and rollout admin API through a real gateway and Redis (the rollout job itself
 * is not running here — its queue is checked): start (202, one job per rollout), 409 while one
 * runs, 400 for an image no Docker host has and for bad input, GET fleet / rollout, promote,
 * cancel, and a node restart queued as a job.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { jobIds } from "../../model/jobs.ts";
import { RedisRolloutStore, defaultVersion } from "../../model/rollouts.ts";
import { startTestGateway, type TestGateway } from "../support/gateway-fixtures.ts";
import { makeNode } from "../support/nodes.ts";
import { need, testRedis, type TestRedis } from "../support/services.ts";

describe.skipIf(!need("redis") || !need("docker"))("rollout admin routes", () => {
  let t: TestRedis;
  let gw: TestGateway;
  let admin: string;
  let player: string;

  beforeAll(async () => {
    t = testRedis("rolladm");
    // Docker driver: the image check asks the engine (fleetgate-node:latest exists, a random tag does not).
    gw = await startTestGateway(t.prefix, { maxServers: 7, nodeDriver: "docker", nodeImage: "fleetgate-node:latest" });
    admin = await gw.token("admin_1", ["admin"]);
    player = await gw.token("player_1", ["player"]);
    await gw.deps.nodes.create(makeNode({ id: "n-old-a", state: "ready", version: "latest", image: "fleetgate-node:latest", rooms: 2, players: 5 }), Date.now());
    await gw.deps.nodes.create(makeNode({ id: "n-old-b", state: "ready", version: "" }), Date.now());
  });
  afterAll(async () => {
    await gw.stop();
    await t.cleanup();
  });

  /** `token` null: no Authorization header. */
  const req = (method: string, path: string, body?: unknown, token: string | null = admin) =>
    fetch(`${gw.url}${path}`, {
      method,
      headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  async function expectError(res: Response, status: number, code: string): Promise<void> {
    expect(res.status).toBe(status);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe(code);
  }

  test("bad input is a 400, a player a 403, an image no host has a 400 — and nothing starts", async () => {
    await expectError(await req("POST", "/v1/admin/fleet/rollouts", { image: "fleetgate-node:latest" }, player), 403, "NOT_ADMIN");
    await expectError(await req("POST", "/v1/admin/fleet/rollouts", { image: "fleetgate-node:latest" }, null), 401, "TOKEN_MISSING");
    for (const [body, code] of [
      [{}, "INVALID_IMAGE"],
      [{ image: "" }, "INVALID_IMAGE"],
      [{ image: "bad image" }, "INVALID_IMAGE"],
      [{ image: "x:v9", version: "no spaces" }, "INVALID_VERSION"],
      [{ image: "x:v9", canaryPercent: 0 }, "INVALID_CANARY"],
      [{ image: "x:v9", canaryPercent: 101 }, "INVALID_CANARY"],
      [{ image: "x:v9", maxSurge: 0 }, "INVALID_MAX_SURGE"],
      [{ image: "x:v9", drainDeadlineSeconds: -1 }, "INVALID_DEADLINE"],
      [{ image: "x:v9", env: { NODE_TOKEN: "x" } }, "INVALID_ENV"],
      [{ image: "x:v9", env: [] }, "INVALID_ENV"],
      [{ image: `fleetgate-node:nope-${crypto.randomUUID().slice(0, 8)}` }, "IMAGE_NOT_FOUND"],
    ] as const) {
      await expectError(await req("POST", "/v1/admin/fleet/rollouts", body), 400, code);
    }
    await expectError(await req("POST", "/v1/admin/fleet/rollouts", { image: "fleetgate-node:latest" }), 409, "VERSION_ACTIVE");
    expect(await gw.deps.queues.rollout.getJobCounts("waiting", "active")).toEqual({ waiting: 0, active: 0 });
  });

  test("start → 202 with one job; a second start is 409 ROLLOUT_RUNNING; promote, GET, cancel", async () => {
    const res = await req("POST", "/v1/admin/fleet/rollouts", { image: "fleetgate-node:latest", version: "v2", canaryPercent: 25, maxSurge: 2, drainDeadlineSeconds: 20 });
    expect(res.status).toBe(202);
    const { rolloutId } = (await res.json()) as { rolloutId: string };
    const job = await gw.deps.queues.rollout.getJob(jobIds.rollout(rolloutId));
    expect(job?.data).toEqual({ rolloutId });
    await expectError(await req("POST", "/v1/admin/fleet/rollouts", { image: "fleetgate-node:latest", version: "v3" }), 409, "ROLLOUT_RUNNING");

    const fleet = (await (await req("GET", "/v1/admin/fleet")).json()) as { versions: Array<{ version: string; state: string; nodes: number; rooms: number; players: number }>; rollout: { id: string; state: string } };
    expect(fleet.versions).toEqual([
      { version: "latest", image: "fleetgate-node:latest", state: "active", nodes: 2, rooms: 2, players: 5 } as never,
      { version: "v2", image: "fleetgate-node:latest", state: "canary", nodes: 0, rooms: 0, players: 0 } as never,
    ]);
    expect(fleet.rollout).toMatchObject({ id: rolloutId, state: "running" });

    const one = (await (await req("GET", `/v1/admin/fleet/rollouts/${rolloutId}`)).json()) as Record<string, unknown>;
    expect(one).toMatchObject({ id: rolloutId, version: "v2", fromVersion: "latest", state: "running", canaryPercent: 25, maxSurge: 2, drainDeadlineSeconds: 20, oldNodes: 2, newNodes: 0, roomsOnOld: 2, playersOnOld: 5 });
    expect((one.timeline as Array<{ event: string }>).map((e) => e.event)).toEqual(["started"]);

    expect((await req("POST", `/v1/admin/fleet/rollouts/${rolloutId}/promote`)).status).toBe(202);
    const store = new RedisRolloutStore(t.redis, t.keys, defaultVersion("fleetgate-node:latest"));
    expect((await store.routing()).canaryPercent).toBe(100);
    const after = (await (await req("GET", "/v1/admin/fleet")).json()) as { versions: Array<{ version: string; state: string }> };
    expect(after.versions.map((v) => `${v.version}:${v.state}`)).toEqual(["latest:retiring", "v2:active"]);

    expect((await req("POST", `/v1/admin/fleet/rollouts/${rolloutId}/cancel`)).status).toBe(202);
    await expectError(await req("POST", `/v1/admin/fleet/rollouts/${rolloutId}/cancel`), 409, "ROLLOUT_NOT_RUNNING");
    await expectError(await req("POST", `/v1/admin/fleet/rollouts/${rolloutId}/promote`), 409, "ROLLOUT_NOT_RUNNING");
    const done = (await (await req("GET", `/v1/admin/fleet/rollouts/${rolloutId}`)).json()) as { state: string; reason: string; finishedAt: string };
    expect(done.state).toBe("cancelled");
    expect(done.reason).toBe("cancelled by admin_1");
    expect(typeof done.finishedAt).toBe("string");
    const routing = await store.routing();
    expect(routing.active.version).toBe("latest");
    expect(routing.target).toBeUndefined();
    await expectError(await req("GET", "/v1/admin/fleet/rollouts/ro-nope"), 404, "ROLLOUT_NOT_FOUND");
    await expectError(await req("GET", "/v1/admin/fleet/rollouts/..%2F..%2Fetc"), 404, "ROLLOUT_NOT_FOUND");
  });

  test("restart: a restart job for a ready node; unknown 404, stopped 409", async () => {
    const res = await req("POST", "/v1/admin/nodes/n-old-a/restart", { deadlineSeconds: 5 });
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ nodeId: "n-old-a", state: "ready", deadlineSeconds: 5 });
    expect((await gw.deps.queues.rollout.getJob(jobIds.restart("n-old-a")))?.data).toMatchObject({ nodeId: "n-old-a", deadlineMs: 5_000 });
    await expectError(await req("POST", "/v1/admin/nodes/n-nope/restart", {}), 404, "NODE_NOT_FOUND");
    await gw.deps.nodes.create(makeNode({ id: "n-stopped", state: "stopped" }), Date.now());
    await expectError(await req("POST", "/v1/admin/nodes/n-stopped/restart", {}), 409, "NODE_NOT_RESTARTABLE");
    await expectError(await req("POST", "/v1/admin/nodes/n-old-a/restart", { deadlineSeconds: "x" }), 400, "INVALID_DEADLINE");
  });

  test("GET /v1/servers shows each node's version; /v1/capacity and /metrics break the fleet down per version", async () => {
    const servers = (await (await fetch(`${gw.url}/v1/servers`)).json()) as Array<{ id: string; version: string }>;
    expect(servers.find((s) => s.id === "n-old-a")?.version).toBe("latest");
    const cap = (await (await fetch(`${gw.url}/v1/capacity`)).json()) as { versions: Record<string, { nodes: number; rooms: number; players: number; state: string }> };
    expect(cap.versions.latest).toMatchObject({ state: "active", nodes: 2, rooms: 2, players: 5 });
    const text = await (await fetch(`${gw.url}/metrics`)).text();
    expect(text).toMatch(/fleetgate_version_nodes\{state="ready",version="latest"\} 2/);
    expect(text).toMatch(/fleetgate_version_rooms\{version="latest"\} 2/);
    expect(text).toMatch(/fleetgate_version_players\{version="latest"\} 5/);
    expect(text).toMatch(/fleetgate_rollout_running 0/);
    expect(text).toMatch(/fleetgate_rollout_info\{from="latest",rollout="ro-[a-z0-9-]+",state="cancelled",version="v2"\} 1/);
    expect(text).toMatch(/fleetgate_rollout_nodes\{side="old"\} 2/);
  });
});
