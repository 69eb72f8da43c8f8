/**
 * `npm run token -- [--admin] [--sub ID] [--name NAME] [--region R] [--ttl SECONDS]` prints a JWT
 * signed with this deployment's key: JWT_SECRET, else the DATA_DIR/jwt-secret file (created when
 * missing, the same one the gateway uses), or JWT_PRIVATE_KEY for RS256/ES256. Admin tokens come
 * only from here, never from an HTTP endpoint.
 */
import { parseArgs } from "node:util";
import { loadConfigOrExit, type Config } from "../core/config.ts";
import { resolveJwtSecret } from "../core/secrets.ts";
import { JwtAuthenticator, jwtKeysFromConfig } from "../gateway/auth/jwt.ts";
import type { Role } from "../gateway/contracts.ts";

const USAGE = "usage: npm run token -- [--admin] [--sub ID] [--name NAME] [--region REGION] [--ttl SECONDS]";

let args;
try {
  args = parseArgs({
    args: process.argv.slice(2),
    options: {
      admin: { type: "boolean", default: false },
      sub: { type: "string" },
      name: { type: "string" },
      region: { type: "string" },
      ttl: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  }).values;
} catch (err) {
  console.error(`${err instanceof Error ? err.message : String(err)}\n${USAGE}`);
  process.exit(2);
}
if (args.help) {
  console.log(USAGE);
  process.exit(0);
}

const config: Config = loadConfigOrExit(process.env);

const ttlSeconds = args.ttl === undefined ? undefined : Number(args.ttl);
if (ttlSeconds !== undefined && (!Number.isFinite(ttlSeconds) || ttlSeconds <= 0)) {
  console.error(`--ttl must be a positive number of seconds\n${USAGE}`);
  process.exit(2);
}
const sub = args.sub ?? (args.admin ? "admin" : `p_cli_${Date.now().toString(36)}`);
if (!/^[A-Za-z0-9_.:-]{1,128}$/.test(sub)) {
  console.error("--sub must be 1-128 of [A-Za-z0-9_.:-]");
  process.exit(2);
}
const roles: Role[] = args.admin ? ["admin", "player"] : ["player"];
const auth = new JwtAuthenticator(jwtKeysFromConfig(config, config.jwtAlg === "HS256" ? resolveJwtSecret(config) : undefined), config.jwtTtlMs);
// Admin tokens default to 12 h so an operator session outlives JWT_TTL's 15 minutes.
const ttlMs = ttlSeconds !== undefined ? ttlSeconds * 1000 : args.admin ? 12 * 3600 * 1000 : undefined;
const { token } = await auth.sign({ sub, name: args.name ?? sub, region: args.region ?? config.region, roles }, Date.now(), ttlMs);
console.log(token);
