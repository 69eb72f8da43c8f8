/**
 * The templater's decisions against a recording fake HAProxy (EdgeControl), with the in-memory
 * node registry and real Redis for the gateway registry and channels: the order of runtime
 * commands and swaps, what is reported, and what is never done.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { realClock } from "../../core/clock.ts";
import { testConfig } from "../../core/config.ts";
import { GatewayRegistry } from "../../model/gateway-registry.ts";
import { silentLogger } from "../../core/log.ts";
import { MetricsRegistry } from "../../core/metrics.ts";
import { MemoryNodeRegistry } from "../../model/node-registry.ts";
import type { ApplyResult, EdgeControl } from "../../haproxy/control.ts";
import { parseTemplaterEvent } from "../../model/templater-events.ts";
import type { ServerStateLine } from "../../haproxy/master-cli.ts";
import { DEFAULT_TEMPLATES, edgeSettings, type ServerAdminState } from "../../haproxy/render.ts";
import { startTemplater, type Templater } from "../../haproxy/sync.ts";
import { nodeRecord } from "../support/haproxy-fixtures.ts";
import { need, testRedis, waitFor, type TestRedis } from "../support/services.ts";

/** Records every call; answers like an HAProxy whose servers are what was last applied. */
class RecordingControl implements EdgeControl {
  readonly calls: string[] = [];
  live = "";
  next: ApplyResult["outcome"] = "ok";
  admin = new Map<string, ServerAdminState>();

  async apply(text: string): Promise<ApplyResult> {
    if (text === this.live) return { outcome: "unchanged", durationMs: 0 };
    const outcome = this.next;
    this.calls.push(`apply:${outcome}:${[...text.matchAll(/server (\S+) \S+ id \d+ check weight (\d+)/g)].map((m) => `${m[1]}=${m[2]}`).join(",")}`);
    if (outcome === "ok") {
      this.live = text;
      for (const m of text.matchAll(/server (\S+) \S+ id \d+ check weight (\d+)( disabled)?/g)) if (!this.admin.has(m[1]!)) this.admin.set(m[1]!, m[3] ? "maint" : m[2] === "0" ? "drain" : "ready");
    }
    return { outcome, durationMs: 1, ...(outcome !== "ok" ? { error: "refused" } : {}) };
  }
  async setServerState(backend: string, server: string, state: ServerAdminState): Promise<void> {
    this.calls.push(`set:${backend}/${server}=${state}`);
    this.admin.set(server, state);
  }
  async serversState(): Promise<ServerStateLine[]> {
    const bits = { ready: 0, drain: 8, maint: 1 } as const;
    return [...this.admin].map(([server, a]) => ({ backend: "nodes", server, address: "127.0.0.1", opState: 2, adminState: bits[a], weight: 100, port: 1 }));
  }
}

describe.skipIf(!need("redis"))("templater decisions (fake HAProxy)", () => {
  let t: TestRedis;
  let nodes: MemoryNodeRegistry;
  let control: RecordingControl;
  let templater: Templater | undefined;
  const config = testConfig({ templaterDebounceMs: 100, templaterResyncMs: 60_000, templaterMetricsPort: 0, haproxyConfig: "/tmp/fg-unused/haproxy.cfg" });
  const settings = edgeSettings(config, { statsPassword: "p" });

  const start = async (templates = DEFAULT_TEMPLATES) =>
    (templater = await startTemplater({
      config,
      keys: t.keys,
      redis: t.redis,
      newRedis: () => t.connect(),
      nodes,
      gateways: new GatewayRegistry(t.redis, t.keys, 60_000),
      clock: realClock,
      log: silentLogger,
      metrics: new MetricsRegistry(),
      control,
      settings,
      templates,
    }));

  beforeEach(() => {
    t = testRedis("hxsync");
    nodes = new MemoryNodeRegistry();
    control = new RecordingControl();
  });
  afterEach(async () => {
    await templater?.stop();
    templater = undefined;
    await t.cleanup();
  });

  test("a draining node is flipped through the runtime API before the re-render that weighs it 0", async () => {
    await nodes.create(nodeRecord("n1", "ready", 9001), 1);
    await start();
    expect(control.calls).toEqual(["apply:ok:n1=100"]);
    await nodes.transition("n1", "draining", 2);
    await waitFor(() => control.calls.length >= 3, 3000, "runtime command and re-render");
    await templater!.idle();
    expect(control.calls).toEqual(["apply:ok:n1=100", "set:nodes/n1=drain", "apply:ok:n1=0"]);
  });

  test("a burst of changes inside the debounce window is one apply", async () => {
    await start();
    for (let i = 0; i < 20; i++) await nodes.create(nodeRecord(`b${i}`, "ready", 9100 + i), 1);
    await Bun.sleep(50);
    await templater!.idle();
    const applies = control.calls.filter((c) => c.startsWith("apply:"));
    expect(applies).toHaveLength(2); // the start, then one for the whole burst
    expect(applies[1]!.split(",")).toHaveLength(20);
  });

  test("an unchanged render applies nothing and reports nothing", async () => {
    await nodes.create(nodeRecord("n1", "ready", 9001), 1);
    await start();
    const events: string[] = [];
    const sub = t.connect();
    sub.on("message", (_c: string, m: string) => events.push(m));
    await sub.subscribe(t.keys.templaterEventsChannel);
    await nodes.update("n1", { players: 5, rooms: 2 }); // counters do not reach the config
    const r = await templater!.syncNow("test");
    expect(r.outcome).toBe("unchanged");
    await Bun.sleep(50);
    expect(events).toEqual([]);
    expect(control.calls).toEqual(["apply:ok:n1=100"]);
  });

  test("a template that throws is reported as render_error and nothing is applied", async () => {
    await nodes.create(nodeRecord("n1", "ready", 9001), 1);
    const throwsWhenDraining = { main: DEFAULT_TEMPLATES.main, partials: { ...DEFAULT_TEMPLATES.partials, "backend-nodes": `${DEFAULT_TEMPLATES.partials["backend-nodes"]}{{#each nodes}}{{#if weight}}{{else}}{{missing.field}}{{/if}}{{/each}}` } };
    await start(throwsWhenDraining);
    await nodes.transition("n1", "draining", 2);
    await waitFor(async () => parseTemplaterEvent(await t.redis.get(t.keys.templaterLast))?.outcome === "render_error", 3000, "render_error reported");
    await templater!.idle();
    expect(control.calls.filter((c) => c.startsWith("apply:"))).toEqual(["apply:ok:n1=100"]);
  });

  test("a refused swap is reported with HAProxy's words and retried on the next change", async () => {
    await start();
    control.next = "invalid";
    await nodes.create(nodeRecord("n1", "ready", 9001), 1);
    await waitFor(async () => parseTemplaterEvent(await t.redis.get(t.keys.templaterLast))?.outcome === "invalid", 3000, "invalid reported");
    const ev = parseTemplaterEvent(await t.redis.get(t.keys.templaterLast))!;
    expect(ev.error).toBe("refused");
    expect(ev.reasons.join()).toContain("n1");
    control.next = "ok";
    await nodes.create(nodeRecord("n2", "ready", 9002), 1);
    await waitFor(() => control.live.includes("n2"), 3000, "the next change applied");
  });
});
