/**
 * `npm run chaos`: sets up what the chaos suite needs (as `npm test` does: Redis, the Docker engine
 * and node image, HAProxy; plus Debian's redis-sentinel), runs the chaos scenarios on the real
 * parts — test/chaos/ and the edge-reload e2e (200 clients across 20+ HAProxy reloads) — and prints
 * one table: scenario | what was done | what players saw | recovery time. Each scenario writes its
 * row (test/support/chaos.ts reportChaos) to the file named by CHAOS_REPORT. Extra arguments go to
 * `bun test` (e.g. a file filter: `npm run chaos -- test/chaos/redis-sentinel.test.ts`).
 * Exit code: bun test's.
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { aptInstall, ensureDocker, ensureHaproxy, ensureRedis, have } from "./services.ts";

const root = resolve(import.meta.dir, "..");
process.chdir(root);
const say = (l: string) => console.log(`[chaos-setup] ${l}`);
const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

interface Row {
  scenario: string;
  done: string;
  players: string;
  recoveryMs: number | undefined;
  ok: boolean;
}

const redis = await ensureRedis(redisUrl, resolve(root, ".data/test"), say).catch((e: unknown) => {
  say(`redis: ${e instanceof Error ? e.message : String(e)}`);
  return undefined;
});
const docker = await ensureDocker(say);
if (docker) {
  const { ensureNodeImage } = (await import(resolve(root, "node/build-image.ts"))) as { ensureNodeImage: (opts?: { log?: (l: string) => void }) => Promise<unknown> };
  await ensureNodeImage({ log: say }).catch((e: unknown) => say(`node image: ${e instanceof Error ? e.message : String(e)}`));
}
ensureHaproxy(say);
if (!have("redis-sentinel")) aptInstall(["redis-sentinel"], say);

const report = join(tmpdir(), `fleetgate-chaos-${process.pid}.jsonl`);
rmSync(report, { force: true });
const args = process.argv.slice(2);
const files = args.length ? args : ["test/chaos/", "test/e2e/edge-reload.test.ts"];
const t0 = Date.now();
const proc = Bun.spawn([process.execPath, "test", "--timeout", "180000", ...files], {
  cwd: root,
  env: { ...process.env, REDIS_URL: redisUrl, CHAOS_REPORT: report },
  stdout: "inherit",
  stderr: "inherit",
});
const code = await proc.exited;
await redis?.stop();

const rows: Row[] = existsSync(report)
  ? readFileSync(report, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Row)
  : [];
rmSync(report, { force: true });

/** A Markdown table, so it can go into an issue's closing note as it is. */
function table(rs: Row[]): string {
  const esc = (s: string) => s.replace(/\|/g, "\\|").replace(/\n/g, " ");
  const lines = ["| scenario | what was done | what players saw | recovery |", "| --- | --- | --- | --- |"];
  for (const r of rs) {
    const rec = r.recoveryMs === undefined ? "-" : `${(r.recoveryMs / 1000).toFixed(2)} s`;
    lines.push(`| ${esc(r.scenario)}${r.ok ? "" : " **(FAILED)**"} | ${esc(r.done)} | ${esc(r.players)} | ${rec} |`);
  }
  return lines.join("\n");
}

console.log(`\nnpm run chaos: ${rows.length} scenarios in ${((Date.now() - t0) / 1000).toFixed(0)} s, ${rows.filter((r) => !r.ok).length} failed\n`);
console.log(table(rows));
process.exit(code);
