/**
 * `npm run node:image [-- <image>] [--tag <tag>] [--force]`: builds the node image offline (see
 * node/image.ts). Image from the argument, else NODE_IMAGE, else fleetgate-node:latest; `--tag v2`
 * builds the same repository under another tag (`fleetgate-node:v2`) whose nodes show version `v2`
 * in /health — a second fleet version for rollouts, no registry needed. Engines from DOCKER_HOSTS.
 *
 * Also re-exports `ensureNodeImage` for set-up scripts; the command line runs only when this file
 * is the entry point.
 */
import { loadConfigOrExit } from "../core/config.ts";
import { ensureNodeImage, withTag } from "./image.ts";

export { ensureNodeImage, type EnsureNodeImageOptions, type NodeImageResult } from "./image.ts";

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const force = args.includes("--force");
  const tagAt = args.indexOf("--tag");
  const tag = tagAt >= 0 ? args[tagAt + 1] : undefined;
  const rest = args.filter((a, i) => i !== tagAt && !(tagAt >= 0 && i === tagAt + 1));
  const unknown = rest.filter((a) => a.startsWith("-") && a !== "--force");
  const badTag = tagAt >= 0 && (tag === undefined || !/^[A-Za-z0-9_.-]{1,64}$/.test(tag));
  if (unknown.length > 0 || badTag || args.includes("--help")) {
    console.error("usage: bun node/build-image.ts [image] [--tag <tag>] [--force]   (tag: 1-64 of [A-Za-z0-9_.-])");
    process.exit(unknown.length > 0 || badTag ? 2 : 0);
  }
  const config = loadConfigOrExit(process.env);
  const base = rest.find((a) => !a.startsWith("-")) ?? config.nodeImage;
  const image = tag ? withTag(base, tag) : base;
  try {
    const result = await ensureNodeImage({ image, force, dockerHosts: config.dockerHosts, log: (l) => console.log(l) });
    const built = result.engines.filter((e) => e.built).length;
    const size = result.engines[0]?.sizeBytes ?? 0;
    console.log(`${image}: ${built > 0 ? `built on ${built} engine(s)` : "up to date"}, ${(size / 1024 / 1024).toFixed(1)} MB, ${(result.ms / 1000).toFixed(2)}s`);
  } catch (err) {
    console.error(`node image build failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
}

if (import.meta.main) await main();
