/**
 * @fleetgate/client as a package (issue 13): `bun sdk/client/build.ts` writes dist/ (ESM bundle,
 * minified bundle, declarations); the package.json exports point at files that exist; a TypeScript
 * consumer that installs the package (a node_modules link) type-checks against the declarations
 * under Node16 resolution; and the built bundle runs on Node ≥ 20 against a real gateway — guest
 * sign-in, rooms, typed errors — with a clear message where Node has no WebSocket; `npm pack`
 * ships dist/, README and package.json only.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { buildPackage, SDK_DIST } from "../../sdk/client/build.ts";
import { startTestGateway, startTestNode, type TestGateway, type TestNode } from "../support/gateway-fixtures.ts";
import { captureOutput, freePort, IN_CI, need, testRedis, type TestRedis } from "../support/services.ts";

const root = resolve(import.meta.dir, "..", "..");
const pkgDir = join(root, "sdk", "client");
const nodeBin = Bun.which("node");
if (!nodeBin && IN_CI) throw new Error("node is required under CI");

describe("@fleetgate/client package", () => {
  let files: string[] = [];
  let work: string;

  beforeAll(async () => {
    files = await buildPackage();
    work = mkdtempSync(join(tmpdir(), "fg-sdk-consumer-"));
    mkdirSync(join(work, "node_modules", "@fleetgate"), { recursive: true });
    symlinkSync(pkgDir, join(work, "node_modules", "@fleetgate", "client"));
  }, 60_000);
  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test("dist/ has the bundles and declarations the exports map names", () => {
    const pkg = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")) as { name: string; type: string; exports: Record<string, Record<string, string>> };
    expect(pkg.name).toBe("@fleetgate/client");
    expect(pkg.type).toBe("module");
    for (const target of Object.values(pkg.exports["."]!)) expect(existsSync(join(pkgDir, target))).toBe(true);
    expect(files).toEqual(expect.arrayContaining(["index.js", "index.min.js", "index.d.ts", "client.d.ts", "rooms.d.ts", "matchmaking.d.ts", "regions.d.ts", "errors.d.ts"]));
    const bundle = readFileSync(join(SDK_DIST, "index.js"), "utf8");
    expect(bundle).not.toMatch(/\bBun\.|\brequire\(|["']node:/);
    // Declarations name their siblings as .js (what every TypeScript resolution mode maps to .d.ts).
    expect(readFileSync(join(SDK_DIST, "index.d.ts"), "utf8")).not.toMatch(/from "\.\/[^"]+\.ts"/);
  });

  test("npm pack ships dist/, README and package.json, and no sources", () => {
    const r = Bun.spawnSync(["npm", "pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: pkgDir, stdout: "pipe", stderr: "pipe" });
    expect(r.exitCode).toBe(0);
    const [pack] = JSON.parse(r.stdout.toString()) as { name: string; files: { path: string }[] }[];
    const paths = pack!.files.map((f) => f.path).sort();
    expect(pack!.name).toBe("@fleetgate/client");
    expect(paths).toEqual(expect.arrayContaining(["README.md", "package.json", "dist/index.js", "dist/index.min.js", "dist/index.d.ts"]));
    expect(paths.filter((p) => !p.startsWith("dist/") && p !== "README.md" && p !== "package.json")).toEqual([]);
  }, 60_000);

  test("a TypeScript consumer (strict, Node16 resolution) type-checks against the package", () => {
    writeFileSync(
      join(work, "tsconfig.json"),
      JSON.stringify({ compilerOptions: { strict: true, module: "node16", moduleResolution: "node16", target: "es2022", lib: ["es2022", "dom"], noEmit: true, types: [] }, files: ["app.ts"] }),
    );
    writeFileSync(join(work, "package.json"), JSON.stringify({ type: "module" }));
    writeFileSync(
      join(work, "app.ts"),
      [
        `import { FleetgateClient, FleetgateError, type Room, type MatchedTicket } from "@fleetgate/client";`,
        `const fg = new FleetgateClient({ baseUrl: "http://127.0.0.1:3000" });`,
        `export async function main(): Promise<string> {`,
        `  await fg.signInAsGuest({ displayName: "ada" });`,
        `  const rooms: Room[] = await fg.rooms.list({ mode: "ctf" });`,
        `  const m: MatchedTicket = await fg.matchmaking.findMatch({ mode: "ctf", onProgress: (p) => void p.waitedMs });`,
        `  const conn = fg.matchmaking.connect(m);`,
        `  conn.on("close", (e) => { if (e.action === "stop") conn.close(); });`,
        `  try { await fg.rooms.join("ABCD", { password: "x" }); } catch (e) { if (e instanceof FleetgateError) return e.code; }`,
        `  return String(rooms.length);`,
        `}`,
        // A type error the declarations must catch (the test fails if tsc passes this).
        `// @ts-expect-error visibility is "public" | "private"`,
        `void fg.rooms.create({ visibility: "secret" });`,
      ].join("\n"),
    );
    const tsc = Bun.resolveSync("typescript/bin/tsc", root);
    const r = Bun.spawnSync([process.execPath, tsc, "-p", work], { stdout: "pipe", stderr: "pipe" });
    expect(r.stdout.toString() + r.stderr.toString()).toBe("");
    expect(r.exitCode).toBe(0);
  }, 60_000);

  describe.skipIf(!nodeBin || !need("redis"))("on Node", () => {
    let tr: TestRedis;
    let gw: TestGateway;
    let node: TestNode;
    beforeAll(async () => {
      tr = testRedis("sdkpkg");
      gw = await startTestGateway(tr.prefix, { port: freePort() });
      node = await startTestNode(gw.deps, { roomMode: "relay" });
    });
    afterAll(async () => {
      await gw?.stop();
      await node?.stop();
      await tr?.cleanup();
    });

    test("the built bundle signs in, creates and lists rooms, and throws typed errors", async () => {
      writeFileSync(
        join(work, "node-check.mjs"),
        `import { FleetgateClient, FleetgateError } from "@fleetgate/client";
const fg = new FleetgateClient({ baseUrl: process.argv[2] });
const g = await fg.signInAsGuest({ displayName: "node" });
const room = await fg.rooms.create({ visibility: "public", mode: "nodecheck" });
const listed = (await fg.rooms.list({ mode: "nodecheck" })).map((r) => r.code);
let err;
try { await fg.rooms.get("ZZZZ"); } catch (e) { err = e instanceof FleetgateError ? e.status + " " + e.code : String(e); }
let ws = "global";
if (typeof WebSocket === "undefined") { try { fg.connect(room.connectUrl); } catch (e) { ws = e.message; } }
fg.close();
console.log(JSON.stringify({ node: process.version, player: g.playerId, listed: listed.includes(room.code), err, ws }));
`,
      );
      const proc = Bun.spawn([nodeBin!, "node-check.mjs", gw.url], { cwd: work, stdout: "pipe", stderr: "pipe" });
      const out = captureOutput(proc);
      expect(await proc.exited).toBe(0);
      const r = JSON.parse(out.output().trim().split("\n").at(-1)!) as { node: string; player: string; listed: boolean; err: string; ws: string };
      expect(Number(r.node.slice(1).split(".")[0])).toBeGreaterThanOrEqual(20);
      expect(r.player).toMatch(/^p_/);
      expect(r.listed).toBe(true);
      expect(r.err).toBe("404 ROOM_NOT_FOUND");
      if (r.ws !== "global") expect(r.ws).toMatch(/pass one in FleetgateClientOptions.WebSocket/);
    }, 30_000);

    test("with a WebSocket (Node 20's --experimental-websocket), two Node clients meet in a room and talk", async () => {
      writeFileSync(
        join(work, "node-room.mjs"),
        `import { FleetgateClient } from "@fleetgate/client";
const [host, guest] = [new FleetgateClient({ baseUrl: process.argv[2] }), new FleetgateClient({ baseUrl: process.argv[2] })];
await host.signInAsGuest({ displayName: "host" });
await guest.signInAsGuest({ displayName: "guest" });
const room = await host.rooms.create({ visibility: "private", password: "pw", maxPlayers: 2 });
const a = await host.rooms.connect(room.code);
const b = await guest.rooms.connect(room.code, { password: "pw" });
await Promise.all([a.ready(5000), b.ready(5000)]);
const got = new Promise((resolve) => b.on("message", (m) => resolve(m)));
// The guest's socket may reach the node's room a moment after its open: say it until heard.
const timer = setInterval(() => a.send("hello from node"), 50);
let giveUp;
const message = await Promise.race([got, new Promise((r) => (giveUp = setTimeout(() => r("timeout"), 5000)))]);
clearInterval(timer);
clearTimeout(giveUp);
await guest.rooms.leave(room.code);
await host.rooms.leave(room.code);
host.close(); guest.close();
console.log(JSON.stringify({ message }));
`,
      );
      const proc = Bun.spawn([nodeBin!, "--experimental-websocket", "--no-warnings", "node-room.mjs", gw.url], { cwd: work, stdout: "pipe", stderr: "pipe" });
      const out = captureOutput(proc);
      expect(await proc.exited).toBe(0);
      expect(JSON.parse(out.output().trim().split("\n").at(-1)!)).toEqual({ message: "hello from node" });
    }, 30_000);
  });
});
