/**
 * Session resume in the relay (CONTRACT "Session resume"): when a room's upstream drops because its
 * node was lost — the connection ended without a close frame (1006: the container died), the node
 * went away (1001/1012), or it closed its players 4009 at a drain or rollout deadline — the player's
 * socket stays open. The room is placed again, once for the whole room (model/room-resume.ts: a
 * compare-and-delete on `room → lost node`, then the seat budget's atomic reserve, so the players
 * of every gateway replica land on the same new node), and the new node is dialled with
 * `X-Resume: <n>` (n counts the room's resumes). Client frames sent meanwhile are held in order
 * (the relay's `pending` queue) and delivered once the new upstream opens.
 *
 * Bounds, never a silent drop:
 * - held bytes past RESUME_BUFFER_BYTES pause the client socket (Bun stops reading it: TCP pushes
 *   back); frames Bun had already read still arrive, and past twice the bound the player gets 4009;
 * - no node took the room within RESUME_TIMEOUT of the loss: 4009, as without resume.
 * A node closing a player on purpose (1000, 4003 kick, 4004 room closed, its own 4xxx codes) is
 * never resumed: the relay passes that close on as before.
 *
 * Notices (off by default): a client that connected with `?notices=1` gets two text frames of the
 * gateway's own, `{"fleetgate":"paused",...}` when the room's node is lost and
 * `{"fleetgate":"resumed",...}` when the new node took it over (see README "Session resume"). A raw
 * WebSocket client sees only the pause.
 *
 * Per room and gateway, one lookup runs at a time (the first player's drop starts it, the others
 * await it); a failed dial to the new node counts as losing that node and looks again, with a
 * short backoff, until RESUME_TIMEOUT.
 */
import type { Clock, TimerHandle } from "../../core/clock.ts";
import type { Config } from "../../core/config.ts";
import { AppError, CloseCode } from "../../core/errors.ts";
import type { Logger } from "../../core/log.ts";
import type { NodeRecord } from "../../core/types.ts";
import type { SchedulerClient } from "../../model/jobs.ts";
import type { Placement } from "../../model/contracts.ts";
import type { NodeRegistry } from "../../model/node-registry.ts";
import type { RoomResume } from "../../model/room-resume.ts";
import { closeRelay, encodePlayerName, sendToClient, type RelayState } from "./relay.ts";

/** What one player's connection keeps while its room resumes (`RelayState.resume`). */
export interface ResumeState {
  /** When the loss was seen (ms). */
  readonly startedAt: number;
  /** The node lost first (for the log and the notice). */
  readonly lostNodeId: string;
  /** Dials made in this resume. */
  dials: number;
  /** The client socket was paused because the held bytes passed RESUME_BUFFER_BYTES. */
  paused: boolean;
  /** RESUME_TIMEOUT. */
  timer: TimerHandle;
  /** Backoff before the next lookup, or the bound of one dial. */
  step: TimerHandle | undefined;
}

/** The relay's view of the resume coordinator. */
export interface Resumer {
  /** An upstream ended: starts (or continues) a resume when the close may be resumed. False: the relay closes the player as before. */
  begin(d: RelayState, code: number, reason: string): boolean;
  /** A client frame was added to `d.pending` while resuming: enforces RESUME_BUFFER_BYTES. */
  held(d: RelayState): void;
  /** The new upstream opened (the relay has flushed the held frames). */
  resumed(d: RelayState): void;
  /** The connection closed meanwhile: timers go. */
  cancel(d: RelayState): void;
}

/** Whether an upstream close means the node was lost rather than a deliberate close of this player. */
export function isResumableClose(code: number): boolean {
  return code === 1006 || code === 1001 || code === 1012 || code === CloseCode.RECONNECT;
}

/** The `/health` answer of a node, or undefined when it does not answer in time. */
export type HealthProbe = (node: Pick<NodeRecord, "host" | "port">, timeoutMs: number) => Promise<{ state: string; nodeId?: string } | undefined>;

export const httpProbe: HealthProbe = async (node, timeoutMs) => {
  try {
    const res = await fetch(`http://${node.host}:${node.port}/health`, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) return undefined;
    const b = (await res.json()) as { state?: unknown; nodeId?: unknown };
    return { state: String(b.state), ...(typeof b.nodeId === "string" ? { nodeId: b.nodeId } : {}) };
  } catch {
    return undefined;
  }
};

export interface ResumeDeps {
  config: Config;
  clock: Clock;
  log: Logger;
  nodes: NodeRegistry;
  placement: Placement;
  rooms: RoomResume;
  scheduler: SchedulerClient;
  /** Resolves on the next node event or after `ms` (the gateway's NodeChangeWaiter). */
  waitForNodes: (ms: number) => Promise<void>;
  probe?: HealthProbe;
}

/** Counters for metrics, the bench and tests. */
export interface ResumeStats {
  /** Connections whose room began a resume. */
  started: number;
  /** Connections that came back on a node. */
  resumed: number;
  /** Connections closed 4009 by a resume that failed (timeout, buffer). */
  failed: number;
  /** Client frames held while resuming, and their bytes. */
  heldFrames: number;
  heldBytes: number;
  /** Pause of each resumed connection, loss to new upstream open (ms); the last 10,000. */
  pausesMs: number[];
}

/** Backoff between lookups after a failed dial. */
const RETRY_MS = [50, 100, 200, 400, 800];

export class ResumeCoordinator implements Resumer {
  readonly stats: ResumeStats = { started: 0, resumed: 0, failed: 0, heldFrames: 0, heldBytes: 0, pausesMs: [] };
  /** One lookup per room and lost node at a time on this gateway. */
  private readonly lookups = new Map<string, Promise<{ node: NodeRecord; resume: number } | undefined>>();
  private readonly probe: HealthProbe;

  constructor(
    private readonly deps: ResumeDeps,
    /** Dials `node` for `d` with the given headers (the hub's openUpstream). */
    private readonly dial: (d: RelayState, node: NodeRecord, resumeNo: number) => void,
  ) {
    this.probe = deps.probe ?? httpProbe;
  }

  get enabled(): boolean {
    return this.deps.config.resume;
  }

  begin(d: RelayState, code: number, reason: string): boolean {
    if (!this.deps.config.resume || d.closed || !d.target) return false;
    const r = d.resume;
    if (!r) {
      if (!isResumableClose(code)) return false;
      const now = this.deps.clock.now();
      d.upstreamOpen = false;
      d.resume = {
        startedAt: now,
        lostNodeId: d.target.nodeId,
        dials: 0,
        paused: false,
        timer: this.deps.clock.setTimeout(() => this.expire(d), this.deps.config.resumeTimeoutMs),
        step: undefined,
      };
      this.stats.started++;
      if (d.notices) sendToClient(d, JSON.stringify({ fleetgate: "paused", reason: code === CloseCode.RECONNECT ? "node draining" : "node lost", timeoutMs: this.deps.config.resumeTimeoutMs }));
      this.locate(d, code, reason);
      return true;
    }
    // A dial of this resume failed (or the new node dropped before the room came back): look
    // again after a short backoff; RESUME_TIMEOUT bounds the whole resume.
    if (r.step) r.step.cancel();
    const wait = RETRY_MS[Math.min(r.dials - 1, RETRY_MS.length - 1)] ?? 50;
    r.step = this.deps.clock.setTimeout(() => {
      r.step = undefined;
      if (!d.closed && d.resume === r) this.locate(d, 1006, reason);
    }, wait);
    return true;
  }

  held(d: RelayState): void {
    const r = d.resume;
    if (!r) return;
    this.stats.heldFrames++;
    const limit = this.deps.config.resumeBufferBytes;
    if (d.pendingBytes > 2 * limit) {
      this.fail(d, "too much data held while the room moved to another node");
      return;
    }
    if (d.pendingBytes > limit && !r.paused) {
      // Nothing is dropped: Bun stops reading the socket and TCP pushes back on the client.
      r.paused = true;
      d.client?.pause();
    }
  }

  resumed(d: RelayState): void {
    const r = d.resume;
    if (!r) return;
    d.resume = undefined;
    r.timer.cancel();
    r.step?.cancel();
    const pausedMs = this.deps.clock.now() - r.startedAt;
    this.stats.resumed++;
    this.stats.heldBytes += d.pendingBytes;
    const p = this.stats.pausesMs;
    p.push(pausedMs);
    if (p.length > 10_000) p.splice(0, p.length - 10_000);
    // The upstream's own pressure check (just after this) may pause the client again.
    if (r.paused && !d.clientPaused) d.client?.resume();
    if (d.notices) sendToClient(d, JSON.stringify({ fleetgate: "resumed", pausedMs, nodeId: d.target?.nodeId }));
    this.deps.log.debug("player resumed", { room: d.roomCode, playerId: d.playerId, from: r.lostNodeId, to: d.target?.nodeId, pausedMs });
  }

  /**
   * The registry says the connection's node is gone (unhealthy after failed health checks,
   * stopping, stopped, deleted) while its upstream may still look open (a hung node): drop the
   * upstream and resume the room like a lost connection.
   */
  lose(d: RelayState, why: string): void {
    if (!this.deps.config.resume || d.resume || d.closed || !d.target) return;
    const up = d.upstream;
    d.upstream = undefined;
    up?.close(1001, why); // an owner's close brings no event
    this.begin(d, 1006, why);
  }

  cancel(d: RelayState): void {
    const r = d.resume;
    if (!r) return;
    d.resume = undefined;
    r.timer.cancel();
    r.step?.cancel();
  }

  private expire(d: RelayState): void {
    if (!d.resume || d.closed) return;
    this.fail(d, "node lost and no node took the room in time");
  }

  private fail(d: RelayState, why: string): void {
    this.stats.failed++;
    closeRelay(d, CloseCode.RECONNECT, d.owner.reconnectReason(why));
  }

  /** Finds the room's node after the loss of `d.target`'s node, then dials it. */
  private locate(d: RelayState, code: number, reason: string): void {
    const from = d.target!;
    const key = `${d.roomCode}|${from.nodeId}`;
    let lookup = this.lookups.get(key);
    if (!lookup) {
      lookup = this.lookup(d, from.nodeId, code, reason).finally(() => this.lookups.delete(key));
      this.lookups.set(key, lookup);
    }
    const r = d.resume;
    lookup.then(
      (found) => {
        if (d.closed || d.resume !== r || !r) return;
        if (!found) {
          this.fail(d, "no game server took the room in time");
          return;
        }
        r.dials++;
        d.target = { nodeId: found.node.id, host: found.node.host, port: found.node.port, token: found.node.token };
        this.dial(d, found.node, found.resume);
        // A dial that neither opens nor fails (a node that hangs) is given up and looked up again.
        r.step = this.deps.clock.setTimeout(() => {
          r.step = undefined;
          if (d.closed || d.resume !== r || d.upstreamOpen) return;
          const up = d.upstream;
          d.upstream = undefined;
          up?.close(1000, "dial timed out"); // an owner's close brings no event
          this.begin(d, 1006, "dial timed out");
        }, this.deps.config.upstreamConnectTimeoutMs);
      },
      (err: unknown) => {
        if (d.closed || d.resume !== r || !r) return;
        this.deps.log.warn("resume lookup failed", { room: d.roomCode, err });
        // Retry like a failed dial (Redis may be back in a moment); the timeout still bounds it.
        r.dials++;
        this.begin(d, 1006, "lookup failed");
      },
    );
  }

  /**
   * Where the room lives now that `fromNodeId` dropped it. A node that answers its health check as
   * ready (same id) keeps the room (the drop was the connection's, not the node's: dial it again).
   * Otherwise the node is taken out of placement (unreachable) and the room released from it and
   * placed again — or, when another player's gateway did that first, followed to its new node.
   */
  private async lookup(d: RelayState, fromNodeId: string, code: number, reason: string): Promise<{ node: NodeRecord; resume: number } | undefined> {
    const { deps } = this;
    const c = deps.config;
    const deadline = d.resume!.startedAt + c.resumeTimeoutMs;
    const from = await deps.nodes.get(fromNodeId);
    if (from) {
      const h = await this.probe(from, Math.min(c.healthCheckTimeoutMs, 1000));
      const answers = h !== undefined && (h.nodeId === undefined || h.nodeId === from.id);
      // Only a connection that just dropped (1006) goes back to a node that still answers ready and
      // that the registry still counts as ready; a node that closed its players on purpose to leave
      // (4009, 1001, 1012), or that is draining or given up in the registry, is left.
      if (answers && h.state === "ready" && code === 1006 && from.state === "ready") {
        return { node: from, resume: await deps.rooms.nextResume(d.roomCode, fromNodeId, c.resumeTimeoutMs * 6) };
      }
      if (!answers && (await deps.rooms.markLost(fromNodeId, deps.clock.now(), `gateway: node unreachable after its connection dropped (${code} ${reason})`.slice(0, 200)))) {
        deps.log.warn("node lost: taken out of placement", { nodeId: fromNodeId, code });
        if (from.state === "ready") {
          // The one replacement per loss (the health checker would ask for it, but it now finds the node already unhealthy).
          deps.scheduler.requestScaleUp({ count: 1, region: from.region, reason: `replace lost ${fromNodeId}`, requestId: `replace-${fromNodeId}-lost` }).catch((err: unknown) => deps.log.warn("replacement request failed", { nodeId: fromNodeId, err }));
        }
      }
    }
    await deps.rooms.leave(d.roomCode, fromNodeId);
    const resume = await deps.rooms.nextResume(d.roomCode, fromNodeId, c.resumeTimeoutMs * 6);
    let asked = false;
    for (;;) {
      try {
        const node = await deps.placement.placeRoom(d.roomCode, { ...(d.region ? { region: d.region } : {}), now: deps.clock.now(), ...(d.seats > 0 ? { seats: d.seats } : {}) });
        // The lost node can come back as the room's placement only if it answers again.
        if (node.state !== "starting" && node.id !== fromNodeId) return { node, resume };
        if (node.id === fromNodeId) await deps.rooms.leave(d.roomCode, fromNodeId);
      } catch (err) {
        if (!(err instanceof AppError && err.status === 503)) throw err;
      }
      const now = deps.clock.now();
      if (now >= deadline || d.closed) return undefined;
      if (!asked) {
        asked = true;
        deps.scheduler
          .requestScaleUp({ count: 1, region: d.region ?? c.region, reason: `resume: no node for room ${d.roomCode}`, requestId: `resume-${d.roomCode}-${fromNodeId}` })
          .catch((err: unknown) => deps.log.warn("capacity request failed", { room: d.roomCode, err }));
      }
      await deps.waitForNodes(Math.min(250, deadline - now));
    }
  }
}

/** The headers of a resume dial. */
export function resumeHeaders(d: RelayState, token: string, resumeNo: number): Record<string, string> {
  return { "X-Node-Token": token, "X-Player-Id": d.playerId, "X-Player-Name": encodePlayerName(d.playerName), "X-Resume": String(resumeNo) };
}
