/**
 * Local secrets for single-machine runs. When JWT_SECRET is unset, every process of one
 * deployment (gateway replicas, `npm run token`) must sign and verify with the same secret, so it
 * lives in a file under DATA_DIR, created once with owner-only permissions.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";

/** File name of the generated JWT secret inside DATA_DIR. */
export const JWT_SECRET_FILE = "jwt-secret";

/**
 * Returns the secret stored at `<dataDir>/jwt-secret`, creating it (48 random bytes, base64url,
 * mode 0600) when missing. Safe against two processes starting at once: the file is written to a
 * temporary name and renamed, and the winner's content is read back.
 */
export function loadOrCreateJwtSecret(dataDir: string): string {
  const file = join(dataDir, JWT_SECRET_FILE);
  if (existsSync(file)) {
    const s = readFileSync(file, "utf8").trim();
    if (s.length >= 16) return s;
  }
  mkdirSync(dataDir, { recursive: true });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  writeFileSync(tmp, randomBytes(48).toString("base64url") + "\n", { mode: 0o600 });
  chmodSync(tmp, 0o600);
  // Another process may have created the file meanwhile: keep the first one so tokens agree.
  if (existsSync(file) && readFileSync(file, "utf8").trim().length >= 16) {
    unlinkSync(tmp);
  } else {
    renameSync(tmp, file);
  }
  return readFileSync(file, "utf8").trim();
}

/** The HS256 secret from config, or the DATA_DIR file. Only `main.ts` files and scripts call this. */
export function resolveJwtSecret(config: { jwtSecret: string | undefined; dataDir: string }): string {
  return config.jwtSecret ?? loadOrCreateJwtSecret(config.dataDir);
}
