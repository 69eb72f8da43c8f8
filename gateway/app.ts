/**
 * The gateway as one Elysia app: `createApp(deps)` wires every feature to the dependencies it is
 * given and does no I/O until the app is started (`listen` runs the `onStart` hook: relay tick,
 * room-event subscription, session sweeper) — so tests drive it in-process with `app.handle()` or
 * `listen(0)`.
 */
import { Elysia } from "elysia";
import { openapi } from "@elysiajs/openapi";
import type { TimerHandle } from "../core/clock.ts";
import { isRedisUnavailable } from "../core/redis-outage.ts";
import { badRequest, rateLimited, tooLarge } from "../core/errors.ts";
import { adminRoutes } from "./admin/routes.ts";
import { renderError } from "./http/errors.ts";
import { fleetAdminRoutes } from "./admin/fleet-routes.ts";
import { authRoutes } from "./auth/routes.ts";
import { demoRoutes } from "./demo/routes.ts";
import type { GatewayDeps } from "./deps.ts";
import { matchmakingRoutes } from "./matchmaking/routes.ts";
import { clientAddress, FixedWindowLimiter } from "./ops/rate-limit.ts";
import { opsRoutes } from "./ops/routes.ts";
import { RegionRanker, regionsRoutes } from "./ops/regions.ts";
import { RedisPlacement } from "../model/placement/redis-placement.ts";
import { JoinService } from "./players/join.ts";
import { NodeChangeWaiter } from "./players/node-events.ts";
import { playersRoutes } from "./players/routes.ts";
import { SessionStore } from "../model/sessions/session-store.ts";
import { roomsRoutes } from "./rooms/routes.ts";
import { connectRoute } from "./ws/connect-route.ts";
import { RelayHub } from "./ws/hub.ts";
import { RedisRoomResume } from "../model/room-resume.ts";
import { nodeApiRoutes } from "./node-api/routes.ts";

/** Paths never rate limited: probes and scrapes must work when a client floods the API. */
const UNLIMITED = new Set(["/health", "/ready", "/metrics"]);

/** Largest HTTP request body accepted (JSON API; the WebSocket has its own MAX_FRAME_BYTES). */
const MAX_BODY_BYTES = 1024 * 1024;

/** The background work of one gateway process, started and stopped with the app. */
export class GatewayRuntime {
  readonly hub: RelayHub;
  readonly sessions: SessionStore;
  readonly waiter: NodeChangeWaiter;
  readonly join: JoinService;
  /** Ranks a request's regions (joins, rooms, tickets). */
  readonly regions: RegionRanker;
  private sweepTimer: TimerHandle | undefined;
  private starting: Promise<void> | undefined;

  constructor(private readonly deps: GatewayDeps) {
    this.sessions = new SessionStore(deps.redis, deps.keys, deps.config.sessionTtlMs);
    this.waiter = new NodeChangeWaiter(deps.nodes, deps.clock);
    this.regions = new RegionRanker(deps);
    const placement = deps.placement instanceof RedisPlacement ? deps.placement : new RedisPlacement(deps.redis, deps.keys, deps.nodes);
    // Session resume needs the Redis placement (its compare-and-delete release); with a test's fake placement it is off.
    const resume =
      deps.placement instanceof RedisPlacement
        ? { placement, rooms: new RedisRoomResume(deps.redis, deps.keys, deps.nodes, placement), scheduler: deps.scheduler, waitForNodes: (ms: number) => this.waiter.next(ms) }
        : undefined;
    this.hub = new RelayHub({ ...deps, resume });
    this.join = new JoinService({ ...deps, placement, sessions: this.sessions, waiter: this.waiter });
  }

  /** Starts the background work; idempotent (every caller awaits the same start). */
  start(): Promise<void> {
    this.starting ??= this.doStart();
    return this.starting;
  }

  private async doStart(): Promise<void> {
    await this.hub.start();
    // Sessions expire between heartbeats; sweeping once per interval releases a dead seat within
    // SESSION_TTL + HEARTBEAT_INTERVAL. Every replica sweeps; each session is released once.
    this.sweepTimer ??= this.deps.clock.setInterval(() => {
      // Not once per tick through a Redis outage: that is logged once (core/redis-outage.ts).
      this.sessions.sweepExpired(this.deps.clock.now()).catch((err: unknown) => !isRedisUnavailable(err) && this.deps.log.warn("session sweep failed", { err }));
    }, this.deps.config.heartbeatIntervalMs);
  }

  async stop(): Promise<void> {
    this.starting = undefined;
    this.sweepTimer?.cancel();
    this.sweepTimer = undefined;
    await this.hub.stop();
    await this.waiter.close();
  }
}

export function createApp(deps: GatewayDeps) {
  const runtime = new GatewayRuntime(deps);
  const httpLimiter = new FixedWindowLimiter(deps.config.httpRateLimit, deps.clock);
  const c = deps.config;

  return new Elysia({
    name: "gateway",
    // Bun's own limit (a plain-text 413) only catches bodies without a Content-Length; the
    // onRequest check answers the usual case in the contract's JSON shape.
    serve: { maxRequestBodySize: Math.max(MAX_BODY_BYTES * 4, c.snapshotMaxBytes + 1024), development: false, reusePort: c.gatewayReusePort },
    websocket: {
      // Bun closes a client frame above this with 1009 before any of our code runs.
      maxPayloadLength: c.maxFrameBytes,
      perMessageDeflate: false,
      // The relay bounds its own queue at WS_BUFFER_BYTES and closes 4029 past it; Bun's limit
      // sits above that so `send` never silently drops (0) before the relay has decided.
      backpressureLimit: c.wsBufferBytes * 2 + c.maxFrameBytes,
      closeOnBackpressureLimit: false,
      idleTimeout: 120,
    },
  })
    .decorate("gateway", runtime)
    .onError({ as: "global" }, ({ code, error }) => renderError(code, error, deps.log))
    .onRequest(({ request, server }) => {
      const length = Number(request.headers.get("content-length") ?? 0);
      // Node API bodies (snapshots) have their own bound, SNAPSHOT_MAX_BYTES (gateway/node-api/).
      if (length > MAX_BODY_BYTES && !request.url.includes("/v1/node/")) throw tooLarge("PAYLOAD_TOO_LARGE", `request body above ${MAX_BODY_BYTES} bytes`);
      // A request without a Host header (HTTP/1.0) reaches Bun with a bare path that `new URL`
      // refuses; every later hook parses the URL, so refuse it here, clearly, instead of a 500.
      if (!URL.canParse(request.url)) throw badRequest("HOST_REQUIRED", "a Host header is required");
      const path = new URL(request.url).pathname;
      // Nodes authenticate with their token and save snapshots often: not limited per address.
      if (UNLIMITED.has(path) || path === "/v1/connect" || path.startsWith("/v1/node/")) return;
      const ip = clientAddress(request, server?.requestIP(request)?.address, c.trustProxy);
      if (!httpLimiter.hit(ip)) throw rateLimited("too many requests from this address (HTTP_RATE_LIMIT)");
    })
    .onStart(async () => {
      await runtime.start();
    })
    .onStop(async () => {
      await runtime.stop();
    })
    // The OpenAPI document, generated from every route's schemas and `detail` (no hand-written copy);
    // /docs (ops routes) renders it without a CDN, so the plugin's own UI is off.
    .use(
      openapi({
        provider: null,
        specPath: "/openapi.json",
        exclude: { paths: ["/docs", "/openapi.json"] },
        documentation: {
          info: { title: "fleetgate", version: "1", description: "Fleet gateway and scheduler for session-based multiplayer games: auth, sessions, rooms, matchmaking, the WebSocket relay, operations." },
          components: { securitySchemes: { bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT" } } },
          security: [{ bearer: [] }],
        },
      }),
    )
    .use(opsRoutes(deps, { beforeMetrics: () => runtime.hub.flushMetrics() }))
    .use(regionsRoutes(deps))
    .use(authRoutes(deps))
    .use(playersRoutes(deps, runtime))
    .use(connectRoute(deps, runtime.hub, runtime.sessions, runtime.waiter))
    .use(roomsRoutes(deps, runtime.regions))
    .use(matchmakingRoutes(deps, runtime.regions))
    .use(adminRoutes(deps))
    .use(fleetAdminRoutes(deps))
    .use(demoRoutes(deps))
    .use(nodeApiRoutes(deps));
}

export type GatewayApp = ReturnType<typeof createApp>;
