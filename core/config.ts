/**
 * Configuration: parsed once from an environment map (only `main.ts` files pass `process.env`),
 * validated with every problem reported at once, then frozen. Timings are given in seconds in
 * the environment (fractions allowed, so tests can scale the 5 s / 10 s / 30 s lifecycle down)
 * and stored in milliseconds here.
 */

import { availableParallelism } from "node:os";

export type NodeDriverKind = "docker" | "process" | "auto";
export type RoomMode = "relay" | "echo";
export type DockerNetworkMode = "host" | "bridge";
export type JwtAlgorithm = "HS256" | "RS256" | "ES256";

/** One REDIS_SENTINELS entry. */
export interface RedisSentinelAddress {
  host: string;
  port: number;
}

export interface Config {
  /** REDIS_URL — Redis for registry, queues and events. Default `redis://127.0.0.1:6379`. */
  readonly redisUrl: string;
  /** REDIS_PREFIX — every key, channel and queue of one deployment lives under it. Default `fleetgate`. */
  readonly redisPrefix: string;
  /**
   * REDIS_SENTINELS — comma list of Redis Sentinels (`host:port,host:port`); when set, every
   * connection (and BullMQ's) asks them for the current primary of REDIS_SENTINEL_NAME and follows
   * a failover, and REDIS_URL only gives credentials and db. Default unset: REDIS_URL's host.
   */
  readonly redisSentinels: readonly RedisSentinelAddress[];
  /** REDIS_SENTINEL_NAME — the primary's name the sentinels monitor. Default `mymaster`. */
  readonly redisSentinelName: string;

  /** JWT_SECRET — HS256 secret. Unset: `main.ts` loads or creates `.data/jwt-secret`. */
  readonly jwtSecret: string | undefined;
  /** JWT_ALG — HS256 (default), RS256 or ES256 (then JWT_PUBLIC_KEY / JWT_PRIVATE_KEY, PEM). */
  readonly jwtAlg: JwtAlgorithm;
  readonly jwtPublicKey: string | undefined;
  readonly jwtPrivateKey: string | undefined;
  /** JWT_TTL — access-token lifetime, seconds. Default 900. */
  readonly jwtTtlMs: number;
  /** REFRESH_TTL — refresh-token lifetime, seconds. Default 30 days. */
  readonly refreshTtlMs: number;
  /** AUTH_GUEST — guest tokens from `POST /v1/auth/guest`. Default true. */
  readonly authGuest: boolean;

  /** HOST / PORT — gateway listen address. Default 127.0.0.1:3000 (HAProxy is the public edge). */
  readonly host: string;
  readonly port: number;
  /** PUBLIC_URL — base URL clients connect to (connectUrl). Default: the HAProxy edge when present, else the gateway. */
  readonly publicUrl: string | undefined;
  /** GATEWAY_ID — this gateway replica's id. Default: generated. */
  readonly gatewayId: string | undefined;
  /** GATEWAY_HEARTBEAT — gateway registry heartbeat, seconds (TTL is 3×). Default 2. */
  readonly gatewayHeartbeatMs: number;

  /** HAPROXY_PORT — public edge port. Default 8080. */
  readonly haproxyPort: number;
  /** HAPROXY_BIND — public edge bind address. Default 0.0.0.0. */
  readonly haproxyBind: string;
  /** HAPROXY_STATS_PORT — stats page port. Default 8404. */
  readonly haproxyStatsPort: number;
  /** HAPROXY_STATS_USER — stats page user. Default `admin`. */
  readonly haproxyStatsUser: string;
  /** HAPROXY_STATS_PASSWORD — unset: a random one is generated and printed by the templater. */
  readonly haproxyStatsPassword: string | undefined;
  /** HAPROXY_CONFIG — the live config file the templater writes. Default `.data/haproxy/haproxy.cfg`. */
  readonly haproxyConfig: string;
  /** HAPROXY_BIN — the haproxy executable. Default `haproxy`. */
  readonly haproxyBin: string;
  /** HAPROXY_TLS_CERT — PEM bundle; when set the edge also serves TLS on HAPROXY_TLS_PORT (8443). */
  readonly haproxyTlsCert: string | undefined;
  readonly haproxyTlsPort: number;
  /** HAPROXY_CONN_RATE — new connections per IP per 10 s before refusal. Default 200. */
  readonly haproxyConnRate: number;
  /** TEMPLATER_DEBOUNCE — burst window for reloads, seconds. Default 0.25. */
  readonly templaterDebounceMs: number;
  /** TEMPLATER_RESYNC — periodic full re-render, seconds. Default 10. */
  readonly templaterResyncMs: number;
  /**
   * HAPROXY_MODE — how the templater runs an HAProxy it starts: `daemon` (default: it outlives the
   * templater, and the next templater attaches to its master socket) or `child` (stops with it).
   */
  readonly haproxyMode: "daemon" | "child";
  /** HAPROXY_RELOAD_TIMEOUT — how long the templater waits for `show proc` to confirm a reload (and for a started HAProxy to answer), seconds. Default 10. */
  readonly haproxyReloadTimeoutMs: number;
  /** TEMPLATER_METRICS_PORT — the templater's own /metrics listener (127.0.0.1). Default 9465; 0 = off. */
  readonly templaterMetricsPort: number;
  /** ADMIN_EVENTS_INTERVAL — how often the /admin dashboard's SSE stream pushes a fresh snapshot, seconds. Default 1. */
  readonly adminEventsIntervalMs: number;
  /** DEMO — serve the playable demo page at /demo (sign in, lobbies, chat, matchmaking through the client SDK). Default true, except false when NODE_ENV=production. */
  readonly demo: boolean;

  /** NODE_DRIVER — docker | process | auto (docker when an engine answers and the image exists). */
  readonly nodeDriver: NodeDriverKind;
  /** NODE_ROOM_MODE — relay (default) or echo. */
  readonly nodeRoomMode: RoomMode;
  /** NODE_IMAGE — game-server image. Default `fleetgate-node:latest`. */
  readonly nodeImage: string;
  /** NODE_COMMAND — process driver: command that runs a node. Default: `bun node/main.ts`. */
  readonly nodeCommand: readonly string[] | undefined;
  /**
   * DOCKER_HOSTS — comma list of engines (`unix:///var/run/docker.sock`, `tcp://host:2375`); an entry
   * may name its region (`eu=unix:///var/run/docker.sock,us=tcp://10.0.0.5:2375`), one without is in REGION.
   */
  readonly dockerHosts: readonly string[];
  /** The region of each DOCKER_HOSTS entry, in the same order (its `region=` prefix, else REGION). */
  readonly dockerHostRegions: readonly string[];
  /** DOCKER_NETWORK — host (default, fastest) or bridge (published port on NODE_BIND_ADDRESS). */
  readonly dockerNetwork: DockerNetworkMode;
  /** NODE_BIND_ADDRESS — where node ports are bound/published. Default 127.0.0.1. */
  readonly nodeBindAddress: string;
  /** NODE_MEMORY_MB / NODE_CPUS — container limits. Defaults 256 MB, 1 CPU. */
  readonly nodeMemoryMb: number;
  readonly nodeCpus: number;
  /** NODE_MAX_ROOMS — rooms per node. Default 100. */
  readonly nodeMaxRooms: number;
  /**
   * NODE_MAX_PLAYERS — MAX_PLAYERS given to each node: the most connections one node accepts.
   * Default: the largest of MAX_PLAYERS_PER_SERVER, ROOM_MAX_PLAYERS and SESSION_SIZE, so that with
   * one server per player (or per match) a whole room still fits on its server.
   */
  readonly nodeMaxPlayers: number;
  /** NODE_DRAIN_SECONDS — DRAIN_SECONDS given to nodes (SIGTERM → close 4009 deadline). Default 5. */
  readonly nodeDrainMs: number;
  /** NODE_START_TIMEOUT — how long a started node may take to answer /health ready, seconds. Default 15. */
  readonly nodeStartTimeoutMs: number;

  /** MAX_PLAYERS_PER_SERVER — players per node; 1 = a dedicated server per player. Default 1. */
  readonly maxPlayersPerServer: number;
  /** MAX_SERVERS — fleet ceiling. Default 50. */
  readonly maxServers: number;
  /** MIN_READY_SERVERS — warm spare nodes kept ready (buffer policy). Default 0: an idle fleet costs nothing. */
  readonly minReadyServers: number;
  /** SERVER_PORT_START / SERVER_PORT_END — node port range. Default 8081..9080. */
  readonly serverPortStart: number;
  readonly serverPortEnd: number;

  /** HEARTBEAT_INTERVAL — client heartbeat, seconds. Default 5. */
  readonly heartbeatIntervalMs: number;
  /** INACTIVITY_SHUTDOWN — node without player activity is shut down after, seconds. Default 10. */
  readonly inactivityShutdownMs: number;
  /** CLEANUP_DELETE — stopped node's container is deleted after, seconds. Default 30. */
  readonly cleanupDeleteMs: number;
  /** SESSION_TTL — a player session without heartbeat expires after, seconds. Default 3 × HEARTBEAT_INTERVAL. */
  readonly sessionTtlMs: number;

  /** DRAIN_DEADLINE — drain waits at most this long for rooms to empty, seconds. Default 1200. */
  readonly drainDeadlineMs: number;
  /**
   * ROLLOUT_FAILURE_LIMIT — new-version nodes of a rollout that may fail to get ready before the
   * rollout rolls back by itself. Default 3.
   */
  readonly rolloutFailureLimit: number;
  /** HEALTH_CHECK_INTERVAL — node health checks, seconds. Default 2. */
  readonly healthCheckIntervalMs: number;
  /** HEALTH_CHECK_FAILURES — failed checks before `unhealthy`. Default 3. */
  readonly healthCheckFailures: number;
  /** HEALTH_CHECK_TIMEOUT — one check's timeout, seconds. Default 1. */
  readonly healthCheckTimeoutMs: number;
  /** AUTOSCALE_INTERVAL — autoscaler and reaper tick, seconds. Default 1. */
  readonly autoscaleIntervalMs: number;
  /** SCALE_DOWN_COOLDOWN — no scale-down sooner than this after a scale event, seconds. Default 30. */
  readonly scaleDownCooldownMs: number;
  /** SCALE_UP_UTILIZATION — scale up above this players/capacity ratio. Default 0.8. */
  readonly scaleUpUtilization: number;
  /** JOIN_WAIT_TIMEOUT — a join waiting for a new node gives up (503) after, seconds. Default 15. */
  readonly joinWaitTimeoutMs: number;
  /** SCHEDULER_CONCURRENCY — jobs per worker at once. Default 8. */
  readonly schedulerConcurrency: number;
  /** SCHEDULER_METRICS_PORT — the scheduler's Prometheus `/metrics` port; 0 = off. Default 9464. */
  readonly schedulerMetricsPort: number;
  /**
   * SCHEDULER_LOCK_DURATION — BullMQ job lock, seconds; a job whose scheduler died is picked up by
   * another replica after about this long (stalled-job recovery). Default 30.
   */
  readonly schedulerLockDurationMs: number;
  /**
   * STOP_NODES_ON_EXIT — the scheduler stops and deletes every node of the fleet when it exits.
   * Default false: nodes belong to the fleet, not to one scheduler process (`npm start` sets it on a
   * single machine so nothing is left behind).
   */
  readonly stopNodesOnExit: boolean;
  /**
   * SHUTDOWN_TIMEOUT — seconds a process (gateway, scheduler, templater, and each step of `npm start`'s
   * stop) may take to shut down before it exits anyway, also when Redis is gone. Default 10.
   */
  readonly shutdownTimeoutMs: number;
  /**
   * REDIS_COMMAND_TIMEOUT — seconds a request-path Redis command may wait (also while Redis is
   * unreachable) before the request answers 503 `REDIS_UNAVAILABLE` instead of hanging. Default 2.
   */
  readonly redisCommandTimeoutMs: number;

  /** MAX_FRAME_BYTES — largest WebSocket frame relayed (1009 above). Default 1 MiB. */
  readonly maxFrameBytes: number;
  /** WS_BUFFER_BYTES — per-connection buffered bytes before the relay pauses the other side. Default 4 MiB. */
  readonly wsBufferBytes: number;
  /**
   * WS_RATE_LIMIT — frames per second per connection, a token bucket refilled at this rate: a
   * client above it is paused (TCP pushes back), closed 4029 only after WS_RATE_GRACE. Default 200.
   */
  readonly wsRateLimit: number;
  /** WS_RATE_BURST — the token bucket's size (frames a client may send at once). Default 0: twice WS_RATE_LIMIT. */
  readonly wsRateBurst: number;
  /** WS_RATE_GRACE — seconds a client may stay above WS_RATE_LIMIT (slowed down) before it is closed 4029. Default 5. */
  readonly wsRateGraceMs: number;
  /** HTTP_RATE_LIMIT — requests per second per IP (429 above). Default 100. */
  readonly httpRateLimit: number;
  /** WS_IP_RATE_LIMIT — WebSocket upgrades per second per IP. Default 50. */
  readonly wsIpRateLimit: number;
  /**
   * TRUST_PROXY — take the client address for rate limits from the last X-Forwarded-For hop (the
   * one the HAProxy edge appends). Default true: the gateway listens on 127.0.0.1 behind the edge.
   * Set false when clients reach the gateway directly, or they can pick their own address.
   */
  readonly trustProxy: boolean;
  /**
   * GATEWAY_REUSE_PORT — bind the gateway's port with SO_REUSEPORT, so several gateway processes
   * on one machine share it and the kernel spreads connections across them (one Bun process is
   * one JS thread). Default false: a second process on a taken port fails at start.
   */
  readonly gatewayReusePort: boolean;
  /** RECONNECT_DELAY — delay a client is told to wait (close 4009 reason) before reconnecting after its node drained or died, seconds. Default 1. */
  readonly reconnectDelayMs: number;
  /** UPSTREAM_CONNECT_TIMEOUT — how long the relay waits for a node's WebSocket to open before closing the client 1011, seconds. Default 5. */
  readonly upstreamConnectTimeoutMs: number;
  /**
   * RESUME — session resume (CONTRACT "Session resume"): when a room's node is lost (died, failed
   * its health checks, or closed its players at a drain deadline) the gateway keeps the players'
   * sockets, places the room again and dials the new node with `X-Resume`. Default true.
   */
  readonly resume: boolean;
  /** RESUME_TIMEOUT — how long a room may take to come back on a new node before its players get 4009, seconds. Default 10. */
  readonly resumeTimeoutMs: number;
  /**
   * RESUME_BUFFER_BYTES — client bytes held per connection while its room resumes; past it the
   * client socket is paused (TCP pushes back), and past twice it the player gets 4009 (never a
   * silent drop). Default 1 MiB; at least MAX_FRAME_BYTES.
   */
  readonly resumeBufferBytes: number;
  /** SNAPSHOT_MAX_BYTES — largest room snapshot a node may store (`PUT /v1/node/rooms/:code/snapshot`, 413 above). Default 1 MiB. */
  readonly snapshotMaxBytes: number;
  /** SNAPSHOT_TTL — a room snapshot is kept this long after its last write (and deleted when the room closes), seconds. Default 3600. */
  readonly snapshotTtlMs: number;
  /**
   * FLEETGATE_URL — the gateway URL nodes are given (env FLEETGATE_URL) for the node API (snapshots).
   * Default `http://127.0.0.1:<PORT>` (the gateway's port on this machine; nodes run with host networking).
   */
  readonly fleetgateUrl: string;

  /** SESSION_SIZE — players in a full matched room. Default 8. */
  readonly sessionSize: number;
  /** MIN_PARTIAL_SESSION_SIZE — smallest room matched after FLUSH_WAIT. Default 2. */
  readonly minPartialSessionSize: number;
  /** FLUSH_WAIT — seconds before a partial room is formed. Default 10. */
  readonly flushWaitMs: number;
  /** REGION — this deployment's default region. Default `local`. */
  readonly region: string;
  /**
   * REGION_FALLBACK_WAIT — seconds a room, session or ticket waits for its player's best region
   * before it may go to the next-best one (within MAX_REGION_RTT). Default 5.
   */
  readonly regionFallbackWaitMs: number;
  /** MAX_REGION_RTT — milliseconds: a player is never placed in a fallback region with a measured round trip above it. Default 150. */
  readonly maxRegionRttMs: number;
  /** GATEWAY_REGION — the region this gateway replica serves (its ping URL in GET /v1/regions). Default: REGION. */
  readonly gatewayRegion: string;
  /**
   * GATEWAY_WORKERS — gateway processes `npm start` runs on the shared port (SO_REUSEPORT, one per
   * core so the relay uses every core). Default: the number of cores.
   */
  readonly gatewayWorkers: number;
  /** TICKET_TTL — seconds before an unmatched ticket expires. Default 60. */
  readonly ticketTtlMs: number;
  /** MATCHMAKER_INTERVAL — matchmaker tick, seconds. Default 0.1. */
  readonly matchmakerIntervalMs: number;
  /** SEAT_TOKEN_TTL — seat-token lifetime, seconds. Default 60. */
  readonly seatTokenTtlMs: number;
  /** ROOM_MAX_PLAYERS — default maxPlayers of a room. Default 8. */
  readonly roomMaxPlayers: number;
  /** ROOM_RETENTION — a completed room's record is kept this long (its code answers 4004, not ad hoc), seconds. Default 3600. */
  readonly roomRetentionMs: number;
  /**
   * ROOM_SEAT_GRACE — a seated player with no open WebSocket to a `waiting`, `starting` or
   * `ending` room (never connected since taking the seat, or last socket closed) loses the seat
   * after this long, as if they had left (issue 6: no ghost seats). Seats in an `active` match
   * are kept until it ends. Seconds. Default 60.
   */
  readonly roomSeatGraceMs: number;

  /** LOG_LEVEL — debug | info | warn | error. Default info. */
  readonly logLevel: "debug" | "info" | "warn" | "error";
  /**
   * LOG_FORMAT — json | pretty | auto. `json`: one pino JSON object a line (component and ids as
   * fields), what log shippers read; `pretty`: pino-pretty's human lines. Default auto: JSON
   * when stdout is not a terminal, pretty when it is.
   */
  readonly logFormat: "json" | "pretty" | "auto";
  /**
   * DASHBOARD_HISTORY_INTERVAL — how often each gateway appends a sample of its joins/s, join p99
   * and frames/s, and one gateway per interval a fleet sample (players, capacity, nodes by state
   * and version, rooms, queue, scaling events), to the dashboard's history rings in Redis.
   * Seconds. Default 5.
   */
  readonly dashboardHistoryIntervalMs: number;
  /**
   * DASHBOARD_HISTORY_POINTS — samples kept per source in the history ring (older ones are
   * trimmed), so a freshly opened dashboard shows the last POINTS × INTERVAL. Default 360
   * (30 minutes at 5 s).
   */
  readonly dashboardHistoryPoints: number;
  /** DATA_DIR — local state for single-machine runs. Default `.data`. */
  readonly dataDir: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  - ${problems.join("\n  - ")}`);
    this.name = "ConfigError";
  }
}

type Env = Readonly<Record<string, string | undefined>>;

/** Collects problems instead of throwing at the first one. */
class Reader {
  readonly problems: string[] = [];
  constructor(private readonly env: Env) {}

  private raw(name: string): string | undefined {
    const v = this.env[name];
    return v === undefined || v.trim() === "" ? undefined : v.trim();
  }

  str(name: string, def: string): string {
    return this.raw(name) ?? def;
  }

  optStr(name: string): string | undefined {
    return this.raw(name);
  }

  int(name: string, def: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.raw(name);
    if (v === undefined) return def;
    if (!/^-?\d+$/.test(v)) {
      this.problems.push(`${name}=${JSON.stringify(v)} is not a whole number`);
      return def;
    }
    const n = Number(v);
    if (n < min || n > max) {
      this.problems.push(`${name}=${v} is out of range (${min}..${max === Number.MAX_SAFE_INTEGER ? "∞" : max})`);
      return def;
    }
    return n;
  }

  num(name: string, def: number, min: number, max = Number.MAX_VALUE): number {
    const v = this.raw(name);
    if (v === undefined) return def;
    const n = Number(v);
    if (!Number.isFinite(n) || !/^-?[\d.]+(e-?\d+)?$/i.test(v)) {
      this.problems.push(`${name}=${JSON.stringify(v)} is not a number`);
      return def;
    }
    if (n < min || n > max) {
      this.problems.push(`${name}=${v} is out of range (${min}..${max === Number.MAX_VALUE ? "∞" : max})`);
      return def;
    }
    return n;
  }

  /** Seconds in the environment, milliseconds out. */
  seconds(name: string, defSeconds: number, minSeconds = 0.001): number {
    return Math.round(this.num(name, defSeconds, minSeconds) * 1000);
  }

  bool(name: string, def: boolean): boolean {
    const v = this.raw(name)?.toLowerCase();
    if (v === undefined) return def;
    if (["1", "true", "yes", "on"].includes(v)) return true;
    if (["0", "false", "no", "off"].includes(v)) return false;
    this.problems.push(`${name}=${JSON.stringify(v)} is not a boolean (true/false)`);
    return def;
  }

  oneOf<T extends string>(name: string, def: T, allowed: readonly T[]): T {
    const v = this.raw(name);
    if (v === undefined) return def;
    if ((allowed as readonly string[]).includes(v)) return v as T;
    this.problems.push(`${name}=${JSON.stringify(v)} must be one of ${allowed.join(", ")}`);
    return def;
  }

  port(name: string, def: number): number {
    return this.int(name, def, 0, 65535);
  }
}

/** Region names: short, key- and URL-safe. */
export const REGION_NAME_RE = /^[A-Za-z0-9_.-]{1,32}$/;

/**
 * DOCKER_HOSTS entries: `url` or `region=url`, comma-separated; an entry without a region is in
 * `defaultRegion`. The same engine may be listed under two regions (tests do, on one machine).
 */
export function parseDockerHosts(raw: string, defaultRegion: string): { hosts: { url: string; region: string }[]; problems: string[] } {
  const hosts: { url: string; region: string }[] = [];
  const problems: string[] = [];
  for (const entry of raw.split(",").map((s) => s.trim()).filter(Boolean)) {
    const m = /^([^=:/]+)=(.*)$/.exec(entry);
    const region = m ? m[1]!.trim() : defaultRegion;
    const url = m ? m[2]!.trim() : entry;
    if (m && !REGION_NAME_RE.test(region)) problems.push(`DOCKER_HOSTS entry ${JSON.stringify(entry)}: region must be 1-32 of [A-Za-z0-9_.-]`);
    if (!/^(unix|tcp|http|https):\/\//.test(url)) problems.push(`DOCKER_HOSTS entry ${JSON.stringify(entry)} must be unix://, tcp://, http:// or https:// (optionally region=…)`);
    else if (hosts.some((h) => h.url === url && h.region === region)) problems.push(`DOCKER_HOSTS entry ${JSON.stringify(entry)} is listed twice`);
    hosts.push({ url, region });
  }
  return { hosts, problems };
}

export function loadConfig(env: Env): Config {
  const r = new Reader(env);
  const heartbeatIntervalMs = r.seconds("HEARTBEAT_INTERVAL", 5);
  const redisPrefix = r.str("REDIS_PREFIX", "fleetgate");
  if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(redisPrefix)) r.problems.push(`REDIS_PREFIX=${JSON.stringify(redisPrefix)} must be 1-64 of [A-Za-z0-9_.:-]`);
  const redisUrl = r.str("REDIS_URL", "redis://127.0.0.1:6379");
  if (!/^rediss?:\/\//.test(redisUrl)) r.problems.push(`REDIS_URL=${JSON.stringify(redisUrl)} must start with redis:// or rediss://`);

  const redisSentinels: { host: string; port: number }[] = [];
  const redisSentinelsRaw = r.str("REDIS_SENTINELS", "");
  for (const entry of redisSentinelsRaw.split(",").map((x) => x.trim()).filter(Boolean)) {
    const m = /^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})$/.exec(entry);
    const port = m ? Number(m[2]) : 0;
    if (!m || port < 1 || port > 65535) r.problems.push(`REDIS_SENTINELS entry ${JSON.stringify(entry)} must be host:port`);
    else redisSentinels.push({ host: m[1]!.replace(/^\[|\]$/g, ""), port });
  }
  const redisSentinelName = r.str("REDIS_SENTINEL_NAME", "mymaster");
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(redisSentinelName)) r.problems.push(`REDIS_SENTINEL_NAME=${JSON.stringify(redisSentinelName)} must be 1-64 of [A-Za-z0-9_.-]`);

  const region = r.str("REGION", "local");
  if (!REGION_NAME_RE.test(region)) r.problems.push(`REGION=${JSON.stringify(region)} must be 1-32 of [A-Za-z0-9_.-]`);
  const dockerEntries = parseDockerHosts(r.str("DOCKER_HOSTS", "unix:///var/run/docker.sock"), region);
  r.problems.push(...dockerEntries.problems);
  const dockerHosts = dockerEntries.hosts.map((h) => h.url);
  const gatewayRegion = r.str("GATEWAY_REGION", region);
  if (!REGION_NAME_RE.test(gatewayRegion)) r.problems.push(`GATEWAY_REGION=${JSON.stringify(gatewayRegion)} must be 1-32 of [A-Za-z0-9_.-]`);
  const nodeCommandRaw = r.optStr("NODE_COMMAND");

  const cfg: Config = {
    redisUrl,
    redisPrefix,
    redisSentinels,
    redisSentinelName,
    jwtSecret: r.optStr("JWT_SECRET"),
    jwtAlg: r.oneOf("JWT_ALG", "HS256", ["HS256", "RS256", "ES256"] as const),
    jwtPublicKey: r.optStr("JWT_PUBLIC_KEY"),
    jwtPrivateKey: r.optStr("JWT_PRIVATE_KEY"),
    jwtTtlMs: r.seconds("JWT_TTL", 900, 1),
    refreshTtlMs: r.seconds("REFRESH_TTL", 30 * 24 * 3600, 1),
    authGuest: r.bool("AUTH_GUEST", true),

    host: r.str("HOST", "127.0.0.1"),
    port: r.port("PORT", 3000),
    publicUrl: r.optStr("PUBLIC_URL"),
    gatewayId: r.optStr("GATEWAY_ID"),
    gatewayHeartbeatMs: r.seconds("GATEWAY_HEARTBEAT", 2),

    haproxyPort: r.port("HAPROXY_PORT", 8080),
    haproxyBind: r.str("HAPROXY_BIND", "0.0.0.0"),
    haproxyStatsPort: r.port("HAPROXY_STATS_PORT", 8404),
    haproxyStatsUser: r.str("HAPROXY_STATS_USER", "admin"),
    haproxyStatsPassword: r.optStr("HAPROXY_STATS_PASSWORD"),
    haproxyConfig: r.str("HAPROXY_CONFIG", ".data/haproxy/haproxy.cfg"),
    haproxyBin: r.str("HAPROXY_BIN", "haproxy"),
    haproxyTlsCert: r.optStr("HAPROXY_TLS_CERT"),
    haproxyTlsPort: r.port("HAPROXY_TLS_PORT", 8443),
    haproxyConnRate: r.int("HAPROXY_CONN_RATE", 200, 1),
    templaterDebounceMs: r.seconds("TEMPLATER_DEBOUNCE", 0.25, 0),
    templaterResyncMs: r.seconds("TEMPLATER_RESYNC", 10),
    haproxyMode: r.oneOf("HAPROXY_MODE", "daemon", ["daemon", "child"] as const),
    haproxyReloadTimeoutMs: r.seconds("HAPROXY_RELOAD_TIMEOUT", 10),
    templaterMetricsPort: r.port("TEMPLATER_METRICS_PORT", 9465),
    adminEventsIntervalMs: r.seconds("ADMIN_EVENTS_INTERVAL", 1),
    demo: r.bool("DEMO", env.NODE_ENV !== "production"),

    nodeDriver: r.oneOf("NODE_DRIVER", "auto", ["docker", "process", "auto"] as const),
    nodeRoomMode: r.oneOf("NODE_ROOM_MODE", "relay", ["relay", "echo"] as const),
    nodeImage: r.str("NODE_IMAGE", "fleetgate-node:latest"),
    nodeCommand: nodeCommandRaw ? nodeCommandRaw.split(/\s+/) : undefined,
    dockerHosts,
    dockerHostRegions: dockerEntries.hosts.map((h) => h.region),
    dockerNetwork: r.oneOf("DOCKER_NETWORK", "host", ["host", "bridge"] as const),
    nodeBindAddress: r.str("NODE_BIND_ADDRESS", "127.0.0.1"),
    nodeMemoryMb: r.int("NODE_MEMORY_MB", 256, 16),
    nodeCpus: r.num("NODE_CPUS", 1, 0.01),
    nodeMaxRooms: r.int("NODE_MAX_ROOMS", 100, 1),
    nodeMaxPlayers: r.int("NODE_MAX_PLAYERS", 0, 0, 100_000),
    nodeDrainMs: r.seconds("NODE_DRAIN_SECONDS", 5, 0),
    nodeStartTimeoutMs: r.seconds("NODE_START_TIMEOUT", 15),

    maxPlayersPerServer: r.int("MAX_PLAYERS_PER_SERVER", 1, 1),
    maxServers: r.int("MAX_SERVERS", 50, 1),
    minReadyServers: r.int("MIN_READY_SERVERS", 0, 0),
    serverPortStart: r.port("SERVER_PORT_START", 8081),
    serverPortEnd: r.port("SERVER_PORT_END", 0),

    heartbeatIntervalMs,
    inactivityShutdownMs: r.seconds("INACTIVITY_SHUTDOWN", 10),
    cleanupDeleteMs: r.seconds("CLEANUP_DELETE", 30, 0),
    sessionTtlMs: r.seconds("SESSION_TTL", (heartbeatIntervalMs * 3) / 1000),

    drainDeadlineMs: r.seconds("DRAIN_DEADLINE", 1200, 0),
    rolloutFailureLimit: r.int("ROLLOUT_FAILURE_LIMIT", 3, 1, 1000),
    healthCheckIntervalMs: r.seconds("HEALTH_CHECK_INTERVAL", 2),
    healthCheckFailures: r.int("HEALTH_CHECK_FAILURES", 3, 1),
    healthCheckTimeoutMs: r.seconds("HEALTH_CHECK_TIMEOUT", 1),
    autoscaleIntervalMs: r.seconds("AUTOSCALE_INTERVAL", 1),
    scaleDownCooldownMs: r.seconds("SCALE_DOWN_COOLDOWN", 30, 0),
    scaleUpUtilization: r.num("SCALE_UP_UTILIZATION", 0.8, 0.01, 1),
    joinWaitTimeoutMs: r.seconds("JOIN_WAIT_TIMEOUT", 15),
    schedulerConcurrency: r.int("SCHEDULER_CONCURRENCY", 8, 1, 1000),
    schedulerMetricsPort: r.port("SCHEDULER_METRICS_PORT", 9464),
    schedulerLockDurationMs: r.seconds("SCHEDULER_LOCK_DURATION", 30, 1),
    stopNodesOnExit: r.bool("STOP_NODES_ON_EXIT", false),
    shutdownTimeoutMs: r.seconds("SHUTDOWN_TIMEOUT", 10),
    redisCommandTimeoutMs: r.seconds("REDIS_COMMAND_TIMEOUT", 2),

    maxFrameBytes: r.int("MAX_FRAME_BYTES", 1024 * 1024, 16),
    wsBufferBytes: r.int("WS_BUFFER_BYTES", 4 * 1024 * 1024, 1024),
    wsRateLimit: r.int("WS_RATE_LIMIT", 200, 1),
    wsRateBurst: r.int("WS_RATE_BURST", 0, 0),
    wsRateGraceMs: r.seconds("WS_RATE_GRACE", 5),
    httpRateLimit: r.int("HTTP_RATE_LIMIT", 100, 1),
    wsIpRateLimit: r.int("WS_IP_RATE_LIMIT", 50, 1),
    trustProxy: r.bool("TRUST_PROXY", true),
    gatewayReusePort: r.bool("GATEWAY_REUSE_PORT", false),
    reconnectDelayMs: r.seconds("RECONNECT_DELAY", 1, 0),
    upstreamConnectTimeoutMs: r.seconds("UPSTREAM_CONNECT_TIMEOUT", 5),
    resume: r.bool("RESUME", true),
    resumeTimeoutMs: r.seconds("RESUME_TIMEOUT", 10),
    resumeBufferBytes: r.int("RESUME_BUFFER_BYTES", 1024 * 1024, 1024),
    snapshotMaxBytes: r.int("SNAPSHOT_MAX_BYTES", 1024 * 1024, 1, 512 * 1024 * 1024),
    snapshotTtlMs: r.seconds("SNAPSHOT_TTL", 3600, 1),
    fleetgateUrl: r.str("FLEETGATE_URL", ""),

    sessionSize: r.int("SESSION_SIZE", 8, 1, 1000),
    minPartialSessionSize: r.int("MIN_PARTIAL_SESSION_SIZE", 2, 1, 1000),
    flushWaitMs: r.seconds("FLUSH_WAIT", 10, 0),
    region,
    regionFallbackWaitMs: r.seconds("REGION_FALLBACK_WAIT", 5, 0),
    maxRegionRttMs: r.num("MAX_REGION_RTT", 150, 0),
    gatewayRegion,
    gatewayWorkers: r.int("GATEWAY_WORKERS", availableParallelism(), 1, 256),
    ticketTtlMs: r.seconds("TICKET_TTL", 60),
    matchmakerIntervalMs: r.seconds("MATCHMAKER_INTERVAL", 0.1),
    seatTokenTtlMs: r.seconds("SEAT_TOKEN_TTL", 60),
    roomMaxPlayers: r.int("ROOM_MAX_PLAYERS", 8, 1, 1000),
    roomRetentionMs: r.seconds("ROOM_RETENTION", 3600),
    roomSeatGraceMs: r.seconds("ROOM_SEAT_GRACE", 60),

    logLevel: r.oneOf("LOG_LEVEL", "info", ["debug", "info", "warn", "error"] as const),
    logFormat: r.oneOf("LOG_FORMAT", "auto", ["json", "pretty", "auto"] as const),
    dashboardHistoryIntervalMs: r.seconds("DASHBOARD_HISTORY_INTERVAL", 5),
    dashboardHistoryPoints: r.int("DASHBOARD_HISTORY_POINTS", 360, 10, 100000),
    dataDir: r.str("DATA_DIR", ".data"),
  };

  // Cross-field checks.
  const portEnd = cfg.serverPortEnd === 0 ? Math.min(65535, cfg.serverPortStart + 999) : cfg.serverPortEnd;
  if (portEnd < cfg.serverPortStart) r.problems.push(`SERVER_PORT_END=${portEnd} is below SERVER_PORT_START=${cfg.serverPortStart}`);
  if (cfg.minPartialSessionSize > cfg.sessionSize)
    r.problems.push(`MIN_PARTIAL_SESSION_SIZE=${cfg.minPartialSessionSize} is above SESSION_SIZE=${cfg.sessionSize}`);
  if (cfg.minReadyServers > cfg.maxServers) r.problems.push(`MIN_READY_SERVERS=${cfg.minReadyServers} is above MAX_SERVERS=${cfg.maxServers}`);
  if (cfg.jwtAlg !== "HS256" && (!cfg.jwtPublicKey || !cfg.jwtPrivateKey))
    r.problems.push(`JWT_ALG=${cfg.jwtAlg} needs JWT_PUBLIC_KEY and JWT_PRIVATE_KEY (PEM)`);
  if (cfg.jwtSecret !== undefined && cfg.jwtSecret.length < 16) r.problems.push("JWT_SECRET must be at least 16 characters");
  if (cfg.sessionTtlMs < cfg.heartbeatIntervalMs) r.problems.push("SESSION_TTL must not be shorter than HEARTBEAT_INTERVAL");

  const nodeMaxPlayers = cfg.nodeMaxPlayers === 0 ? Math.max(cfg.maxPlayersPerServer, cfg.roomMaxPlayers, cfg.sessionSize) : cfg.nodeMaxPlayers;
  if (nodeMaxPlayers < cfg.maxPlayersPerServer) r.problems.push(`NODE_MAX_PLAYERS=${nodeMaxPlayers} is below MAX_PLAYERS_PER_SERVER=${cfg.maxPlayersPerServer}`);
  if (nodeMaxPlayers < cfg.sessionSize) r.problems.push(`NODE_MAX_PLAYERS=${nodeMaxPlayers} is below SESSION_SIZE=${cfg.sessionSize}: a matched room would not fit on a node`);
  if (cfg.wsBufferBytes < cfg.maxFrameBytes + WS_MAX_FRAME_HEADER)
    r.problems.push(
      `WS_BUFFER_BYTES=${cfg.wsBufferBytes} cannot hold one frame of MAX_FRAME_BYTES=${cfg.maxFrameBytes} with its ${WS_MAX_FRAME_HEADER}-byte header: raise WS_BUFFER_BYTES to at least ${cfg.maxFrameBytes + WS_MAX_FRAME_HEADER} or lower MAX_FRAME_BYTES`,
    );
  if (cfg.wsRateBurst !== 0 && cfg.wsRateBurst < 1) r.problems.push(`WS_RATE_BURST=${cfg.wsRateBurst} must be at least 1 (0: twice WS_RATE_LIMIT)`);
  if (cfg.resume && cfg.resumeBufferBytes < cfg.maxFrameBytes) r.problems.push(`RESUME_BUFFER_BYTES=${cfg.resumeBufferBytes} cannot hold one frame of MAX_FRAME_BYTES=${cfg.maxFrameBytes}`);
  const fleetgateUrl = cfg.fleetgateUrl || `http://${cfg.host === "0.0.0.0" || cfg.host === "::" ? "127.0.0.1" : cfg.host}:${cfg.port}`;
  if (!/^https?:\/\/[^\s/]+/.test(fleetgateUrl)) r.problems.push(`FLEETGATE_URL=${JSON.stringify(fleetgateUrl)} must be an http:// or https:// URL`);
  if (r.problems.length > 0) throw new ConfigError(r.problems);
  return Object.freeze({ ...cfg, serverPortEnd: portEnd, nodeMaxPlayers, fleetgateUrl: fleetgateUrl.replace(/\/+$/, "") });
}

/** Largest WebSocket frame header: 2 bytes, a 64-bit length and a 4-byte mask (RFC 6455 §5.2). */
export const WS_MAX_FRAME_HEADER = 14;

/** The token bucket's size: WS_RATE_BURST, or twice WS_RATE_LIMIT when it is 0. */
export function wsRateBurstOf(c: Pick<Config, "wsRateLimit" | "wsRateBurst">): number {
  return c.wsRateBurst > 0 ? c.wsRateBurst : 2 * c.wsRateLimit;
}

/** A config for tests: defaults, then overrides (already in final units). */
export function testConfig(overrides: Partial<Config> = {}, env: Env = {}): Config {
  return Object.freeze({ ...loadConfig(env), ...overrides });
}

/**
 * For `main.ts` files and scripts: the config, or — on a bad environment — every problem printed
 * in one message and exit 1.
 */
export function loadConfigOrExit(env: Env, print: (message: string) => void = (m) => console.error(m)): Config {
  try {
    return loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      print(err.message);
      process.exit(1);
    }
    throw err;
  }
}
