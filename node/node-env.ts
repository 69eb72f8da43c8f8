/**
 * The node contract's environment, parsed and validated: every problem reported at once. Pure —
 * `node/main.ts` passes `process.env` in; tests pass maps.
 */
import { ConfigError, type RoomMode } from "../core/config.ts";

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

const NODE_ID_RE = /^[A-Za-z0-9_.-]{1,64}$/;

export function parseNodeEnv(env: Env): NodeEnv {
  const problems: string[] = [];
  const raw = (name: string): string | undefined => {
    const v = env[name]?.trim();
    return v === undefined || v === "" ? undefined : v;
  };
  const int = (name: string, def: number, min: number, max: number): number => {
    const v = raw(name);
    if (v === undefined) return def;
    if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
      problems.push(`${name}=${JSON.stringify(v)} must be a whole number in ${min}..${max}`);
      return def;
    }
    return Number(v);
  };

  const nodeId = raw("NODE_ID") ?? "";
  if (nodeId === "") problems.push("NODE_ID is required");
  else if (!NODE_ID_RE.test(nodeId)) problems.push(`NODE_ID=${JSON.stringify(nodeId)} must be 1-64 of [A-Za-z0-9_.-]`);

  // The token is compared as given (not trimmed): a stray space is a different token.
  const token = env.NODE_TOKEN ?? "";
  if (token === "") problems.push("NODE_TOKEN is required (the node accepts gateway connections only with it)");

  const drainRaw = raw("DRAIN_SECONDS");
  let drainMs = 5000;
  if (drainRaw !== undefined) {
    const n = Number(drainRaw);
    if (!/^\d+(\.\d+)?$/.test(drainRaw) || !Number.isFinite(n) || n > 86_400) problems.push(`DRAIN_SECONDS=${JSON.stringify(drainRaw)} must be a number of seconds in 0..86400`);
    else drainMs = Math.round(n * 1000);
  }

  const modeRaw = raw("ROOM_MODE") ?? "relay";
  let roomMode: RoomMode = "relay";
  if (modeRaw === "relay" || modeRaw === "echo") roomMode = modeRaw;
  else problems.push(`ROOM_MODE=${JSON.stringify(modeRaw)} must be relay or echo`);

  const levelRaw = raw("LOG_LEVEL") ?? "info";
  let logLevel: NodeEnv["logLevel"] = "info";
  if (levelRaw === "debug" || levelRaw === "info" || levelRaw === "warn" || levelRaw === "error") logLevel = levelRaw;
  else problems.push(`LOG_LEVEL=${JSON.stringify(levelRaw)} must be debug, info, warn or error`);

  const host = raw("HOST") ?? "0.0.0.0";
  if (!/^[A-Za-z0-9.:_-]+$/.test(host)) problems.push(`HOST=${JSON.stringify(host)} is not an address`);

  const fleetgateUrl = raw("FLEETGATE_URL")?.replace(/\/+$/, "");
  if (fleetgateUrl !== undefined && !/^https?:\/\/[^\s/]+/.test(fleetgateUrl)) problems.push(`FLEETGATE_URL=${JSON.stringify(fleetgateUrl)} must be an http:// or https:// URL`);

  const parsed: NodeEnv = {
    nodeId,
    port: int("PORT", 8081, 0, 65535),
    host,
    maxRooms: int("MAX_ROOMS", 100, 1, 1_000_000),
    maxPlayers: int("MAX_PLAYERS", 1000, 1, 10_000_000),
    token,
    drainMs,
    roomMode,
    reconnectDelayMs: int("RECONNECT_DELAY_MS", 1000, 0, 3_600_000),
    fleetgateUrl,
    snapshotIntervalMs: int("SNAPSHOT_INTERVAL_MS", 100, 10, 3_600_000),
    version: raw("NODE_VERSION") ?? "dev",
    logLevel,
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return parsed;
}
