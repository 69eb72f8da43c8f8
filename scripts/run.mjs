#!/usr/bin/env node
// The one entry point of every npm script, runnable with only Node and npm on the machine:
// installs the npm dependencies when they are missing or stale (Bun itself comes from the npm
// package `bun`), then runs the given command with that Bun.
//   node scripts/run.mjs start            → bun scripts/start.ts   (the whole system)
//   node scripts/run.mjs test [args]      → bun scripts/test.ts    (set-up + every test)
//   node scripts/run.mjs bun <args...>    → bun <args...>
import { spawn, spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { constants } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bunBin = join(root, "node_modules", ".bin", process.platform === "win32" ? "bun.exe" : "bun");

function depsStale() {
  const marker = join(root, "node_modules", ".package-lock.json");
  if (!existsSync(bunBin) || !existsSync(marker)) return true;
  const m = statSync(marker).mtimeMs;
  return ["package.json", "package-lock.json"].some((f) => existsSync(join(root, f)) && statSync(join(root, f)).mtimeMs > m + 1000);
}

if (depsStale()) {
  const t = Date.now();
  console.log("[setup] installing npm dependencies (npm install) ...");
  // `npm install` (it follows package-lock.json), not `npm ci`: npm 11 refuses `ci` on a lock it
  // has just written itself when optional platform packages are involved (msgpackr-extract).
  const r = spawnSync("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: root, stdio: "inherit" });
  if (r.status !== 0) {
    console.error("[setup] npm install failed; fix the error above and run the command again");
    process.exit(r.status ?? 1);
  }
  console.log(`[setup] npm dependencies installed in ${((Date.now() - t) / 1000).toFixed(1)} s`);
}

const [cmd, ...rest] = process.argv.slice(2);
let args;
if (cmd === "start") args = [join(root, "scripts", "start.ts"), ...rest];
else if (cmd === "test") args = [join(root, "scripts", "test.ts"), ...rest];
else if (cmd === "bun") args = rest;
else {
  console.error("usage: node scripts/run.mjs start|test|bun <args...>");
  process.exit(2);
}

// The child learns our pid: `npm start`'s supervisor stops the fleet when this launcher is gone.
const child = spawn(bunBin, args, { cwd: root, stdio: "inherit", env: { ...process.env, FLEETGATE_LAUNCHER_PID: String(process.pid) } });
// Signals go to the child; it decides how to shut down. A second Ctrl-C is passed on as well.
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => {
    if (child.exitCode === null) child.kill(sig);
  });
}
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 128 + (constants.signals[signal] ?? 1) : 1)));
