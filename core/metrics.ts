/**
 * The process's Prometheus registry, on prom-client: counters, gauges and histograms with labels,
 * plus prom-client's default process metrics (event-loop lag, heap, CPU, file descriptors) when
 * an entry point asks for them. One registry per process, passed in; nothing global (prom-client's
 * global default registry is never used).
 *
 * The small interface callers use (`counter`/`gauge`/`histogram`, `inc`/`set`/`observe`, sync
 * `get`/`count` for tests and the dashboard, `render()`) is kept from the hand-written registry
 * this replaced, so metric names and call sites did not change.
 */
import * as prom from "prom-client";

type Labels = Record<string, string | number>;

/** The label key used for the sync mirrors (sorted, so `{a,b}` and `{b,a}` are one series). */
function labelKey(labels: Labels | undefined): string {
  if (!labels) return "";
  const keys = Object.keys(labels);
  if (keys.length === 0) return "";
  if (keys.length === 1) return `${keys[0]}=${String(labels[keys[0]!])}`;
  return keys
    .sort()
    .map((k) => `${k}=${String(labels[k])}`)
    .join("\u0000");
}

/**
 * Labels with their keys in sorted order: prom-client prints a series' labels in the order of the
 * object it first saw, and the exposition here has always been sorted (tests and dashboards match
 * on the text).
 */
function sorted(labels: Labels): Labels {
  const keys = Object.keys(labels);
  if (keys.length < 2) return labels;
  const out: Labels = {};
  for (const k of keys.sort()) out[k] = labels[k]!;
  return out;
}

/** The fields of a prom-client metric that hold its label names (plain JS properties in 15.x). */
interface LabelNameFields {
  labelNames: string[];
  sortedLabelNames: string[];
  reset(): void;
}

/**
 * prom-client wants every label name declared up front; callers here name labels where they use
 * them (`inc({ outcome: "ok" })`). A label first seen at use is added to the metric's label set
 * (prom-client hashes series by the sorted label names and skips absent ones, so series written
 * before keep their identity). Declaring `labelNames` at registration avoids this path.
 */
function learnLabels(metric: unknown, labels: Labels | undefined, hasValues: boolean): void {
  if (!labels) return;
  const m = metric as LabelNameFields;
  for (const k of Object.keys(labels)) {
    if (!m.labelNames.includes(k)) {
      if (k === "le" || k === "quantile" || !/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(k)) throw new Error(`bad label name ${k}`);
      const wasEmpty = m.labelNames.length === 0;
      m.labelNames.push(k);
      m.sortedLabelNames = [...m.labelNames].sort();
      // An unlabelled metric starts with a zero series `{}`; drop it before the first labelled one.
      if (wasEmpty && !hasValues) m.reset();
    }
  }
}

export class Counter {
  private readonly values = new Map<string, number>();
  constructor(readonly prom: prom.Counter<string>) {}
  get name(): string {
    return (this.prom as unknown as { name: string }).name;
  }
  inc(labels?: Labels, by = 1): void {
    learnLabels(this.prom, labels, this.values.size > 0);
    if (labels && Object.keys(labels).length) this.prom.inc(sorted(labels), by);
    else this.prom.inc(by);
    const k = labelKey(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  /** This process's value of one series (sync; 0 when never incremented). */
  get(labels?: Labels): number {
    return this.values.get(labelKey(labels)) ?? 0;
  }
  /** Sum over every series. */
  total(): number {
    let t = 0;
    for (const v of this.values.values()) t += v;
    return t;
  }
}

export class Gauge {
  private readonly values = new Map<string, number>();
  private collector: (() => void) | undefined;
  constructor(readonly prom: prom.Gauge<string>) {}
  /** Registered as prom-client's collect hook: runs right before each render. */
  runCollector(): void {
    this.collector?.();
  }
  set(value: number, labels?: Labels): void {
    learnLabels(this.prom, labels, this.values.size > 0);
    if (labels && Object.keys(labels).length) this.prom.set(sorted(labels), value);
    else this.prom.set(value);
    this.values.set(labelKey(labels), value);
  }
  inc(labels?: Labels, by = 1): void {
    this.set(this.get(labels) + by, labels);
  }
  dec(labels?: Labels, by = 1): void {
    this.inc(labels, -by);
  }
  get(labels?: Labels): number {
    return this.values.get(labelKey(labels)) ?? 0;
  }
  /** Clears all label sets (before a collector sets the current ones). */
  reset(): void {
    this.values.clear();
    this.prom.reset();
  }
  /** Called right before each render, to sample a value that lives elsewhere. */
  collect(fn: () => void): this {
    this.collector = fn;
    return this;
  }
}

export const DEFAULT_BUCKETS: readonly number[] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class Histogram {
  private readonly series = new Map<string, { counts: number[]; count: number; sum: number }>();
  constructor(
    readonly prom: prom.Histogram<string>,
    readonly buckets: readonly number[],
  ) {}
  observe(value: number, labels?: Labels): void {
    learnLabels(this.prom, labels, this.series.size > 0);
    if (labels && Object.keys(labels).length) this.prom.observe(sorted(labels), value);
    else this.prom.observe(value);
    const k = labelKey(labels);
    let s = this.series.get(k);
    if (!s) {
      s = { counts: this.buckets.map(() => 0), count: 0, sum: 0 };
      this.series.set(k, s);
    }
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) s.counts[i]!++;
    s.count++;
    s.sum += value;
  }
  count(labels?: Labels): number {
    return this.series.get(labelKey(labels))?.count ?? 0;
  }
  /**
   * Cumulative bucket counts summed over every series (same order as `buckets`, then +Inf), for
   * quantiles over a window: subtract two snapshots and call `quantileOf`.
   */
  snapshot(): { counts: number[]; count: number; sum: number } {
    const counts = this.buckets.map(() => 0);
    let count = 0;
    let sum = 0;
    for (const s of this.series.values()) {
      s.counts.forEach((c, i) => (counts[i]! += c));
      count += s.count;
      sum += s.sum;
    }
    return { counts, count, sum };
  }
}

/**
 * The q-quantile (0..1) of a histogram window, linearly interpolated inside the bucket like
 * PromQL's histogram_quantile; `undefined` with no observations. `counts` are cumulative.
 */
export function quantileOf(buckets: readonly number[], counts: readonly number[], count: number, q: number): number | undefined {
  if (count <= 0) return undefined;
  const rank = q * count;
  for (let i = 0; i < buckets.length; i++) {
    const c = counts[i] ?? 0;
    if (c >= rank) {
      const lower = i === 0 ? 0 : buckets[i - 1]!;
      const below = i === 0 ? 0 : (counts[i - 1] ?? 0);
      const inBucket = c - below;
      return inBucket <= 0 ? buckets[i]! : lower + (buckets[i]! - lower) * ((rank - below) / inBucket);
    }
  }
  // Above the highest finite bucket: PromQL answers that bucket's upper bound.
  return buckets[buckets.length - 1];
}

export interface MetricsRegistryOptions {
  /**
   * Register prom-client's default process metrics (nodejs_eventloop_lag_seconds, heap, CPU,
   * fds, …). Entry points turn this on; tests that build many registries leave it off.
   * Default false.
   */
  processMetrics?: boolean;
  /** Labels added to every series (e.g. `{ component: "gateway" }`). */
  defaultLabels?: Record<string, string>;
}

type AnyMetric = Counter | Gauge | Histogram;

export class MetricsRegistry {
  /** The prom-client registry underneath (for tools that speak prom-client). */
  readonly prom = new prom.Registry();
  private readonly metrics = new Map<string, AnyMetric>();

  constructor(opts: MetricsRegistryOptions = {}) {
    if (opts.defaultLabels) this.prom.setDefaultLabels(opts.defaultLabels);
    if (opts.processMetrics) this.collectProcessMetrics();
  }

  private processMetricsOn = false;
  /** Adds prom-client's default process metrics (idempotent). */
  collectProcessMetrics(): this {
    if (this.processMetricsOn) return this;
    this.processMetricsOn = true;
    // Bun has monitorEventLoopDelay, so the lag percentiles are real; it emits no GC performance
    // entries, so prom-client's nodejs_gc_duration_seconds stays absent there.
    prom.collectDefaultMetrics({ register: this.prom, eventLoopMonitoringPrecision: 20 });
    return this;
  }

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.getOrAdd(name, Counter, () => new Counter(new prom.Counter({ name, help: help || name, labelNames: [...labelNames], registers: [this.prom] })));
  }
  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.getOrAdd(name, Gauge, () => {
      let g: Gauge | undefined;
      const pg = new prom.Gauge({
        name,
        help: help || name,
        labelNames: [...labelNames],
        registers: [this.prom],
        collect: () => g?.runCollector(),
      });
      g = new Gauge(pg);
      return g;
    });
  }
  histogram(name: string, help: string, buckets: readonly number[] = DEFAULT_BUCKETS, labelNames: readonly string[] = []): Histogram {
    return this.getOrAdd(
      name,
      Histogram,
      () => new Histogram(new prom.Histogram({ name, help: help || name, buckets: [...buckets], labelNames: [...labelNames], registers: [this.prom] }), buckets),
    );
  }

  /** A registered metric by name, if any (the dashboard's history sampler reads through this). */
  find(name: string): AnyMetric | undefined {
    return this.metrics.get(name);
  }

  /** Prometheus text exposition (format 0.0.4). */
  render(): Promise<string> {
    return this.prom.metrics();
  }

  /** The content type of `render()`'s text. */
  get contentType(): string {
    return this.prom.contentType;
  }

  private getOrAdd<T extends AnyMetric>(name: string, cls: abstract new (...a: never[]) => T, make: () => T): T {
    const existing = this.metrics.get(name);
    if (existing) {
      if (!(existing instanceof cls)) throw new Error(`metric ${name} already registered as another type`);
      return existing;
    }
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name)) throw new Error(`bad metric name ${name}`);
    const m = make();
    this.metrics.set(name, m);
    return m;
  }
}
