/**
 * `npm test`: sets up what the tests need (Redis; the Docker engine, the node image, HAProxy and
 * Chromium where they are missing and we are root), runs every test with `bun test`, and prints
 * the count of tests passed and failed. Extra arguments go to `bun test` (e.g. a path filter).
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { aptInstall, ensureChromium, ensureDocker, ensureHaproxy, ensureRedis, have } from "./services.ts";

const root = resolve(import.meta.dir, "..");
process.chdir(root);
const say = (l: string) => console.log(`[test-setup] ${l}`);
const t0 = Date.now();
const inCI = !!process.env.CI && process.env.CI !== "false" && process.env.CI !== "0";
const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

const redis = await ensureRedis(redisUrl, resolve(root, ".data/test"), say).catch((e: unknown) => {
  say(`redis: ${e instanceof Error ? e.message : String(e)}`);
  if (inCI) process.exit(1);
  return undefined;
});

const docker = await ensureDocker(say);
if (docker) {
  const imageModule = resolve(root, "node/build-image.ts");
  if (existsSync(imageModule)) {
    const { ensureNodeImage } = (await import(imageModule)) as { ensureNodeImage: (opts?: { log?: (l: string) => void }) => Promise<unknown> };
    try {
      await ensureNodeImage({ log: say });
    } catch (e) {
      say(`node image: ${e instanceof Error ? e.message : String(e)}`);
      if (inCI) process.exit(1);
    }
  }
} else if (inCI) {
  say("CI is set and no Docker engine answers: Docker tests cannot run");
  process.exit(1);
}
if (!ensureHaproxy(say) && inCI) process.exit(1);
if (!ensureChromium(say) && inCI) process.exit(1);
// The TLS edge test makes its certificate with openssl.
if (!have("openssl") && !aptInstall(["openssl"], say) && inCI) process.exit(1);
// The chaos suite's Sentinel failover runs Debian's redis-sentinel.
if (!have("redis-sentinel") && !aptInstall(["redis-sentinel"], say) && inCI) process.exit(1);
// deploy/: promtool checks the Prometheus rules; Debian's docker-compose validates the compose file
// (installed when the distribution has the package; the test skips only where it has none).
if (!have("promtool") && !aptInstall(["prometheus"], say) && inCI) process.exit(1);
if (!have("docker-compose") && !aptInstall(["docker-compose"], say)) say("docker-compose: no package here; the compose validation test skips where apt-cache has no candidate");
say(`ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

const args = process.argv.slice(2);
const proc = Bun.spawn([process.execPath, "test", ...(args.length ? args : ["test/"])], {
  cwd: root,
  env: { ...process.env, REDIS_URL: redisUrl },
  stdout: "pipe",
  stderr: "pipe",
});

// Tee both streams and keep the tail to read bun's summary from.
let tail = "";
async function tee(stream: ReadableStream<Uint8Array>, out: NodeJS.WriteStream): Promise<void> {
  const dec = new TextDecoder();
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    out.write(value);
    tail = (tail + dec.decode(value, { stream: true })).slice(-20_000);
  }
}
await Promise.all([tee(proc.stdout, process.stdout), tee(proc.stderr, process.stderr)]);
const code = await proc.exited;
await redis?.stop();

const count = (word: string) => Number(new RegExp(`^\\s*(\\d+) ${word}$`, "m").exec(tail)?.[1] ?? 0);
const passed = count("pass");
const failed = count("fail");
const skipped = count("skip");
console.log(`\nnpm test took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
console.log(`tests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(code !== 0 ? code : failed > 0 ? 1 : passed === 0 ? 1 : 0);
