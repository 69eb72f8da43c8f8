/**
 * The node image, built offline: `bun build --compile node/main.ts` makes one executable; the image
 * is `FROM scratch` with that executable and the shared libraries `ldd` lists (at their paths,
 * the dynamic loader included). No registry is reached — there is no base image to pull.
 *
 * Repeated runs are fast: the image carries a label with a hash of its inputs (the bundled node
 * code, the Bun version, the libraries), and an existing image whose label matches is kept. The
 * compiled executable itself is not byte-reproducible (Bun stamps each compile), so the label keys
 * on the inputs; the executable's own hash is recorded too, for operators.
 */
import { chmodSync, copyFileSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import type Docker from "dockerode";
import { dockerFromUrl, dockerStatus, readJsonLines } from "../core/docker-connect.ts";

export const DEFAULT_NODE_IMAGE = "fleetgate-node:latest";
/** Label holding the hash of the image's inputs (skip-rebuild key). */
export const INPUT_HASH_LABEL = "fleetgate.node.input-sha256";
/** Label holding the hash of the compiled executable inside the image. */
export const BINARY_HASH_LABEL = "fleetgate.node.binary-sha256";
/** Where the executable lives inside the image. */
export const IMAGE_BINARY_PATH = "/fleetgate-node";
/** Bumped when the image layout (Dockerfile, rootfs) changes, so old images are rebuilt. */
const LAYOUT_VERSION = "1";

const REPO_ROOT = resolve(import.meta.dir, "..");
const ENTRY = join(REPO_ROOT, "node/main.ts");

/** Options of {@link ensureNodeImage}. */
export interface EnsureNodeImageOptions {
  /** Image tag (NODE_IMAGE). Default `fleetgate-node:latest`. */
  image?: string;
  /** Engines that need the image (DOCKER_HOSTS entries). Default the local unix socket. */
  dockerHosts?: readonly string[];
  /** Rebuild even when an image with matching inputs exists. */
  force?: boolean;
  /**
   * The build's version, baked in as NODE_VERSION (the node shows it in /health). Default: the
   * image's tag (`fleetgate-node:v2` → `v2`).
   */
  version?: string;
  /**
   * Work directory: a build context per call (removed afterwards) and the last compiled executable
   * (`fleetgate-node`). Default `<repo>/.data/node-image`.
   */
  outDir?: string;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

/** What {@link ensureNodeImage} did, per engine. */
export interface NodeImageResult {
  tag: string;
  /** Per engine: built now, or kept because its inputs matched. */
  engines: Array<{ dockerHost: string; built: boolean; imageId: string; sizeBytes: number }>;
  inputHash: string;
  /** Wall time of the whole call. */
  ms: number;
}

/** Builds the node image on every engine that lacks an up-to-date one; returns what it did. */
export async function ensureNodeImage(opts: EnsureNodeImageOptions = {}): Promise<NodeImageResult> {
  const t0 = performance.now();
  const tag = opts.image ?? DEFAULT_NODE_IMAGE;
  const hosts = opts.dockerHosts?.length ? opts.dockerHosts : ["unix:///var/run/docker.sock"];
  const outDir = resolve(opts.outDir ?? join(REPO_ROOT, ".data/node-image"));
  const log = opts.log ?? (() => {});
  const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(2)}s`;

  const version = opts.version ?? imageTag(tag);
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(version)) throw new Error(`node image version ${JSON.stringify(version)} must be 1-64 of [A-Za-z0-9_.-]`);
  const inputHash = await hashInputs(version);
  log(`[${elapsed()}] node image ${tag}: input hash ${inputHash.slice(0, 12)}`);

  const engines: NodeImageResult["engines"] = [];
  const stale: Array<{ host: string; docker: Docker }> = [];
  for (const host of hosts) {
    const docker = dockerFromUrl(host);
    const existing = await inspectImage(docker, tag);
    if (existing && !opts.force && existing.labels[INPUT_HASH_LABEL] === inputHash) {
      log(`[${elapsed()}] ${host}: ${tag} is up to date (${mb(existing.size)}); skipping (--force rebuilds)`);
      engines.push({ dockerHost: host, built: false, imageId: existing.id, sizeBytes: existing.size });
    } else {
      stale.push({ host, docker });
    }
  }
  if (stale.length === 0) return { tag, engines, inputHash, ms: performance.now() - t0 };

  // A context of its own per call: two set-up scripts building at once must not share one.
  const context = join(outDir, `context-${process.pid}-${crypto.randomUUID().slice(0, 8)}`);
  try {
    const { binaryHash, libs } = await compileInto(context, log, elapsed);
    writeFileSync(join(context, "Dockerfile"), dockerfile(tag, inputHash, binaryHash, version));
    log(`[${elapsed()}] context ready: ${IMAGE_BINARY_PATH} + ${libs.length} libraries (${libs.join(", ")})`);

    for (const { host, docker } of stale) {
      await buildOn(docker, context, tag, (line) => log(`[${elapsed()}] ${host}: ${line}`));
      const img = await inspectImage(docker, tag);
      if (!img || img.labels[INPUT_HASH_LABEL] !== inputHash) throw new Error(`${host}: build finished but ${tag} is missing or has the wrong inputs`);
      log(`[${elapsed()}] ${host}: built ${tag} ${img.id.slice(7, 19)} (${mb(img.size)})`);
      engines.push({ dockerHost: host, built: true, imageId: img.id, sizeBytes: img.size });
    }
    // Keep the last executable beside the contexts (runnable as is; rename is atomic).
    renameSync(join(context, "rootfs", IMAGE_BINARY_PATH.slice(1)), join(outDir, IMAGE_BINARY_PATH.slice(1)));
  } finally {
    rmSync(context, { recursive: true, force: true });
  }
  return { tag, engines, inputHash, ms: performance.now() - t0 };
}

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** Hash of what decides the image's behaviour: the bundled node code, the Bun that compiles it, its libraries, the layout. */
async function hashInputs(version: string): Promise<string> {
  const out = await Bun.build({ entrypoints: [ENTRY], target: "bun", minify: false });
  if (!out.success) throw new Error(`bundling node/main.ts failed:\n${out.logs.map(String).join("\n")}`);
  const h = new Bun.CryptoHasher("sha256");
  h.update(`layout ${LAYOUT_VERSION}\nbun ${Bun.version} ${Bun.revision}\n${process.arch}\nversion ${version}\n`);
  for (const o of out.outputs) h.update(await o.text());
  // The libraries go into the image too: a libc update means a new image.
  for (const lib of lddPaths(process.execPath)) h.update(`${lib}\n`).update(readFileSync(lib));
  return h.digest("hex");
}

/** Compiles the executable into `<context>/rootfs` with the libraries it needs; returns its hash. */
async function compileInto(context: string, log: (l: string) => void, elapsed: () => string): Promise<{ binaryHash: string; libs: string[] }> {
  rmSync(context, { recursive: true, force: true });
  const rootfs = join(context, "rootfs");
  mkdirSync(join(rootfs, "tmp"), { recursive: true });
  chmodSync(join(rootfs, "tmp"), 0o1777);
  const binary = join(rootfs, IMAGE_BINARY_PATH.slice(1));
  const compile = Bun.spawnSync([process.execPath, "build", "--compile", "--minify", ENTRY, "--outfile", binary], { cwd: REPO_ROOT, stdout: "pipe", stderr: "pipe" });
  if (compile.exitCode !== 0) throw new Error(`bun build --compile failed:\n${compile.stderr.toString()}${compile.stdout.toString()}`);
  log(`[${elapsed()}] compiled ${IMAGE_BINARY_PATH} (${mb(statSync(binary).size)})`);

  const libs = lddPaths(binary);
  for (const lib of libs) {
    const dest = join(rootfs, lib.slice(1));
    mkdirSync(dirname(dest), { recursive: true });
    // copyFileSync follows symlinks: the image gets the real library under the path ldd named.
    copyFileSync(lib, dest);
  }
  const binaryHash = new Bun.CryptoHasher("sha256").update(readFileSync(binary)).digest("hex");
  return { binaryHash, libs };
}

/**
 * Absolute library paths from `ldd` output, the dynamic loader included; the kernel's vDSO has no
 * file and is skipped. Exported for tests.
 */
export function parseLdd(output: string): string[] {
  const paths = new Set<string>();
  for (const line of output.split("\n")) {
    const arrow = /=>\s*(\/\S+)/.exec(line);
    if (arrow?.[1]) {
      paths.add(arrow[1]);
      continue;
    }
    const bare = /^\s*(\/\S+)\s+\(0x/.exec(line);
    if (bare?.[1]) paths.add(bare[1]);
  }
  return [...paths].sort();
}

function lddPaths(binary: string): string[] {
  const r = Bun.spawnSync(["ldd", binary], { stdout: "pipe", stderr: "pipe" });
  const out = r.stdout.toString();
  // A statically linked executable makes ldd exit 1 with "not a dynamic executable": no libraries.
  if (r.exitCode !== 0) {
    if (/not a dynamic executable|statically linked/.test(out + r.stderr.toString())) return [];
    throw new Error(`ldd ${binary} failed: ${r.stderr.toString()}`);
  }
  if (/not found/.test(out)) throw new Error(`ldd: a library of the node executable is missing:\n${out}`);
  return parseLdd(out);
}

/** The tag of an image reference (`repo:tag`), "latest" when it has none. */
export function imageTag(image: string): string {
  const slash = image.lastIndexOf("/");
  const colon = image.lastIndexOf(":");
  return colon > slash ? image.slice(colon + 1) : "latest";
}

/** `repo:tag` with the tag replaced (`fleetgate-node:latest`, `v2` → `fleetgate-node:v2`). */
export function withTag(image: string, tag: string): string {
  const slash = image.lastIndexOf("/");
  const colon = image.lastIndexOf(":");
  return `${colon > slash ? image.slice(0, colon) : image}:${tag}`;
}

function dockerfile(tag: string, inputHash: string, binaryHash: string, version: string): string {
  return [
    "FROM scratch",
    "COPY rootfs/ /",
    `LABEL ${INPUT_HASH_LABEL}="${inputHash}" ${BINARY_HASH_LABEL}="${binaryHash}" org.opencontainers.image.title="${tag}"`,
    // Nobody: the node needs no privileges (ports come from the scheduler's range, above 1024).
    "USER 65534:65534",
    `ENV HOST=0.0.0.0 PORT=8081 NODE_VERSION=${version}`,
    "STOPSIGNAL SIGTERM",
    `ENTRYPOINT ["${IMAGE_BINARY_PATH}"]`,
    "",
  ].join("\n");
}

async function buildOn(docker: Docker, context: string, tag: string, log: (l: string) => void): Promise<void> {
  const stream = await docker.buildImage({ context, src: ["Dockerfile", "rootfs"] }, { t: tag, rm: true, forcerm: true, pull: false });
  let failure: string | undefined;
  await readJsonLines(stream, (msg) => {
    if (msg.error || msg.errorDetail) failure = msg.errorDetail?.message ?? msg.error;
    const text = (msg.stream ?? msg.status ?? "").trim();
    if (text) log(text);
  });
  if (failure) throw new Error(`docker build of ${tag} failed: ${failure}`);
}

async function inspectImage(docker: Docker, tag: string): Promise<{ id: string; size: number; labels: Record<string, string> } | undefined> {
  try {
    const info = await docker.getImage(tag).inspect();
    return { id: info.Id, size: info.Size, labels: info.Config?.Labels ?? {} };
  } catch (err) {
    if (dockerStatus(err) === 404) return undefined;
    throw err;
  }
}
