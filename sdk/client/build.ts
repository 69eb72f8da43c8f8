/**
 * Builds the package into dist/ (git-ignored): `index.js` (ESM, one file, no Bun or Node API — the
 * same file serves browsers, Bun and Node ≥ 20), `index.min.js` (minified, for a <script type=module>),
 * and type declarations (`*.d.ts`, by tsc). Run: `bun sdk/client/build.ts` (or `npm run build:sdk`).
 * `bundleBrowser()` is the same bundle in memory (the gateway's demo page serves it).
 */
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const here = import.meta.dir;
export const SDK_ENTRY = join(here, "src", "index.ts");
export const SDK_DIST = join(here, "dist");

/** The ESM bundle of the SDK for browsers (and every other runtime), in memory. */
export async function bundleBrowser(opts: { minify?: boolean } = {}): Promise<string> {
  const r = await Bun.build({ entrypoints: [SDK_ENTRY], target: "browser", format: "esm", minify: opts.minify ?? false });
  if (!r.success) throw new Error(`SDK build failed:\n${r.logs.map(String).join("\n")}`);
  const code = await r.outputs[0]!.text();
  assertPortable(code);
  return code;
}

/** The bundle must not lean on Bun or Node (it runs in browsers). */
export function assertPortable(code: string): void {
  const m = /\bBun\.|\brequire\(|["']node:|\bprocess\.env\b|\bBuffer\./.exec(code);
  if (m) throw new Error(`SDK bundle uses a runtime-specific API: ${m[0]}`);
}

/** Writes dist/: index.js, index.min.js, *.d.ts. Returns the files written. */
export async function buildPackage(): Promise<string[]> {
  rmSync(SDK_DIST, { recursive: true, force: true });
  const tsc = Bun.resolveSync("typescript/bin/tsc", here);
  const types = Bun.spawnSync([process.execPath, tsc, "-p", join(here, "tsconfig.build.json")], { stdout: "pipe", stderr: "pipe" });
  if (types.exitCode !== 0) throw new Error(`tsc (declarations) failed:\n${types.stdout.toString()}${types.stderr.toString()}`);
  // The sources import "./x.ts" (Bun runs them as they are); published declarations say "./x.js",
  // which every TypeScript resolution mode maps to x.d.ts.
  for (const f of readdirSync(SDK_DIST)) {
    if (!f.endsWith(".d.ts")) continue;
    const p = join(SDK_DIST, f);
    writeFileSync(p, readFileSync(p, "utf8").replace(/(from\s+|import\()(["'])(\.{1,2}\/[^"']+)\.ts\2/g, "$1$2$3.js$2"));
  }
  writeFileSync(join(SDK_DIST, "index.js"), await bundleBrowser());
  writeFileSync(join(SDK_DIST, "index.min.js"), await bundleBrowser({ minify: true }));
  return readdirSync(SDK_DIST).sort();
}

if (import.meta.main) {
  const files = await buildPackage();
  console.log(`@fleetgate/client built into ${SDK_DIST}: ${files.join(", ")}`);
}
