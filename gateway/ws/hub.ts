/**
 * The RelayHub owns every relayed connection of this gateway process: it indexes them by room
 * (kicks and room closes arrive on the room-events channel), runs the one-second tick that turns
 * per-frame activity marks into one `touchActivity` per node and resets per-connection rate
 * windows, and flushes the relay's plain counters into Prometheus metrics.
 */
import type { Clock, TimerHandle } from "../../core/clock.ts";
import { wsRateBurstOf, WS_MAX_FRAME_HEADER, type Config } from "../../core/config.ts";
import { CloseCode } from "../../core/errors.ts";
import type { Keys } from "../../core/keys.ts";
import type { Logger } from "../../core/log.ts";
import type { Counter, Gauge, MetricsRegistry } from "../../core/metrics.ts";
import type { NodeRegistry } from "../../model/node-registry.ts";
import type { Redis } from "../../core/redis.ts";
import { isRedisUnavailable } from "../../core/redis-outage.ts";
import { reportUpstreamLoss } from "../../model/node-loss.ts";
import type { RoomEvent } from "../../core/types.ts";
import type { RoomPresence } from "../contracts.ts";
import { frameRateLimits, type FrameRateLimits } from "./frame-rate.ts";
import { closeRelay, upstreamEvents, type RelayOwner, type RelayState, type RelayStats } from "./relay.ts";
import { ResumeCoordinator, resumeHeaders, type ResumeDeps } from "./resume.ts";
import { UpstreamSocket, type UpstreamDial } from "./upstream-socket.ts";

/** Activity marks become at most one registry write per node per tick. */
const TICK_MS = 1000;
/** A gateway reports one node lost at most this often (its players' upstreams fail together). */
const LOSS_REPORT_EVERY_MS = 1000;

export interface RelayHubDeps {
  config: Config;
  keys: Keys;
  clock: Clock;
  log: Logger;
  metrics: MetricsRegistry;
  nodes: NodeRegistry;
  newRedis: () => Redis;
  /** Seated players' presence (the seat reaper); reported on socket open and close only. */
  presence?: RoomPresence | undefined;
  /** Session resume (gateway/ws/resume.ts); absent: a lost node closes its players 4009. */
  resume?: Omit<ResumeDeps, "config" | "clock" | "log" | "nodes"> | undefined;
}

export class RelayHub implements RelayOwner {
  readonly maxFrameBytes: number;
  readonly bufferBytes: number;
  readonly pauseBytes: number;
  readonly rateLimits: FrameRateLimits;
  readonly upstreamConnectTimeoutMs: number;
  readonly stats: RelayStats = { framesUp: 0, bytesUp: 0, framesDown: 0, bytesDown: 0 };
  private readonly flushed: RelayStats = { framesUp: 0, bytesUp: 0, framesDown: 0, bytesDown: 0 };
  private readonly byRoom = new Map<string, Set<RelayState>>();
  private readonly all = new Set<RelayState>();
  /** When this gateway last reported each node lost (one report per node per LOSS_REPORT_EVERY_MS). */
  private readonly lossReported = new Map<string, number>();
  private tickTimer: TimerHandle | undefined;
  private unsubscribe: (() => Promise<void>) | undefined;
  private readonly frames: Counter;
  private readonly bytes: Counter;
  private readonly connectionsGauge: Gauge;
  /** Upstream sockets opened (tests check that a rejected upgrade opened none). */
  upstreamOpens = 0;
  /** Session resume, when configured (RESUME, and the gateway gave the hub placement and the scheduler). */
  readonly resumer: ResumeCoordinator | undefined;

  constructor(private readonly deps: RelayHubDeps) {
    const c = deps.config;
    this.maxFrameBytes = c.maxFrameBytes;
    this.bufferBytes = c.wsBufferBytes;
    this.pauseBytes = Math.max(0, Math.min(Math.floor(c.wsBufferBytes / 2), c.wsBufferBytes - c.maxFrameBytes - WS_MAX_FRAME_HEADER));
    this.rateLimits = frameRateLimits(c.wsRateLimit, wsRateBurstOf(c), c.wsRateGraceMs);
    this.upstreamConnectTimeoutMs = c.upstreamConnectTimeoutMs;
    this.frames = deps.metrics.counter("fleetgate_relayed_frames_total", "WebSocket frames relayed, by direction (up: client to node)");
    this.bytes = deps.metrics.counter("fleetgate_relayed_bytes_total", "WebSocket payload bytes relayed, by direction");
    this.resumer =
      deps.resume && c.resume
        ? new ResumeCoordinator({ ...deps.resume, config: c, clock: deps.clock, log: deps.log.child("resume"), nodes: deps.nodes }, (d, node, n) => {
            d.upstream = this.openUpstream(d, { host: node.host, port: node.port, path: `/rooms/${d.roomCode}`, headers: resumeHeaders(d, node.token, n) });
          })
        : undefined;
    this.connectionsGauge = deps.metrics.gauge("fleetgate_gateway_connections", "Relayed WebSocket connections open on this gateway").collect(() => this.connectionsGauge.set(this.all.size));
  }

  now(): number {
    return this.deps.clock.now();
  }

  /** Connections open now. */
  get size(): number {
    return this.all.size;
  }

  /** The live connections' states (operators' debugging and tests; do not mutate). */
  connections(): RelayState[] {
    return [...this.all];
  }

  /**
   * An upstream to a node failed (relay.ts): the node leaves placement at once (model/node-loss.ts)
   * and the scheduler's health check confirms or restores it. Many players of one node fail
   * together: one report per node per LOSS_REPORT_EVERY_MS.
   */
  upstreamLost(d: RelayState, why: string): void {
    const nodeId = d.target?.nodeId;
    if (!nodeId) return;
    const now = this.deps.clock.now();
    const last = this.lossReported.get(nodeId);
    if (last !== undefined && now - last < LOSS_REPORT_EVERY_MS) return;
    if (this.lossReported.size > 1000) this.lossReported.clear();
    this.lossReported.set(nodeId, now);
    reportUpstreamLoss(this.deps.nodes, nodeId, now, why).then(
      (moved) => moved && this.deps.log.warn("node taken out of placement: its upstream connections failed", { nodeId, why }),
      (err: unknown) => this.deps.log.warn("could not report a lost node", { nodeId, error: err instanceof Error ? err.message : String(err) }),
    );
  }

  reconnectReason(why: string): string {
    const base = this.deps.config.reconnectDelayMs;
    // Jitter spreads the reconnects of a whole node's players over half a delay.
    const delay = base + Math.floor(Math.random() * (base / 2));
    // Same wording as the reference node's drain reason, so clients parse one format.
    return `${why}; reconnect after ${delay} ms`;
  }

  openUpstream(d: RelayState, dial: UpstreamDial): UpstreamSocket<RelayState> {
    this.upstreamOpens++;
    const up = new UpstreamSocket(upstreamEvents, d, this.maxFrameBytes, dial);
    up.connect();
    return up;
  }

  added(d: RelayState): void {
    this.all.add(d);
    if (d.tracked) this.reportPresence(d, "connected");
    let set = this.byRoom.get(d.roomCode);
    if (!set) this.byRoom.set(d.roomCode, (set = new Set()));
    set.add(d);
  }

  removed(d: RelayState): void {
    // Only a connection that was added reports its close, and only once (cleanup may run twice).
    if (this.all.delete(d) && d.tracked) this.reportPresence(d, "disconnected");
    const set = this.byRoom.get(d.roomCode);
    if (set) {
      set.delete(d);
      if (set.size === 0) this.byRoom.delete(d.roomCode);
    }
  }

  /**
   * One presence write per socket open or close, never per frame. Fire and forget: a failed write
   * is logged. A lost close keeps the seat (no absence recorded); a lost open leaves the absence,
   * so the player may be reaped after the grace and must re-join. Writes of one gateway go down
   * one connection in order, so a quick open-close-open arrives in order.
   */
  private reportPresence(d: RelayState, what: "connected" | "disconnected"): void {
    const p = this.deps.presence;
    if (!p) return;
    p[what](d.roomCode, d.playerId, this.deps.clock.now()).catch((err: unknown) => this.deps.log.warn("room presence not written", { room: d.roomCode, what, err }));
  }

  /** Closes a player's sockets in a room with 4003 (kicked). Returns how many. */
  kick(roomCode: string, playerId: string): number {
    let n = 0;
    for (const d of [...(this.byRoom.get(roomCode) ?? [])]) {
      if (d.playerId !== playerId) continue;
      closeRelay(d, CloseCode.NOT_SEATED, "kicked from the room");
      n++;
    }
    return n;
  }

  /** Closes every socket of a room (room closed) with 4004. */
  closeRoom(roomCode: string): number {
    const set = [...(this.byRoom.get(roomCode) ?? [])];
    for (const d of set) closeRelay(d, CloseCode.UNKNOWN_ROOM, "room closed");
    return set.length;
  }

  /** Closes every connection (shutdown): clients are told to reconnect, to another replica. */
  closeAll(): void {
    for (const d of [...this.all]) closeRelay(d, CloseCode.RECONNECT, this.reconnectReason("gateway shutting down"));
  }

  /** Acts on a room event from the channel. */
  onRoomEvent(e: RoomEvent): void {
    if (e.type === "kick" && e.playerId) this.kick(e.roomCode, e.playerId);
    else if (e.type === "close") this.closeRoom(e.roomCode);
    else if (e.type === "state" && e.state === "starting") void this.nextMatchOffRetiringNode(e.roomCode);
  }

  /**
   * Fleet versions (issue 11): a match starting in a lobby whose node is draining (a rollout retires
   * its version, an admin drain, a restart) is moved first — its players' connections resume on a
   * node that takes new rooms (the new version), between matches, never during one. The restart
   * vote itself moves nothing. Each gateway moves the connections it holds; the resume places the
   * room once for all of them.
   */
  private async nextMatchOffRetiringNode(roomCode: string): Promise<number> {
    const r = this.resumer;
    const conns = [...(this.byRoom.get(roomCode) ?? [])].filter((d) => d.target && !d.resume && !d.closed);
    const nodeId = conns[0]?.target?.nodeId;
    if (!r || !nodeId) return 0;
    const node = await this.deps.nodes.get(nodeId).catch(() => undefined);
    if (node?.state !== "draining") return 0;
    this.deps.log.info("next match moves off a draining node", { room: roomCode, nodeId, players: conns.length });
    for (const d of conns) if (d.target?.nodeId === nodeId) r.lose(d, "next match moves to a node that takes new rooms");
    return conns.length;
  }

  private starting: Promise<void> | undefined;

  /** Starts the tick and the room-event subscription. Idempotent: every caller awaits the same start. */
  start(): Promise<void> {
    this.starting ??= this.doStart();
    return this.starting;
  }

  private async doStart(): Promise<void> {
    this.tickTimer = this.deps.clock.setInterval(() => void this.tick(), TICK_MS);
    if (this.resumer) {
      // A node the registry gives up (failed health checks, stopped, deleted) moves its rooms even
      // when their upstream sockets still look open (a hung node).
      const off = await this.deps.nodes.subscribe((e) => {
        if (e.to === "unhealthy" || e.to === "stopping" || e.to === "stopped" || e.to === undefined) this.nodeGone(e.nodeId, `node ${e.to ?? "deleted"}`);
      });
      this.unsubscribeNodes = off;
    }
    const sub = this.deps.newRedis();
    const channel = this.deps.keys.roomEventsChannel;
    sub.on("message", (ch: string, msg: string) => {
      if (ch !== channel) return;
      try {
        const e = JSON.parse(msg) as RoomEvent;
        if (e && typeof e.roomCode === "string") this.onRoomEvent(e);
      } catch {
        this.deps.log.warn("malformed room event ignored");
      }
    });
    // Connection errors repeat on every reconnect attempt; the Redis outage itself is logged once (RedisOutageWatch).
    sub.on("error", (err: Error) => !isRedisUnavailable(err) && this.deps.log.warn("room-events subscriber error", { err }));
    await sub.subscribe(channel);
    this.unsubscribe = async () => {
      await sub.unsubscribe(channel).catch(() => {});
      sub.disconnect();
    };
  }

  private unsubscribeNodes: (() => Promise<void>) | undefined;
  /** Session resume in Prometheus (flushed with the relay's counters; made on the first flush). */
  private resumeMetrics: ReturnType<RelayHub["makeResumeMetrics"]> | undefined;

  private makeResumeMetrics() {
    const m = this.deps.metrics;
    return {
      connections: m.counter("fleetgate_resume_connections_total", "Player connections whose room's node was lost, by outcome (started, resumed on a new node, failed: 4009)", ["outcome"]),
      held: m.counter("fleetgate_resume_held_frames_total", "Client frames held while their room moved to another node (then delivered)"),
      pause: m.histogram("fleetgate_resume_pause_seconds", "Time from a node loss to the player's new upstream opening", [0.05, 0.1, 0.25, 0.5, 1, 1.5, 2.5, 5, 10]),
      flushed: { started: 0, resumed: 0, failed: 0, heldFrames: 0 },
    };
  }

  /** Resumes every connection of this gateway still on `nodeId` (see ResumeCoordinator.lose). */
  nodeGone(nodeId: string, why: string): number {
    const r = this.resumer;
    if (!r) return 0;
    let n = 0;
    for (const d of [...this.all]) {
      if (d.target?.nodeId !== nodeId || d.resume || d.closed) continue;
      r.lose(d, why);
      n++;
    }
    return n;
  }

  async stop(): Promise<void> {
    await this.starting?.catch(() => {});
    this.starting = undefined;
    await this.unsubscribeNodes?.().catch(() => {});
    this.unsubscribeNodes = undefined;
    this.tickTimer?.cancel();
    this.tickTimer = undefined;
    await this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.flushMetrics();
  }

  /** One tick: one activity write per active node; metrics flushed. */
  async tick(): Promise<void> {
    const active = new Set<string>();
    for (const d of this.all) {
      if (d.active) {
        d.active = false;
        if (d.target) active.add(d.target.nodeId);
      }
    }
    this.flushMetrics();
    const now = this.deps.clock.now();
    await Promise.all([...active].map((id) => this.deps.nodes.touchActivity(id, now).catch((err: unknown) => !isRedisUnavailable(err) && this.deps.log.warn("touchActivity failed", { nodeId: id, err }))));
  }

  /** Moves the relay's plain counters into the Prometheus counters (they are not touched per frame). */
  flushMetrics(): void {
    const s = this.stats;
    const f = this.flushed;
    if (s.framesUp !== f.framesUp) this.frames.inc({ direction: "up" }, s.framesUp - f.framesUp);
    if (s.framesDown !== f.framesDown) this.frames.inc({ direction: "down" }, s.framesDown - f.framesDown);
    if (s.bytesUp !== f.bytesUp) this.bytes.inc({ direction: "up" }, s.bytesUp - f.bytesUp);
    if (s.bytesDown !== f.bytesDown) this.bytes.inc({ direction: "down" }, s.bytesDown - f.bytesDown);
    Object.assign(f, s);
    const r = this.resumer?.stats;
    if (r) {
      const m = (this.resumeMetrics ??= this.makeResumeMetrics());
      const rf = m.flushed;
      for (const outcome of ["started", "resumed", "failed"] as const) if (r[outcome] !== rf[outcome]) m.connections.inc({ outcome }, r[outcome] - rf[outcome]);
      if (r.heldFrames !== rf.heldFrames) m.held.inc({}, r.heldFrames - rf.heldFrames);
      // pausesMs keeps the last 10,000: observe the ones not seen yet (all, if it was trimmed past them).
      const fresh = Math.min(r.pausesMs.length, r.resumed - rf.resumed);
      for (const ms of r.pausesMs.slice(r.pausesMs.length - fresh)) m.pause.observe(ms / 1000);
      Object.assign(rf, { started: r.started, resumed: r.resumed, failed: r.failed, heldFrames: r.heldFrames });
    }
  }
}
