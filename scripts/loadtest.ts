/**
 * `npm run loadtest -- --url <gateway or edge> --clients N --spawn-rate R --match-duration S
 *  --flow dedicated|rooms|matchmaking --msg-rate HZ [--json] [--max-error-rate X]` (issue 13).
 *
 * Real clients through the client SDK against a running fleetgate; a live progress line on stderr;
 * a summary (joins ok/failed with latency p50/p95/p99, message RTT p50/p99, close codes seen,
 * frames lost) on stdout, as JSON with --json. Exit 0 when the share of failed clients is at most
 * --max-error-rate, 1 above it (or when the run hit --timeout), 2 for bad arguments.
 */
import { parseArgs, USAGE } from "./loadtest/args.ts";
import { runLoadTest } from "./loadtest/runner.ts";
import { failsThreshold, formatSummary, summarize } from "./loadtest/stats.ts";

const parsed = parseArgs(process.argv.slice(2));
if (!parsed.ok) {
  if (parsed.help) {
    console.log(USAGE);
    process.exit(0);
  }
  console.error(`loadtest: ${parsed.problems.join("; ")}\n\n${USAGE}`);
  process.exit(2);
}
const o = parsed.options;
const tty = process.stderr.isTTY === true;
if (!o.json) console.error(`loadtest: ${o.clients} clients, ${o.spawnRate}/s, flow ${o.flow}, ${o.msgRate} msg/s each for ${o.matchDurationS} s against ${o.url} (bound ${o.timeoutS} s)`);
const counts = await runLoadTest(o, {
  onProgress(line, final) {
    if (tty) process.stderr.write(`\r${line}\x1b[K${final ? "\n" : ""}`);
    else process.stderr.write(`${line}\n`);
  },
});
const summary = summarize(counts);
const failed = failsThreshold(summary, o.maxErrorRate);
if (o.json) console.log(JSON.stringify({ ...summary, maxErrorRate: o.maxErrorRate, passed: !failed }, null, 2));
else console.log(formatSummary(summary, o.maxErrorRate));
process.exit(failed ? 1 : 0);
