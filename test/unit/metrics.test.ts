import { describe, expect, test } from "bun:test";
import { MetricsRegistry, quantileOf } from "../../core/metrics.ts";

describe("MetricsRegistry (prom-client)", () => {
  test("renders Prometheus text for counters, gauges and histograms", async () => {
    const m = new MetricsRegistry();
    m.counter("fg_jobs_total", "jobs").inc({ type: "scale-up", outcome: "ok" }, 2);
    m.gauge("fg_nodes", "nodes").set(3, { state: "ready" });
    const h = m.histogram("fg_join_seconds", "join", [0.1, 1]);
    h.observe(0.05);
    h.observe(0.5);
    h.observe(5);
    const text = await m.render();
    expect(text).toContain("# TYPE fg_jobs_total counter");
    expect(text).toContain('fg_jobs_total{outcome="ok",type="scale-up"} 2');
    expect(text).toContain('fg_nodes{state="ready"} 3');
    expect(text).toContain('fg_join_seconds_bucket{le="0.1"} 1');
    expect(text).toContain('fg_join_seconds_bucket{le="1"} 2');
    expect(text).toContain('fg_join_seconds_bucket{le="+Inf"} 3');
    expect(text).toContain("fg_join_seconds_count 3");
    expect(m.contentType).toContain("text/plain");
  });

  test("labels first named at use join the label set; no stray unlabelled zero series", async () => {
    const m = new MetricsRegistry();
    const c = m.counter("fg_a_total", "a");
    c.inc({ outcome: "ok" });
    c.inc({ outcome: "ok", kind: "x" });
    c.inc({ outcome: "failed" }, 3);
    expect(c.get({ outcome: "ok" })).toBe(1);
    expect(c.get({ kind: "x", outcome: "ok" })).toBe(1);
    expect(c.get({ outcome: "failed" })).toBe(3);
    expect(c.total()).toBe(5);
    const text = await m.render();
    expect(text).toContain('fg_a_total{outcome="ok"} 1');
    expect(text).toContain('fg_a_total{outcome="failed"} 3');
    expect(text).toContain('fg_a_total{kind="x",outcome="ok"} 1');
    expect(text).not.toMatch(/^fg_a_total 0$/m);
  });

  test("declared label names and an unlabelled counter", async () => {
    const m = new MetricsRegistry();
    m.counter("fg_b_total", "b", ["direction"]).inc({ direction: "up" }, 7);
    m.counter("fg_c_total", "c").inc();
    const text = await m.render();
    expect(text).toContain('fg_b_total{direction="up"} 7');
    expect(text).toMatch(/^fg_c_total 1$/m);
  });

  test("a gauge's collector runs right before each render", async () => {
    const m = new MetricsRegistry();
    let n = 0;
    const g = m.gauge("fg_conns", "conns");
    g.collect(() => g.set(++n));
    expect(await m.render()).toMatch(/^fg_conns 1$/m);
    expect(await m.render()).toMatch(/^fg_conns 2$/m);
    g.reset();
    g.set(4, { state: "ready" });
    expect(g.get({ state: "ready" })).toBe(4);
  });

  test("the same name returns the same metric; a type clash or bad name throws", () => {
    const m = new MetricsRegistry();
    expect(m.counter("a_total", "x")).toBe(m.counter("a_total", "x"));
    expect(() => m.gauge("a_total", "x")).toThrow();
    expect(() => m.counter("bad name", "x")).toThrow();
    expect(() => m.histogram("h_seconds", "h").observe(1, { le: "1" })).toThrow();
  });

  test("label values are escaped", async () => {
    const m = new MetricsRegistry();
    m.counter("x_total", "x").inc({ v: 'a"b\\c\nd' });
    expect(await m.render()).toContain('x_total{v="a\\"b\\\\c\\nd"} 1');
  });

  test("process metrics (event-loop lag, heap, CPU) only when asked for", async () => {
    expect(await new MetricsRegistry().render()).not.toContain("nodejs_eventloop_lag_seconds");
    const m = new MetricsRegistry({ processMetrics: true, defaultLabels: { component: "test" } });
    m.collectProcessMetrics(); // idempotent: registering twice would throw in prom-client
    const text = await m.render();
    for (const name of ["nodejs_eventloop_lag_seconds", "nodejs_eventloop_lag_p99_seconds", "nodejs_heap_size_used_bytes", "process_cpu_seconds_total", "process_resident_memory_bytes"]) {
      expect(text).toContain(`# TYPE ${name}`);
    }
    expect(text).toMatch(/^nodejs_heap_size_used_bytes\{component="test"\} [1-9]/m);
  });

  test("histogram snapshots and quantiles interpolate like histogram_quantile", () => {
    const m = new MetricsRegistry();
    const h = m.histogram("q_seconds", "q", [0.1, 0.2, 0.4]);
    for (let i = 0; i < 9; i++) h.observe(0.05, { r: "ok" });
    h.observe(0.3, { r: "failed" });
    const s = h.snapshot();
    expect(s.count).toBe(10);
    expect(s.counts).toEqual([9, 9, 10]);
    expect(quantileOf(h.buckets, s.counts, s.count, 0.5)).toBeCloseTo(0.0556, 3);
    expect(quantileOf(h.buckets, s.counts, s.count, 0.99)).toBeCloseTo(0.2 + 0.2 * 0.9, 5);
    expect(quantileOf(h.buckets, [0, 0, 0], 0, 0.99)).toBeUndefined();
    // everything above the last finite bucket answers that bound
    expect(quantileOf([0.1], [0], 3, 0.5)).toBe(0.1);
  });
});
