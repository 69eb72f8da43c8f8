/**
 * The node contract's environment, parsed and validated: every problem reported at once. Pure —
 * `node/main.ts` passes `process.env` in; tests pass maps.
 */
import { ConfigError, type RoomMode } from "../core/config.ts";
import { envReaders, NodeEnvError, readNodeEnv, type NodeContractEnv } from "../sdk/server/src/index.ts";

/** The node contract's settings (CONTRACT.md "The node contract"). */
export interface NodeEnv {
  /** NODE_ID — required. */
  nodeId: string;
  /** PORT — port to listen on. Default 8081. */
  port: number;
  /** HOST — bind address. Default 0.0.0.0 (inside a container; the driver passes its bind address). */
  host: string;
  /** MAX_ROOMS — default 100. */
  maxRooms: number;
  /** MAX_PLAYERS — total connections; default 1000. */
  maxPlayers: number;
  /** NODE_TOKEN — required: the node accepts gateway connections only with it. */
  token: string;
  /** DRAIN_SECONDS — after SIGTERM, rooms may take this long to empty before players get 4009. Default 5. */
  drainMs: number;
  /** ROOM_MODE — relay (default) or echo. */
  roomMode: RoomMode;
  /** RECONNECT_DELAY_MS — the delay named in the 4009 reason. Default 1000. */
  reconnectDelayMs: number;
  /** NODE_VERSION — the build, shown in /health (the image sets it; see node/image.ts). Default "dev". */
  version: string;
  /** FLEETGATE_URL — the gateway's node API (room snapshots, session resume). Unset: no snapshots. */
  fleetgateUrl: string | undefined;
  /** SNAPSHOT_INTERVAL_MS — a changed room's state is saved at most this often. Default 100. */
  snapshotIntervalMs: number;
  /** LOG_LEVEL — debug | info | warn | error. Default info. */
  logLevel: "debug" | "info" | "warn" | "error";
}

type Env = Readonly<Record<string, string | undefined>>;

export function parseNodeEnv(env: Env): NodeEnv {
  // The node contract's variables are the server SDK's (sdk/server: readNodeEnv); the reference
  // node's own settings are read here. Every problem of both is reported at once.
  const problems: string[] = [];
  let contract: NodeContractEnv | undefined;
  try {
    contract = readNodeEnv(env);
  } catch (err) {
    if (!(err instanceof NodeEnvError)) throw err;
    problems.push(...err.problems);
  }
  const { raw, int } = envReaders(env, problems);

  const levelRaw = raw("LOG_LEVEL") ?? "info";
  let logLevel: NodeEnv["logLevel"] = "info";
  if (levelRaw === "debug" || levelRaw === "info" || levelRaw === "warn" || levelRaw === "error") logLevel = levelRaw;
  else problems.push(`LOG_LEVEL=${JSON.stringify(levelRaw)} must be debug, info, warn or error`);
  const reconnectDelayMs = int("RECONNECT_DELAY_MS", 1000, 0, 3_600_000);
  const snapshotIntervalMs = int("SNAPSHOT_INTERVAL_MS", 100, 10, 3_600_000);

  if (problems.length > 0 || !contract) throw new ConfigError(problems);
  return {
    nodeId: contract.nodeId,
    port: contract.port,
    host: contract.host,
    maxRooms: contract.maxRooms,
    maxPlayers: contract.maxPlayers,
    token: contract.token,
    drainMs: Math.round(contract.drainSeconds * 1000),
    roomMode: contract.roomMode,
    reconnectDelayMs,
    fleetgateUrl: contract.fleetgateUrl,
    snapshotIntervalMs,
    version: raw("NODE_VERSION") ?? "dev",
    logLevel,
  };
}
