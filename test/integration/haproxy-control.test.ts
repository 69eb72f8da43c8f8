/**
 * HaproxyControl against a real HAProxy 2.6 in master-worker mode: start, validated swaps,
 * confirmed reloads, refused configs that leave the old one serving, runtime-API drain kept across
 * reloads, and a stop that leaves no process behind.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { realClock } from "../../core/clock.ts";
import { silentLogger } from "../../core/log.ts";
import { HaproxyControl } from "../../haproxy/control.ts";
import { DEFAULT_TEMPLATES, edgeSettings, render, type EdgeRegistry, type EdgeSettings } from "../../haproxy/render.ts";
import { startNodeServer, type NodeServer } from "../../node/server.ts";
import { nodeRecord } from "../support/haproxy-fixtures.ts";
import { STATS_PASSWORD, STATS_USER, fetchStats, pidAlive, statsServers, testEdgeConfig, type TestEdgeConfig } from "../support/haproxy-edge.ts";
import { need, waitFor } from "../support/services.ts";

describe.skipIf(!need("haproxy"))("HaproxyControl (real HAProxy)", () => {
  let edge: TestEdgeConfig;
  let settings: EdgeSettings;
  let control: HaproxyControl;
  const nodes: NodeServer[] = [];
  const seenPids = new Set<number>();

  const registry = (): EdgeRegistry => ({
    gateways: [],
    nodes: nodes.map((n) => nodeRecord(n.nodeId, "ready", n.port)),
  });

  async function rememberPids(): Promise<void> {
    const p = await control.showProc();
    if (!p) return;
    seenPids.add(p.master.pid);
    for (const w of p.workers) seenPids.add(w.pid);
  }

  beforeAll(async () => {
    edge = await testEdgeConfig();
    settings = edgeSettings(edge.config, { statsPassword: STATS_PASSWORD });
    control = new HaproxyControl({ bin: "haproxy", paths: settings.paths, clock: realClock, log: silentLogger, reloadTimeoutMs: 10_000, mode: "child" });
    for (const id of ["node-a", "node-b"]) {
      nodes.push(startNodeServer({ nodeId: id, port: 0, hostname: "127.0.0.1", maxRooms: 10, maxPlayers: 10, token: "t", roomMode: "echo" }));
    }
  });

  afterAll(async () => {
    await rememberPids();
    await control?.stop();
    for (const n of nodes) await n.stop();
    await edge?.cleanup();
    // Master and every worker (old ones too) are gone.
    expect([...seenPids].filter(pidAlive)).toEqual([]);
  });

  test("starts a master-worker HAProxy; the stats page needs its credentials", async () => {
    const res = await control.apply(render(registry(), settings).text);
    expect(res.outcome).toBe("ok");
    const proc = await control.showProc();
    expect(proc?.workers.length).toBe(1);
    await rememberPids();

    expect((await fetchStats(edge.config.haproxyStatsPort)).status).toBe(401);
    expect((await fetchStats(edge.config.haproxyStatsPort, { user: STATS_USER, password: "wrong" })).status).toBe(401);
    expect((await fetchStats(edge.config.haproxyStatsPort, { user: STATS_USER, password: STATS_PASSWORD })).status).toBe(200);
    const servers = await waitFor(async () => {
      const s = await statsServers(edge.config.haproxyStatsPort, "nodes");
      return s.length === 2 && s.every((r) => r.status === "UP") ? s : undefined;
    }, 5000, "both nodes UP on the stats page");
    expect(servers.map((s) => s.svname).sort()).toEqual(["node-a", "node-b"]);
  });

  test("the same text again is a no-op; a changed one is reloaded and confirmed (counter up, new worker)", async () => {
    expect((await control.apply(render(registry(), settings).text)).outcome).toBe("unchanged");
    const before = await control.showProc();
    nodes.push(startNodeServer({ nodeId: "node-c", port: 0, hostname: "127.0.0.1", maxRooms: 10, maxPlayers: 10, token: "t", roomMode: "echo" }));
    const res = await control.apply(render(registry(), settings).text);
    expect(res.outcome).toBe("ok");
    const after = await control.showProc();
    await rememberPids();
    expect(after!.master.reloads).toBe(before!.master.reloads + 1);
    expect(after!.master.failed).toBe(0);
    expect(after!.workers[0]!.pid).not.toBe(before!.workers[0]!.pid);
    expect(res.workerPid).toBe(after!.workers[0]!.pid);
    expect((await statsServers(edge.config.haproxyStatsPort, "nodes")).map((s) => s.svname).sort()).toEqual(["node-a", "node-b", "node-c"]);
  });

  test("a broken template's config is refused by haproxy -c and the old config keeps serving", async () => {
    const live = await Bun.file(settings.paths.config).text();
    const before = await control.showProc();
    const broken = { main: DEFAULT_TEMPLATES.main, partials: { ...DEFAULT_TEMPLATES.partials, global: `${DEFAULT_TEMPLATES.partials.global}    no-such-directive on\n` } };
    const res = await control.apply(render({ gateways: [], nodes: [] }, settings, broken).text);
    expect(res.outcome).toBe("invalid");
    expect(res.error).toContain("no-such-directive");
    expect(await Bun.file(settings.paths.config).text()).toBe(live);
    const after = await control.showProc();
    expect(after!.master.reloads).toBe(before!.master.reloads);
    expect(after!.workers[0]!.pid).toBe(before!.workers[0]!.pid);
    expect((await statsServers(edge.config.haproxyStatsPort, "nodes")).length).toBe(3);
  });

  test("a config that validates but cannot load (its port is taken) fails the reload; the old one keeps serving and stays on disk", async () => {
    const live = await Bun.file(settings.paths.config).text();
    const squatter = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const taken = edgeSettings({ ...edge.config, haproxyStatsPort: squatter.port }, { statsPassword: STATS_PASSWORD });
      const res = await control.apply(render(registry(), taken).text);
      expect(res.outcome).toBe("failed");
      await rememberPids();
      expect(await Bun.file(settings.paths.config).text()).toBe(live);
      expect((await fetchStats(edge.config.haproxyStatsPort, { user: STATS_USER, password: STATS_PASSWORD })).status).toBe(200);
    } finally {
      squatter.stop(true);
    }
    // And the next good config loads again.
    nodes.push(startNodeServer({ nodeId: "node-d", port: 0, hostname: "127.0.0.1", maxRooms: 10, maxPlayers: 10, token: "t", roomMode: "echo" }));
    expect((await control.apply(render(registry(), settings).text)).outcome).toBe("ok");
    await rememberPids();
  });

  test("drain set through the runtime API shows at once and survives a reload (server-state-file)", async () => {
    await control.setServerState("nodes", "node-a", "drain");
    const drained = (await statsServers(edge.config.haproxyStatsPort, "nodes")).find((s) => s.svname === "node-a");
    expect(drained?.status).toBe("DRAIN");
    nodes.push(startNodeServer({ nodeId: "node-e", port: 0, hostname: "127.0.0.1", maxRooms: 10, maxPlayers: 10, token: "t", roomMode: "echo" }));
    expect((await control.apply(render(registry(), settings).text)).outcome).toBe("ok");
    await rememberPids();
    const after = (await statsServers(edge.config.haproxyStatsPort, "nodes")).find((s) => s.svname === "node-a");
    expect(after?.status).toBe("DRAIN");
    expect((await control.adminStates("nodes")).get("node-a")).toBe("drain");
    await expect(control.setServerState("nodes", "no-such-node", "drain")).rejects.toThrow(/No such server/i);
  });
});
