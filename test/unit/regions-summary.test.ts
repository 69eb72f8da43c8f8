import { describe, expect, test } from "bun:test";
import type { GatewayRecord } from "../../core/types.ts";
import { gatewayHttpUrl, regionSummaries, regionsRoutes } from "../../gateway/ops/regions.ts";
import { makeNode } from "../support/nodes.ts";

const gw = (id: string, region: string, publicUrl: string): GatewayRecord => ({ id, host: "127.0.0.1", port: 3000, region, publicUrl, startedAt: 1, lastSeenAt: 1 });

describe("gatewayHttpUrl", () => {
  test.each([
    [{ publicUrl: "ws://edge.example:8080/", host: "127.0.0.1" }, 3000, "http://edge.example:8080"],
    [{ publicUrl: "wss://eu.example", host: "127.0.0.1" }, 3000, "https://eu.example"],
    [{ publicUrl: undefined, host: "0.0.0.0" }, 3001, "http://127.0.0.1:3001"],
    [{ publicUrl: undefined, host: "10.0.0.2" }, 3000, "http://10.0.0.2:3000"],
    [{ publicUrl: undefined, host: "::1" }, 3000, "http://[::1]:3000"],
  ])("%p port %p → %p", (config, port, want) => {
    expect(gatewayHttpUrl(config, port)).toBe(want);
  });
});

describe("regionSummaries", () => {
  const config = { region: "local", dockerHostRegions: ["us", "eu"] };
  const nodes = [
    makeNode({ id: "u1", region: "us", capacity: 8, players: 3 }),
    makeNode({ id: "u2", region: "us", capacity: 8, state: "starting" }),
    makeNode({ id: "u3", region: "us", capacity: 8, state: "stopped" }),
    makeNode({ id: "e1", region: "eu", capacity: 4, players: 4 }),
  ];
  const gateways = [gw("g-us-b", "us", "http://us-b:1"), gw("g-us-a", "us", "http://us-a:1"), gw("g-eu", "eu", "http://eu:1/"), gw("g-old", "", "")];

  test("every region the deployment runs, with its counts and a gateway of its own to ping", () => {
    expect(regionSummaries(config, nodes, gateways)).toEqual([
      { name: "eu", pingUrl: "http://eu:1/v1/ping", nodes: 1, capacity: 4, players: 4 },
      { name: "us", pingUrl: "http://us-a:1/v1/ping", nodes: 2, capacity: 8, players: 3 },
    ]);
  });

  test("the asking replica is its region's ping target", () => {
    expect(regionSummaries(config, nodes, gateways, "g-us-b").find((r) => r.name === "us")?.pingUrl).toBe("http://us-b:1/v1/ping");
  });

  test("a region known only from a node or a gateway is listed", () => {
    const names = regionSummaries({ region: "local", dockerHostRegions: [] }, [makeNode({ id: "x", region: "ap" })], [gw("g", "sa", "http://sa")]).map((r) => r.name);
    expect(names).toEqual(["ap", "local", "sa"]);
  });
});

describe("routes", () => {
  const deps = {
    config: { region: "us", dockerHostRegions: ["us"] },
    nodes: { list: async () => [makeNode({ id: "n", region: "us", capacity: 2 })] },
    gateways: { list: async () => [gw("me", "us", "http://127.0.0.1:9")] },
    clock: { now: () => 0 },
    gatewayId: "me",
  } as unknown as Parameters<typeof regionsRoutes>[0]; // only the fields the routes read
  const app = regionsRoutes(deps);

  test("GET /v1/ping answers 204 with no body, open to other origins", async () => {
    const res = await app.handle(new Request("http://localhost/v1/ping"));
    expect(res.status).toBe(204);
    expect(await res.text()).toBe("");
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
  });

  test("GET /v1/regions", async () => {
    const res = await app.handle(new Request("http://localhost/v1/regions"));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ regions: [{ name: "us", pingUrl: "http://127.0.0.1:9/v1/ping", nodes: 1, capacity: 2, players: 0 }] });
  });
});
