/**
 * `npm run node:image [-- <tag>] [--force]`: builds the node image offline (see node/image.ts).
 * Tag from the argument, else NODE_IMAGE, else fleetgate-node:latest; engines from DOCKER_HOSTS.
 *
 * Also re-exports `ensureNodeImage` for set-up scripts; the command line runs only when this file
 * is the entry point.
 */
import { loadConfigOrExit } from "../core/config.ts";
import { ensureNodeImage } from "./image.ts";

export { ensureNodeImage, type EnsureNodeImageOptions, type NodeImageResult } from "./image.ts";

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const force = args.includes("--force");
  const unknown = args.filter((a) => a.startsWith("-") && a !== "--force");
  if (unknown.length > 0 || args.includes("--help")) {
    console.error("usage: bun node/build-image.ts [tag] [--force]");
    process.exit(unknown.length > 0 ? 2 : 0);
  }
  const config = loadConfigOrExit(process.env);
  const image = args.find((a) => !a.startsWith("-")) ?? config.nodeImage;
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
