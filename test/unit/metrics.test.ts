import { describe, expect, test } from "bun:test";
import { MetricsRegistry } from "../../core/metrics.ts";

describe("MetricsRegistry", () => {
  test("renders Prometheus text for counters, gauges and histograms", () => {
    const m = new MetricsRegistry();
    m.counter("fg_jobs_total", "jobs").inc({ type: "scale-up", outcome: "ok" }, 2);
    m.gauge("fg_nodes", "nodes").set(3, { state: "ready" });
    const h = m.histogram("fg_join_seconds", "join", [0.1, 1]);
    h.observe(0.05);
    h.observe(0.5);
    h.observe(5);
    const text = m.render();
    expect(text).toContain("# TYPE fg_jobs_total counter");
    expect(text).toContain('fg_jobs_total{outcome="ok",type="scale-up"} 2');
    expect(text).toContain('fg_nodes{state="ready"} 3');
    expect(text).toContain('fg_join_seconds_bucket{le="0.1"} 1');
    expect(text).toContain('fg_join_seconds_bucket{le="1"} 2');
    expect(text).toContain('fg_join_seconds_bucket{le="+Inf"} 3');
    expect(text).toContain("fg_join_seconds_count 3");
  });

  test("the same name returns the same metric; a type clash throws", () => {
    const m = new MetricsRegistry();
    expect(m.counter("a_total", "x")).toBe(m.counter("a_total", "x"));
    expect(() => m.gauge("a_total", "x")).toThrow();
    expect(() => m.counter("bad name", "x")).toThrow();
  });

  test("label values are escaped", () => {
    const m = new MetricsRegistry();
    m.counter("x_total", "x").inc({ v: 'a"b\\c\nd' });
    expect(m.render()).toContain('x_total{v="a\\"b\\\\c\\nd"} 1');
  });
});
