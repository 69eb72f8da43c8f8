/**
 * Every process's /metrics, scraped from `npm start` as a user runs it (scripts/start.ts: gateway,
 * scheduler, templater + HAProxy; process nodes so no Docker is needed): each serves prom-client's
 * default process metrics (nodejs_eventloop_lag_seconds, heap, CPU) and its fleetgate metrics;
 * every metric the Grafana dashboard (deploy/grafana/fleetgate.json) and the alert rules
 * (deploy/prometheus/alerts.yml) query exists in those scrapes; the processes log JSON lines
 * (LOG_FORMAT=json) with the component as a field. Writes the scrapes to test-output/metrics-*.txt.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { grafanaExprs, metricNames } from "../support/metric-queries.ts";
import { captureOutput, need, waitFor } from "../support/services.ts";
import { ROOT, stackFixture } from "../support/start-stack.ts";

const OUT = join(ROOT, "test-output");

describe.skipIf(!(need("redis") && need("haproxy")))("every process's /metrics (npm start)", () => {
  const fx = stackFixture("metrics");
  const { ports } = fx;
  let proc: ReturnType<typeof Bun.spawn> | undefined;

  afterAll(async () => {
    if (proc && proc.exitCode === null) {
      proc.kill("SIGINT");
      const done = await Promise.race([proc.exited, Bun.sleep(20_000).then(() => "timeout")]);
      if (done === "timeout") proc.kill("SIGKILL");
    }
    await fx.cleanup();
  });

  test("gateway, scheduler and templater: process metrics, fleetgate metrics, everything Grafana and the alerts query", async () => {
    proc = Bun.spawn([process.execPath, "scripts/start.ts"], {
      cwd: ROOT,
      env: {
        ...fx.baseEnv,
        NODE_DRIVER: "process",
        // One gateway process: with several on one port (SO_REUSEPORT) each scrape may reach another.
        GATEWAY_WORKERS: "1",
        NODE_ROOM_MODE: "echo",
        LOG_LEVEL: "info",
        LOG_FORMAT: "json",
        PUBLIC_URL: "",
      },
      stdout: "pipe",
      stderr: "pipe",
    });
    const captured = captureOutput(proc);
    const api = `http://127.0.0.1:${ports.api}`;
    const urls = { gateway: `${api}/metrics`, scheduler: `http://127.0.0.1:${ports.sched}/metrics`, templater: `http://127.0.0.1:${ports.tpl}/metrics` };
    for (const [name, url] of Object.entries(urls)) {
      await waitFor(async () => (await fetch(url).catch(() => undefined))?.ok, 30_000, `${name} /metrics (output so far: ${captured.output().slice(-400)})`, 100);
    }

    // The templater lists the gateway once it has seen its heartbeat.
    let lastTemplater = "";
    await waitFor(async () => /^fleetgate_haproxy_servers\{backend="gateways"\} 1$/m.test((lastTemplater = await (await fetch(urls.templater)).text())), 15_000, "the gateway in the templater's config", 100).catch((e: unknown) => {
      throw new Error(`${String(e)}\n${lastTemplater.split("\n").filter((l) => l.startsWith("fleetgate_")).join("\n")}\n${captured.output().slice(-1500)}`);
    });
    // Some traffic, so the join and relay metrics have samples: a guest joins and echoes a frame.
    const guest = (await (await fetch(`${api}/v1/auth/guest`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ displayName: "metrics" }) })).json()) as { token: string };
    const join_ = await fetch(`${api}/v1/players/join`, { method: "POST", headers: { authorization: `Bearer ${guest.token}`, "content-type": "application/json" }, body: "{}" });
    expect(join_.status).toBe(201);
    const { connectUrl } = (await join_.json()) as { connectUrl: string };
    await new Promise<void>((resolve, reject) => {
      // Straight to the gateway (connectUrl names the edge): its relay is what is counted here.
      const ws = new WebSocket(connectUrl.replace(/^ws:\/\/[^/]+/, `ws://127.0.0.1:${ports.api}`), ["bearer", guest.token]);
      const timer = setTimeout(() => reject(new Error("no echo")), 10_000);
      ws.onopen = () => ws.send("ping");
      ws.onmessage = () => {
        clearTimeout(timer);
        ws.close(1000, "done");
        resolve();
      };
      ws.onclose = (e) => e.code !== 1000 && reject(new Error(`closed ${e.code} ${e.reason}`));
    });

    // The relay counts a connection's frames into the metrics on its ticks and closes.
    await waitFor(async () => /^fleetgate_relayed_frames_total\{direction="up"\} [1-9]/m.test(await (await fetch(urls.gateway)).text()), 10_000, "the relayed frame in /metrics", 100);
    // The event-loop lag gauge is measured between scrapes (setImmediate): scrape twice.
    const scrapes: Record<string, string> = {};
    for (const [name, url] of Object.entries(urls)) {
      await fetch(url);
      const res = await fetch(url);
      expect(res.headers.get("content-type")).toContain("text/plain");
      scrapes[name] = await res.text();
    }
    mkdirSync(OUT, { recursive: true });
    for (const [name, text] of Object.entries(scrapes)) writeFileSync(join(OUT, `metrics-${name}.txt`), text);

    const own: Record<string, string[]> = {
      gateway: ["fleetgate_joins_total", "fleetgate_join_seconds", "fleetgate_relayed_frames_total", "fleetgate_players", "fleetgate_rooms", "fleetgate_gateway_connections"],
      scheduler: ["fleetgate_scheduler_nodes", "fleetgate_scheduler_capacity", "fleetgate_scheduler_jobs_total", "fleetgate_matchmaker_tickets_total"],
      templater: ["fleetgate_haproxy_reloads_total", "fleetgate_haproxy_servers"],
    };
    for (const [name, text] of Object.entries(scrapes)) {
      for (const m of ["nodejs_eventloop_lag_seconds", "nodejs_eventloop_lag_p99_seconds", "nodejs_heap_size_used_bytes", "process_cpu_seconds_total", "process_resident_memory_bytes"]) {
        expect(text, `${name} lacks ${m}`).toMatch(new RegExp(`^${m} [0-9.e+-]+$`, "m"));
      }
      for (const m of own[name]!) expect(text, `${name} lacks ${m}`).toContain(`# TYPE ${m} `);
    }
    expect(scrapes.gateway).toMatch(/^fleetgate_joins_total\{result="ok"\} 1$/m);
    expect(scrapes.gateway).toMatch(/^fleetgate_relayed_frames_total\{direction="up"\} [1-9]/m);
    expect(scrapes.templater).toMatch(/^fleetgate_haproxy_servers\{backend="gateways"\} 1$/m);

    // Every metric the Grafana dashboard and the alert rules query is in some scrape.
    const all = Object.values(scrapes).join("\n");
    const queried = new Set<string>();
    for (const e of grafanaExprs(JSON.parse(readFileSync(join(ROOT, "deploy/grafana/fleetgate.json"), "utf8")))) for (const m of metricNames(e)) queried.add(m);
    for (const m of readFileSync(join(ROOT, "deploy/prometheus/alerts.yml"), "utf8").matchAll(/expr: [^\n]*|^\s{12}.*$/gm)) for (const n of metricNames(m[0])) queried.add(n);
    expect(queried.size).toBeGreaterThan(20);
    const missing = [...queried].filter((m) => !all.includes(`# TYPE ${m} `));
    expect(missing).toEqual([]);

    // Logs: JSON lines with the component as a field (LOG_FORMAT=json).
    const json = captured
      .output()
      .split("\n")
      .map((l) => l.slice(l.indexOf("{")))
      .filter((l) => l.startsWith('{"level"'))
      .map((l) => JSON.parse(l) as { component?: string; msg?: string });
    const components = new Set(json.map((o) => o.component?.split(":")[0]));
    for (const c of ["gateway", "scheduler", "templater"]) expect(components.has(c), `no JSON log line from ${c}`).toBe(true);

    proc.kill("SIGINT");
    expect(await Promise.race([proc.exited, Bun.sleep(30_000).then(() => "timeout")])).toBe(0);
  }, 90_000);
});
