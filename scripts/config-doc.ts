/**
 * Renders the README's configuration table from core/config.ts: each field's TSDoc and the
 * environment variable its loader reads. `bun scripts/config-doc.ts --write` updates README.md
 * between the config markers; test/unit/config-doc.test.ts fails when the README is out of date.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";

const root = resolve(import.meta.dir, "..");
export const START = "<!-- config:start -->";
export const END = "<!-- config:end -->";

export function configTable(source: string): string {
  const iface = /export interface Config \{([\s\S]*?)\n\}/.exec(source)?.[1] ?? "";
  const loader = /export function loadConfig[\s\S]*$/.exec(source)?.[0] ?? "";
  const envOf = new Map<string, string>();
  for (const m of loader.matchAll(/^\s*(\w+):\s*r\.\w+\("([A-Z0-9_]+)"/gm)) envOf.set(m[1]!, m[2]!);
  // Fields whose variable is read into a local first (e.g. `const redisUrl = r.str("REDIS_URL"...)`).
  for (const m of loader.matchAll(/const (\w+) = r\.\w+\("([A-Z0-9_]+)"/g)) envOf.set(m[1]!, m[2]!);
  for (const m of loader.matchAll(/const (\w+)Raw = r\.\w+\("([A-Z0-9_]+)"/g)) envOf.set(m[1]!, m[2]!);
  if (!envOf.has("dockerHosts") && loader.includes('"DOCKER_HOSTS"')) envOf.set("dockerHosts", "DOCKER_HOSTS");

  const rows: Array<{ vars: string[]; doc: string }> = [];
  const re = /(\/\*\*([\s\S]*?)\*\/\s*)?readonly (\w+)\??:/g;
  for (const m of iface.matchAll(re)) {
    const doc = m[2]
      ?.split("\n")
      .map((l) => l.replace(/^\s*\*\s?/, "").trim())
      .join(" ")
      .trim();
    const env = envOf.get(m[3]!);
    if (doc !== undefined) rows.push({ vars: env ? [env] : [], doc });
    else if (env && rows.length) rows[rows.length - 1]!.vars.push(env);
  }
  const lines = ["| variable | meaning and default |", "| --- | --- |"];
  for (const r of rows) {
    if (r.vars.length === 0) continue;
    const text = r.doc.replace(/^[A-Z0-9_ /]+ — /, "").replace(/\|/g, "\\|");
    lines.push(`| ${r.vars.map((v) => `\`${v}\``).join(", ")} | ${text} |`);
  }
  return lines.join("\n");
}

export function renderReadme(readme: string, table: string): string {
  const a = readme.indexOf(START);
  const b = readme.indexOf(END);
  if (a < 0 || b < a) throw new Error(`README.md has no ${START} … ${END} block`);
  return readme.slice(0, a + START.length) + "\n\n" + table + "\n\n" + readme.slice(b);
}

if (import.meta.main) {
  const table = configTable(readFileSync(resolve(root, "core/config.ts"), "utf8"));
  if (process.argv.includes("--write")) {
    const p = resolve(root, "README.md");
    writeFileSync(p, renderReadme(readFileSync(p, "utf8"), table));
    console.log("README.md configuration table updated");
  } else console.log(table);
}
