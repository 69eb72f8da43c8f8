/**
 * The layering rule (issue 9): the process folders — gateway/, scheduler/, haproxy/, node/ — never
 * import each other; what they share lives below them in model/ (the fleet's domain) and core/.
 * model/ imports only model/ and core/; core/ only core/. The test reads every import (static,
 * dynamic, `export … from`) of every source file and names each file that breaks the rule.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";

const root = normalize(join(import.meta.dir, "..", ".."));
const processes = ["gateway", "scheduler", "haproxy", "node"] as const;
/** What each top-level folder may import (besides itself and packages from node_modules). */
const allowed: Record<string, readonly string[]> = {
  core: [],
  model: ["core"],
  gateway: ["model", "core", "sdk", "templates"],
  scheduler: ["model", "core", "sdk"],
  haproxy: ["model", "core", "templates"],
  node: ["model", "core", "sdk"],
};

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name === "node_modules" || name === "dist") continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (/\.(ts|tsx|mts|mjs|js)$/.test(name) && !name.endsWith(".d.ts")) out.push(p);
  }
  return out;
}

const IMPORT_RE = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)["'](\.{1,2}\/[^"']+)["']/g;

/** Relative import specifiers of a source text (comments included: a commented-out import is rare and harmless to flag). */
export function relativeImports(text: string): string[] {
  return [...text.matchAll(IMPORT_RE)].map((m) => m[1]!);
}

export function violations(): string[] {
  const out: string[] = [];
  for (const top of Object.keys(allowed)) {
    for (const file of sourceFiles(join(root, top))) {
      for (const spec of relativeImports(readFileSync(file, "utf8"))) {
        const target = relative(root, normalize(join(dirname(file), spec)));
        const targetTop = target.split("/")[0]!;
        if (targetTop === top || allowed[top]!.includes(targetTop)) continue;
        out.push(`${relative(root, file)} imports ${spec} (${targetTop}/ is not below ${top}/)`);
      }
    }
  }
  return out;
}

describe("layers", () => {
  test("the import reader sees static, type, re-export and dynamic imports", () => {
    const text = [
      `import { a } from "../gateway/x.ts";`,
      `import type { B } from '../../scheduler/y.ts';`,
      `export { C } from "./z.ts";`,
      `const m = await import("../node/server.ts");`,
      `import "./side-effect.ts";`,
      `import pkg from "bullmq";`,
    ].join("\n");
    expect(relativeImports(text)).toEqual(["../gateway/x.ts", "../../scheduler/y.ts", "./z.ts", "../node/server.ts", "./side-effect.ts"]);
  });

  test(`${processes.join(", ")} never import each other; model/ and core/ import nothing above them`, () => {
    expect(violations()).toEqual([]);
  });
});
