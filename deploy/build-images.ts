/**
 * `bun deploy/build-images.ts [--only gateway,scheduler,templater,redis] [--tag-suffix :latest]`
 * (or `--binaries /usr/local/bin`: only the three executables, for deploy/systemd/):
 * builds the images deploy/docker-compose.yml runs, offline, the way the node image is built
 * (node/image.ts): each fleetgate process is one `bun build --compile` executable in an image
 * `FROM scratch` with the shared libraries `ldd` lists; the templater's image also carries this
 * machine's HAProxy, and the Redis image this machine's redis-server (Debian packages). No
 * registry is reached — there is no base image to pull.
 *
 * Images: fleetgate-gateway, fleetgate-scheduler, fleetgate-templater, fleetgate-redis.
 */
import { chmodSync, copyFileSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { dockerFromUrl, readJsonLines } from "../core/docker-connect.ts";
import { parseLdd } from "../node/image.ts";

const ROOT = resolve(import.meta.dir, "..");

export interface ImageSpec {
  /** Image name without tag. */
  name: string;
  /** Entry point compiled with bun build --compile, installed as /<binary>. */
  entry?: string;
  binary: string;
  /** Host executables copied in (with their libraries), at the same path. */
  extra?: string[];
  /** Dockerfile lines after COPY. */
  tail: string[];
}

export const IMAGES: readonly ImageSpec[] = [
  {
    name: "fleetgate-gateway",
    entry: "gateway/main.ts",
    binary: "fleetgate-gateway",
    tail: ["ENV HOST=0.0.0.0 PORT=3000 DATA_DIR=/data", "EXPOSE 3000", 'ENTRYPOINT ["/fleetgate-gateway"]'],
  },
  {
    name: "fleetgate-scheduler",
    entry: "scheduler/main.ts",
    binary: "fleetgate-scheduler",
    // The Docker driver: the engine's socket is mounted at /var/run/docker.sock.
    tail: ["ENV NODE_DRIVER=docker DATA_DIR=/data", 'ENTRYPOINT ["/fleetgate-scheduler"]'],
  },
  {
    name: "fleetgate-templater",
    entry: "haproxy/main.ts",
    binary: "fleetgate-templater",
    extra: ["/usr/sbin/haproxy"],
    // HAProxy runs as the templater's child in the container (no daemon to outlive it).
    tail: ["ENV HAPROXY_BIN=/usr/sbin/haproxy HAPROXY_MODE=child HAPROXY_CONFIG=/data/haproxy/haproxy.cfg DATA_DIR=/data", 'ENTRYPOINT ["/fleetgate-templater"]'],
  },
  {
    name: "fleetgate-redis",
    binary: "usr/bin/redis-server",
    extra: ["/usr/bin/redis-server"],
    tail: ["EXPOSE 6379", 'ENTRYPOINT ["/usr/bin/redis-server"]', 'CMD ["--appendonly", "yes", "--dir", "/data"]'],
  },
];

function ldd(binary: string): string[] {
  const r = Bun.spawnSync(["ldd", binary], { stdout: "pipe", stderr: "pipe" });
  const out = r.stdout.toString();
  if (r.exitCode !== 0) {
    if (/not a dynamic executable|statically linked/.test(out + r.stderr.toString())) return [];
    throw new Error(`ldd ${binary} failed: ${r.stderr.toString()}`);
  }
  if (/not found/.test(out)) throw new Error(`ldd: a library of ${binary} is missing:\n${out}`);
  return parseLdd(out);
}

function copyIn(rootfs: string, path: string): void {
  const dest = join(rootfs, path.slice(1));
  mkdirSync(dirname(dest), { recursive: true });
  copyFileSync(path, dest); // follows symlinks: the real file under the path ldd named
}

/** Writes `<context>/rootfs` and `<context>/Dockerfile` for one image. */
export function prepareContext(spec: ImageSpec, context: string): void {
  rmSync(context, { recursive: true, force: true });
  const rootfs = join(context, "rootfs");
  for (const d of ["tmp", "data"]) {
    mkdirSync(join(rootfs, d), { recursive: true });
    chmodSync(join(rootfs, d), 0o1777);
  }
  const binaries: string[] = [];
  if (spec.entry) {
    const out = join(rootfs, spec.binary);
    const r = Bun.spawnSync([process.execPath, "build", "--compile", "--minify", join(ROOT, spec.entry), "--outfile", out], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`bun build --compile ${spec.entry} failed:\n${r.stderr.toString()}${r.stdout.toString()}`);
    binaries.push(out);
  }
  for (const x of spec.extra ?? []) {
    copyIn(rootfs, x);
    binaries.push(x);
  }
  const libs = new Set<string>();
  for (const b of binaries) for (const l of ldd(b)) libs.add(l);
  for (const l of libs) copyIn(rootfs, l);
  writeFileSync(join(context, "Dockerfile"), ["FROM scratch", "COPY rootfs/ /", `LABEL org.opencontainers.image.title="${spec.name}"`, "STOPSIGNAL SIGTERM", ...spec.tail, ""].join("\n"));
}

export async function buildImage(spec: ImageSpec, opts: { tag?: string; dockerHost?: string; log?: (l: string) => void } = {}): Promise<{ tag: string; sizeBytes: number }> {
  const tag = `${spec.name}${opts.tag ?? ":latest"}`;
  const log = opts.log ?? (() => {});
  const context = join(ROOT, ".data/deploy-images", `${spec.name}-${process.pid}`);
  try {
    prepareContext(spec, context);
    const docker = dockerFromUrl(opts.dockerHost ?? "unix:///var/run/docker.sock");
    const stream = await docker.buildImage({ context, src: ["Dockerfile", "rootfs"] }, { t: tag, rm: true, forcerm: true, pull: false });
    let failure: string | undefined;
    await readJsonLines(stream, (msg) => {
      if (msg.error || msg.errorDetail) failure = msg.errorDetail?.message ?? msg.error;
      const text = (msg.stream ?? msg.status ?? "").trim();
      if (text) log(`${spec.name}: ${text}`);
    });
    if (failure) throw new Error(`docker build of ${tag} failed: ${failure}`);
    const info = await docker.getImage(tag).inspect();
    return { tag, sizeBytes: info.Size };
  } finally {
    rmSync(context, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const onlyArg = args.indexOf("--only");
  const only = onlyArg >= 0 ? (args[onlyArg + 1] ?? "").split(",") : undefined;
  const tagArg = args.indexOf("--tag-suffix");
  const tag = tagArg >= 0 ? args[tagArg + 1] : undefined;
  const binArg = args.indexOf("--binaries");
  if (binArg >= 0) {
    // For the systemd units: just the executables, e.g. --binaries /usr/local/bin.
    const dir = resolve(args[binArg + 1] ?? ".");
    mkdirSync(dir, { recursive: true });
    for (const s of IMAGES) {
      if (!s.entry) continue;
      const out = join(dir, s.binary);
      const r = Bun.spawnSync([process.execPath, "build", "--compile", "--minify", join(ROOT, s.entry), "--outfile", out], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
      if (r.exitCode !== 0) {
        console.error(`bun build --compile ${s.entry} failed:\n${r.stderr.toString()}`);
        process.exit(1);
      }
      console.log(out);
    }
    return;
  }
  const specs = IMAGES.filter((s) => !only || only.some((o) => s.name === o || s.name === `fleetgate-${o}`));
  if (specs.length === 0) {
    console.error(`usage: bun deploy/build-images.ts [--only ${IMAGES.map((s) => s.name.replace("fleetgate-", "")).join(",")}] [--tag-suffix :latest]`);
    process.exit(2);
  }
  for (const s of specs) {
    const t0 = performance.now();
    try {
      const r = await buildImage(s, { tag, log: process.env.VERBOSE ? (l) => console.log(l) : undefined });
      console.log(`${r.tag}: ${(r.sizeBytes / 1024 / 1024).toFixed(1)} MB in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    } catch (err) {
      console.error(err instanceof Error ? err.message : String(err));
      process.exit(1);
    }
  }
}

if (import.meta.main) await main();
