/** `npm run token -- --admin` and the shared DATA_DIR secret (no Redis needed). */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadOrCreateJwtSecret } from "../../core/secrets.ts";
import { JwtAuthenticator } from "../../gateway/auth/jwt.ts";

const dir = mkdtempSync(join(tmpdir(), "fg-token-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function runToken(args: string[], env: Record<string, string>) {
  const { JWT_SECRET: _drop, ...base } = process.env;
  const r = Bun.spawnSync([process.execPath, "scripts/token.ts", ...args], { env: { ...base, ...env }, stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, out: r.stdout.toString().trim(), err: r.stderr.toString() };
}

describe("scripts/token.ts", () => {
  test("without JWT_SECRET it creates DATA_DIR/jwt-secret (0600) and signs an admin token with it", async () => {
    const r = runToken(["--admin"], { DATA_DIR: dir });
    expect(r.code).toBe(0);
    const file = join(dir, "jwt-secret");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const secret = readFileSync(file, "utf8").trim();
    expect(loadOrCreateJwtSecret(dir)).toBe(secret);
    const claims = await new JwtAuthenticator({ alg: "HS256", secret }, 1000).verify(r.out);
    expect(claims?.roles).toContain("admin");
    expect(claims!.exp * 1000 - Date.now()).toBeGreaterThan(3600_000);
    // A second run reuses the same secret.
    const again = runToken(["--sub", "p_cli", "--ttl", "60"], { DATA_DIR: dir });
    const c2 = await new JwtAuthenticator({ alg: "HS256", secret }, 1000).verify(again.out);
    expect(c2).toMatchObject({ sub: "p_cli", roles: ["player"] });
  });

  test("JWT_SECRET wins over the file; bad config and bad flags exit non-zero with a message", async () => {
    const secret = "explicit-secret-0123456789";
    const r = runToken(["--admin"], { DATA_DIR: dir, JWT_SECRET: secret });
    expect((await new JwtAuthenticator({ alg: "HS256", secret }, 1000).verify(r.out))?.sub).toBe("admin");
    const bad = runToken([], { JWT_SECRET: "short" });
    expect(bad.code).toBe(1);
    expect(bad.err).toContain("JWT_SECRET");
    const flag = runToken(["--nope"], { DATA_DIR: dir });
    expect(flag.code).toBe(2);
  });
});
