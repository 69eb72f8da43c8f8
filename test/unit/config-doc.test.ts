import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { configTable, END, START } from "../../scripts/config-doc.ts";

const root = resolve(import.meta.dir, "../..");

describe("README configuration table", () => {
  const source = readFileSync(resolve(root, "core/config.ts"), "utf8");
  const table = configTable(source);

  test("lists every variable loadConfig reads", () => {
    const vars = [...source.matchAll(/r\.\w+\("([A-Z0-9_]+)"/g)].map((m) => m[1]!);
    expect(vars.length).toBeGreaterThan(40);
    for (const v of vars) expect(table).toContain(`\`${v}\``);
  });

  test("README.md carries the current table (bun scripts/config-doc.ts --write)", () => {
    const readme = readFileSync(resolve(root, "README.md"), "utf8");
    const block = readme.slice(readme.indexOf(START) + START.length, readme.indexOf(END)).trim();
    expect(block).toBe(table);
  });
});
