/**
 * The stats page password: HAPROXY_STATS_PASSWORD when set; otherwise one generated once,
 * kept under DATA_DIR (mode 600) so restarts keep it, and printed so the operator can log in.
 */
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Config } from "../core/config.ts";
import type { Logger } from "../core/log.ts";

export function statsPasswordFile(dataDir: string): string {
  return join(dataDir, "haproxy-stats-password");
}

export async function resolveStatsPassword(config: Config, log: Logger): Promise<string> {
  if (config.haproxyStatsPassword) return config.haproxyStatsPassword;
  const file = statsPasswordFile(config.dataDir);
  const saved = (await Bun.file(file).text().catch(() => "")).trim();
  if (saved) {
    log.info(`HAProxy stats page: user ${config.haproxyStatsUser}, password in ${file}`);
    return saved;
  }
  const password = Buffer.from(crypto.getRandomValues(new Uint8Array(18))).toString("base64url");
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, `${password}\n`, { mode: 0o600 });
  await chmod(file, 0o600);
  log.warn(`HAProxy stats page: generated password for user ${config.haproxyStatsUser}: ${password} (saved in ${file}; set HAPROXY_STATS_PASSWORD to choose one)`);
  return password;
}
