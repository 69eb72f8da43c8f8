/** POST /v1/admin/scale and POST /v1/admin/nodes/:id/drain through a real gateway and Redis. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ScaleStateStore } from "../../model/scale-state.ts";
import { jobIds } from "../../model/jobs.ts";
import { startTestGateway, type TestGateway } from "../support/gateway-fixtures.ts";
import { makeNode } from "../support/nodes.ts";
import { need, testRedis, type TestRedis } from "../support/services.ts";

describe.skipIf(!need("redis"))("fleet admin routes", () => {
  let t: TestRedis;
  let gw: TestGateway;
  let admin: string;
  let player: string;

  beforeAll(async () => {
    t = testRedis("fleetadm");
    gw = await startTestGateway(t.prefix, { maxServers: 7 });
    admin = await gw.token("admin_1", ["admin"]);
    player = await gw.token("player_1", ["player"]);
  });
  afterAll(async () => {
    await gw.stop();
    await t.cleanup();
  });

  const post = (path: string, body: unknown, token?: string) =>
    fetch(`${gw.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  async function expectError(res: Response, status: number, code: string): Promise<void> {
    expect(res.status).toBe(status);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe(code);
    expect(typeof body.error.message).toBe("string");
  }

  test("scale: admin sets the floor in Redis and it is recorded for the dashboard", async () => {
    const res = await post("/v1/admin/scale", { nodes: 3 }, admin);
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ nodes: 3, maxServers: 7 });
    const store = new ScaleStateStore(t.redis, t.keys);
    expect((await store.read()).floor).toBe(3);
    expect((await store.events())[0]).toMatchObject({ action: "floor", count: 3 });
  });

  test("scale: no token 401, player 403, bad values 400 — never a 500", async () => {
    await expectError(await post("/v1/admin/scale", { nodes: 1 }), 401, "TOKEN_MISSING");
    await expectError(await post("/v1/admin/scale", { nodes: 1 }, player), 403, "NOT_ADMIN");
    for (const bad of [{ nodes: -1 }, { nodes: 8 }, { nodes: 1.5 }, { nodes: "2" }, {}, { nodes: null }]) {
      await expectError(await post("/v1/admin/scale", bad, admin), 400, "INVALID_NODES");
    }
  });

  test("drain: queues a drain job with the deadline; unknown 404, wrong state 409, bad input 400", async () => {
    const node = makeNode({ id: "n-admin-drain-0", state: "ready" });
    await gw.deps.nodes.create(node, Date.now());
    const res = await post(`/v1/admin/nodes/${node.id}/drain`, { deadlineSeconds: 30 }, admin);
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ nodeId: node.id, state: "ready", deadlineSeconds: 30 });
    const job = await gw.deps.queues.drain.getJob(jobIds.drain(node.id));
    expect(job?.data).toMatchObject({ nodeId: node.id, deadlineMs: 30_000 });

    const dflt = makeNode({ id: "n-admin-drain-1", state: "ready" });
    await gw.deps.nodes.create(dflt, Date.now());
    expect((await post(`/v1/admin/nodes/${dflt.id}/drain`, undefined, admin)).status).toBe(202);
    expect((await gw.deps.queues.drain.getJob(jobIds.drain(dflt.id)))?.data.deadlineMs).toBe(gw.deps.config.drainDeadlineMs);

    await expectError(await post("/v1/admin/nodes/n-nope/drain", {}, admin), 404, "NODE_NOT_FOUND");
    await expectError(await post("/v1/admin/nodes/bad%20id/drain", {}, admin), 400, "INVALID_NODE_ID");
    await expectError(await post(`/v1/admin/nodes/${node.id}/drain`, { deadlineSeconds: -5 }, admin), 400, "INVALID_DEADLINE");
    await expectError(await post(`/v1/admin/nodes/${node.id}/drain`, { deadlineSeconds: "soon" }, admin), 400, "INVALID_DEADLINE");
    const stopped = makeNode({ id: "n-admin-drain-2", state: "stopped" });
    await gw.deps.nodes.create(stopped, Date.now());
    await expectError(await post(`/v1/admin/nodes/${stopped.id}/drain`, {}, admin), 409, "NODE_NOT_DRAINABLE");
    await expectError(await post(`/v1/admin/nodes/${node.id}/drain`, {}, player), 403, "NOT_ADMIN");
  });
});
