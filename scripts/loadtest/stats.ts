/** Load-test figures: percentiles, the summary, the progress line, the pass/fail verdict. Pure. */

/** The p-th percentile (0..100) of `sorted` (ascending), nearest-rank; undefined when empty. */
export function percentile(sorted: readonly number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/**
 * A bounded sample of a stream (reservoir sampling): percentiles over a long run stay honest
 * without keeping every value.
 */
export class Reservoir {
  private readonly values: number[] = [];
  count = 0;
  constructor(
    private readonly capacity = 200_000,
    private readonly random: () => number = Math.random,
  ) {}
  add(v: number): void {
    this.count++;
    if (this.values.length < this.capacity) this.values.push(v);
    else {
      const j = Math.floor(this.random() * this.count);
      if (j < this.capacity) this.values[j] = v;
    }
  }
  sorted(): number[] {
    return [...this.values].sort((a, b) => a - b);
  }
}

/** Raw counts a run collects. */
export interface RunCounts {
  flow: string;
  clients: number;
  spawned: number;
  joinsOk: number;
  joinsFailed: number;
  /** Join latency samples, ms (join call → socket open). */
  joinMs: number[];
  /** Message round trips, ms. */
  rttMs: number[];
  messagesSent: number;
  messagesAnswered: number;
  /** Pings never answered (by echo or by the designated peer) after the drain wait. */
  framesLost: number;
  /** Pings sent alone in a room to a node that never echoed (relay mode): not counted as lost. */
  unanswerable: number;
  closeCodes: Record<string, number>;
  reconnects: number;
  /** Failed clients by error code. */
  errors: Record<string, number>;
  /** Clients that failed at any point (join, socket, timeout). */
  failedClients: number;
  peakConnected: number;
  elapsedMs: number;
  timedOut: boolean;
}

export interface Summary {
  flow: string;
  clients: number;
  durationS: number;
  joins: { ok: number; failed: number; latencyMs: { p50: number | null; p95: number | null; p99: number | null } };
  messages: { sent: number; answered: number; rttMs: { p50: number | null; p99: number | null }; framesLost: number; unanswerable: number };
  closeCodes: Record<string, number>;
  reconnects: number;
  errors: Record<string, number>;
  failedClients: number;
  errorRate: number;
  peakConnected: number;
  timedOut: boolean;
}

const round = (v: number | undefined, digits = 1): number | null => (v === undefined ? null : Math.round(v * 10 ** digits) / 10 ** digits);

export function summarize(c: RunCounts): Summary {
  const join = [...c.joinMs].sort((a, b) => a - b);
  const rtt = [...c.rttMs].sort((a, b) => a - b);
  return {
    flow: c.flow,
    clients: c.clients,
    durationS: round(c.elapsedMs / 1000)!,
    joins: { ok: c.joinsOk, failed: c.joinsFailed, latencyMs: { p50: round(percentile(join, 50)), p95: round(percentile(join, 95)), p99: round(percentile(join, 99)) } },
    messages: { sent: c.messagesSent, answered: c.messagesAnswered, rttMs: { p50: round(percentile(rtt, 50), 2), p99: round(percentile(rtt, 99), 2) }, framesLost: c.framesLost, unanswerable: c.unanswerable },
    closeCodes: c.closeCodes,
    reconnects: c.reconnects,
    errors: c.errors,
    failedClients: c.failedClients,
    errorRate: c.clients === 0 ? 0 : c.failedClients / c.clients,
    peakConnected: c.peakConnected,
    timedOut: c.timedOut,
  };
}

/** True when the run failed its threshold: more failed clients than `maxErrorRate`, or it hit its time bound. */
export function failsThreshold(s: Summary, maxErrorRate: number): boolean {
  return s.timedOut || s.errorRate > maxErrorRate;
}

const ms = (v: number | null) => (v === null ? "n/a" : `${v} ms`);
const codes = (m: Record<string, number>) =>
  Object.keys(m).length === 0
    ? "none"
    : Object.entries(m)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => `${k}×${v}`)
        .join(" ");

/** The human summary. */
export function formatSummary(s: Summary, maxErrorRate: number): string {
  const verdict = failsThreshold(s, maxErrorRate)
    ? `FAIL (error rate ${(s.errorRate * 100).toFixed(2)}% > ${(maxErrorRate * 100).toFixed(2)}%${s.timedOut ? ", hit --timeout" : ""})`
    : `ok (error rate ${(s.errorRate * 100).toFixed(2)}% ≤ ${(maxErrorRate * 100).toFixed(2)}%)`;
  return [
    `loadtest ${s.flow}: ${s.clients} clients in ${s.durationS} s (peak ${s.peakConnected} connected)`,
    `  joins       ${s.joins.ok} ok, ${s.joins.failed} failed; latency p50 ${ms(s.joins.latencyMs.p50)}, p95 ${ms(s.joins.latencyMs.p95)}, p99 ${ms(s.joins.latencyMs.p99)}`,
    `  messages    ${s.messages.sent} sent, ${s.messages.answered} answered; RTT p50 ${ms(s.messages.rttMs.p50)}, p99 ${ms(s.messages.rttMs.p99)}`,
    `  frames lost ${s.messages.framesLost}${s.messages.unanswerable ? ` (${s.messages.unanswerable} not measurable: alone in a room on a node that does not echo)` : ""}`,
    `  close codes ${codes(s.closeCodes)}; reconnects ${s.reconnects}`,
    `  errors      ${codes(s.errors)}`,
    `  result      ${verdict}`,
  ].join("\n");
}

/** One progress line. */
export function progressLine(p: { elapsedMs: number; spawned: number; clients: number; connected: number; joinsOk: number; joinsFailed: number; joinsPerS: number; messagesSent: number; errors: number }): string {
  return `[${(p.elapsedMs / 1000).toFixed(1).padStart(6)} s] clients ${p.spawned}/${p.clients} connected ${p.connected}  joins ${p.joinsOk} ok ${p.joinsFailed} failed (${p.joinsPerS.toFixed(1)}/s)  msgs ${p.messagesSent}  errors ${p.errors}`;
}
