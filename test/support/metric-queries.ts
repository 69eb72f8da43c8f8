/** Metric names in PromQL queries: for the deploy-file and /metrics scrape tests. */

/** Metric names a PromQL expression reads (histogram series reduced to the histogram's name). */
export function metricNames(expr: string): string[] {
  const names = new Set<string>();
  for (const m of expr.matchAll(/\b((?:fleetgate|nodejs|process)_[a-zA-Z0-9_]+)/g)) names.add(m[1]!.replace(/_(bucket|count|sum)$/, ""));
  return [...names];
}

/** Every PromQL expression in a Grafana dashboard (panels, rows' panels, annotations). */
export function grafanaExprs(dashboard: unknown): string[] {
  const out: string[] = [];
  const walk = (v: unknown) => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === "object") {
      for (const [k, x] of Object.entries(v)) {
        if (k === "expr" && typeof x === "string") out.push(x);
        else walk(x);
      }
    }
  };
  walk(dashboard);
  return out;
}
