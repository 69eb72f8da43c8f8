/** The load-test CLI's pure parts: arguments, percentiles, the reservoir, summary and verdict. */
import { describe, expect, test } from "bun:test";
import { parseArgs } from "../../scripts/loadtest/args.ts";
import { failsThreshold, formatSummary, percentile, progressLine, Reservoir, summarize, type RunCounts } from "../../scripts/loadtest/stats.ts";

describe("parseArgs", () => {
  test("the issue's command line", () => {
    const r = parseArgs(["--url", "http://127.0.0.1:8080/", "--clients", "200", "--spawn-rate", "20", "--match-duration", "60", "--flow", "rooms", "--msg-rate", "5", "--json", "--max-error-rate=0.05"]);
    expect(r).toEqual({
      ok: true,
      options: { url: "http://127.0.0.1:8080", clients: 200, spawnRate: 20, matchDurationS: 60, flow: "rooms", msgRate: 5, roomSize: 4, mode: "loadtest", json: true, maxErrorRate: 0.05, timeoutS: 130, progressS: 1 },
    });
  });

  test("defaults", () => {
    const r = parseArgs(["--url", "https://edge.example:8443"]);
    expect(r.ok && r.options).toMatchObject({ clients: 10, spawnRate: 10, matchDurationS: 30, flow: "rooms", msgRate: 2, json: false, maxErrorRate: 0.01, timeoutS: 91 });
  });

  test.each<[string[], RegExp]>([
    [[], /--url is required/],
    [["--url", "ftp://x"], /--url "ftp:\/\/x": expected http/],
    [["--url", "http://x", "--clients", "0"], /--clients "0": expected a whole number in 1\.\./],
    [["--url", "http://x", "--clients", "2.5"], /--clients "2.5"/],
    [["--url", "http://x", "--spawn-rate", "fast"], /--spawn-rate "fast"/],
    [["--url", "http://x", "--flow", "teleport"], /--flow "teleport": expected one of dedicated, rooms, matchmaking/],
    [["--url", "http://x", "--max-error-rate", "2"], /--max-error-rate "2"/],
    [["--url", "http://x", "--mode", "a b"], /--mode "a b"/],
    [["--url", "http://x", "--clients"], /--clients needs a value/],
    [["--url", "http://x", "--clients", "--json"], /--clients needs a value/],
    [["--url", "http://x", "--bogus", "1"], /unknown option --bogus/],
    [["--url", "http://x", "stray"], /unexpected argument "stray"/],
  ])("%p is refused", (argv, problem) => {
    const r = parseArgs(argv);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems.join("; ")).toMatch(problem);
  });

  test("every problem at once; --help", () => {
    const r = parseArgs(["--clients", "-1", "--flow", "x"]);
    expect(!r.ok && r.problems).toHaveLength(3);
    expect(parseArgs(["--help"])).toEqual({ ok: false, problems: [], help: true });
  });
});

describe("percentile", () => {
  test.each<[number[], number, number | undefined]>([
    [[], 50, undefined],
    [[7], 99, 7],
    [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 50, 5],
    [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 95, 10],
    [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90, 9],
    [Array.from({ length: 1000 }, (_, i) => i + 1), 99, 990],
    [[1, 2, 3], 0, 1],
    [[1, 2, 3], 100, 3],
  ])("percentile(%p, %p) = %p", (values, p, want) => {
    expect(percentile(values, p)).toBe(want);
  });

  test("the reservoir keeps at most its capacity and counts everything", () => {
    let seed = 1;
    const r = new Reservoir(100, () => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646);
    for (let i = 0; i < 10_000; i++) r.add(i);
    expect(r.count).toBe(10_000);
    const s = r.sorted();
    expect(s).toHaveLength(100);
    // A uniform sample of 0..9999: its median is near 5000.
    expect(percentile(s, 50)!).toBeGreaterThan(3500);
    expect(percentile(s, 50)!).toBeLessThan(6500);
  });
});

describe("summary", () => {
  const counts = (over: Partial<RunCounts> = {}): RunCounts => ({
    flow: "rooms",
    clients: 200,
    spawned: 200,
    joinsOk: 198,
    joinsFailed: 2,
    joinMs: Array.from({ length: 100 }, (_, i) => i + 1),
    rttMs: [0.5, 0.7, 1, 1.2, 9],
    messagesSent: 1000,
    messagesAnswered: 998,
    framesLost: 2,
    unanswerable: 0,
    closeCodes: { "1000": 198, "4013": 2 },
    reconnects: 2,
    errors: { NO_CAPACITY: 2 },
    failedClients: 2,
    peakConnected: 198,
    elapsedMs: 61_234,
    timedOut: false,
    ...over,
  });

  test("summarize: percentiles, error rate", () => {
    const s = summarize(counts());
    expect(s.joins).toEqual({ ok: 198, failed: 2, latencyMs: { p50: 50, p95: 95, p99: 99 } });
    expect(s.messages).toEqual({ sent: 1000, answered: 998, rttMs: { p50: 1, p99: 9 }, framesLost: 2, unanswerable: 0 });
    expect(s.errorRate).toBe(0.01);
    expect(s.durationS).toBe(61.2);
    expect(summarize(counts({ joinMs: [], rttMs: [] })).joins.latencyMs).toEqual({ p50: null, p95: null, p99: null });
  });

  test.each<[Partial<RunCounts>, number, boolean]>([
    [{}, 0.01, false],
    [{}, 0.005, true],
    [{ failedClients: 0, errors: {} }, 0, false],
    [{ timedOut: true, failedClients: 0 }, 0.5, true],
  ])("failsThreshold(%p, max %p) = %p", (over, max, want) => {
    expect(failsThreshold(summarize(counts(over)), max)).toBe(want);
  });

  test("formatSummary names every figure the issue asks for", () => {
    const text = formatSummary(summarize(counts()), 0.01);
    expect(text).toContain("joins       198 ok, 2 failed; latency p50 50 ms, p95 95 ms, p99 99 ms");
    expect(text).toContain("RTT p50 1 ms, p99 9 ms");
    expect(text).toContain("frames lost 2");
    expect(text).toContain("close codes 1000×198 4013×2; reconnects 2");
    expect(text).toContain("errors      NO_CAPACITY×2");
    expect(text).toMatch(/result\s+ok \(error rate 1\.00% ≤ 1\.00%\)/);
    expect(formatSummary(summarize(counts()), 0)).toMatch(/result\s+FAIL/);
    expect(formatSummary(summarize(counts({ unanswerable: 40 })), 0.01)).toContain("(40 not measurable");
  });

  test("progressLine", () => {
    expect(progressLine({ elapsedMs: 12_345, spawned: 120, clients: 200, connected: 118, joinsOk: 119, joinsFailed: 1, joinsPerS: 9.96, messagesSent: 2345, errors: 1 })).toBe(
      "[  12.3 s] clients 120/200 connected 118  joins 119 ok 1 failed (10.0/s)  msgs 2345  errors 1",
    );
  });
});
