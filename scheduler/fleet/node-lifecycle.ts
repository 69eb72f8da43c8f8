/**
 * The node lifecycle: every side effect of starting, waking, draining, stopping and deleting a
 * node, in one service the jobs call. Each step is written so it can be repeated — by a retried
 * job, or by another replica taking over a stalled one — without doing anything twice:
 *
 * - node ids are derived from the request (see nodeIdFor), so a retried start finds its own node;
 * - registry transitions are compare-and-set; the loser of a race sees InvalidTransitionError and
 *   steps aside;
 * - driver start/stop/remove are idempotent by node id; deletes are conditional on the state
 *   they were decided on.
 *
 * Timing: the start wait is bounded by NODE_START_TIMEOUT, the stop grace is NODE_DRAIN_SECONDS,
 * a drain waits until its deadline at most.
 */
import { createHash, randomBytes } from "node:crypto";
import { UnrecoverableError } from "bullmq";
import type { Clock } from "../../core/clock.ts";
import type { Config } from "../../core/config.ts";
import type { Logger } from "../../core/log.ts";
import { InvalidTransitionError, NodeNotFoundError, type NodeRegistry } from "../../model/node-registry.ts";
import type { FleetVersion, NodeRecord, NodeState } from "../../core/types.ts";
import { DriverError, NODE_CLOSE_GRACE_MS, stopGraceMs, type NodeDriver, type NodeSpec } from "../drivers/driver.ts";
import type { HealthProbe } from "./health-probe.ts";
import type { PortAllocator } from "./ports.ts";

export interface LifecycleDeps {
  config: Config;
  registry: NodeRegistry;
  driver: NodeDriver;
  ports: PortAllocator;
  clock: Clock;
  log: Logger;
  probe: HealthProbe;
  /** True when a port on the node's host is taken by something outside the fleet. Default: never. */
  portInUse?: (port: number) => Promise<boolean>;
  /**
   * Tells a node it is being drained (the node contract's optional `POST /drain`); true when the
   * node accepted it (it then closes its own players at the deadline). Default: HTTP.
   */
  notifyDrain?: DrainNotifier;
}

/** `POST /drain {deadlineSeconds}` with the node's token; true when the node answered 2xx. Never throws. */
export type DrainNotifier = (target: { nodeId: string; host: string; port: number; token: string }, deadlineSeconds: number, timeoutMs: number) => Promise<boolean>;

export const httpDrainNotifier: DrainNotifier = async (target, deadlineSeconds, timeoutMs) => {
  const host = target.host.includes(":") ? `[${target.host}]` : target.host;
  try {
    const res = await fetch(`http://${host}:${target.port}/drain`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-node-token": target.token },
      body: JSON.stringify({ deadlineSeconds }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    await res.body?.cancel().catch(() => {});
    return res.ok;
  } catch {
    return false;
  }
};

export type StartOutcome =
  | { kind: "ready"; node: NodeRecord }
  /** The node of this request already exists past `starting` (a retried or duplicate job). */
  | { kind: "exists"; node: NodeRecord }
  | { kind: "at-capacity"; reason: string };

/** The version env a node record keeps (a wake starts the node with it again). */
function versionEnvOf(rec: Pick<NodeRecord, "versionEnv">): Record<string, string> | undefined {
  if (!rec.versionEnv) return undefined;
  try {
    const v = JSON.parse(rec.versionEnv) as unknown;
    return v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, string>) : undefined;
  } catch {
    return undefined;
  }
}

/** Deterministic node id of the `index`-th node of a scale-up request. */
export function nodeIdFor(requestId: string, index: number): string {
  const h = createHash("sha256").update(requestId).digest("hex").slice(0, 12);
  return `n-${h}-${index}`;
}

/** How often a starting node's /health is polled. Short: a cold start is ~0.35 s and every ms shows in join latency. */
const START_POLL_MS = 25;
/** How long a port found in use outside the fleet is skipped by every replica. */
const BUSY_PORT_MS = 60_000;

function isDeadline(now: number, deadline: number): boolean {
  return now >= deadline;
}

export class NodeLifecycle {
  constructor(private readonly d: LifecycleDeps) {}

  private now(): number {
    return this.d.clock.now();
  }

  private spec(n: Pick<NodeRecord, "id" | "port" | "token"> & { region?: string; image?: string }, env?: Record<string, string>): NodeSpec {
    const c = this.d.config;
    return {
      ...(n.image ? { image: n.image } : {}),
      // FLEETGATE_URL (CONTRACT "Session resume"): where the node saves and reads room snapshots.
      env: { FLEETGATE_URL: c.fleetgateUrl, ...(env ?? {}) },
      ...(n.region ? { region: n.region } : {}),
      nodeId: n.id,
      port: n.port,
      token: n.token,
      maxRooms: c.nodeMaxRooms,
      // The node's hard connection cap: a whole room must fit even with one server per player.
      maxPlayers: Math.max(c.nodeMaxPlayers, c.maxPlayersPerServer),
      drainSeconds: c.nodeDrainMs / 1000,
      roomMode: c.nodeRoomMode,
    };
  }

  /** Reserves a slot and a free port, skipping ports something else listens on. */
  private async reservePort(nodeId: string): Promise<{ ok: true; port: number } | { ok: false; reason: string }> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const r = await this.d.ports.reserve(nodeId, this.now());
      if (!r.ok) return { ok: false, reason: r.reason === "max-servers" ? `MAX_SERVERS=${this.d.config.maxServers} reached (${r.live} live)` : "no free port in SERVER_PORT_START..SERVER_PORT_END" };
      if (r.existing || !this.d.portInUse || !(await this.d.portInUse(r.port))) return { ok: true, port: r.port };
      this.d.log.warn("port in use outside the fleet; skipping it", { port: r.port, nodeId });
      await this.d.ports.markBusy(r.port, nodeId, this.now(), BUSY_PORT_MS);
    }
    return { ok: false, reason: "no usable port after 50 tries" };
  }

  /**
   * Starts (or finishes starting) one node of a scale-up request and waits until it is ready.
   * A node that does not come up is failed (stopped, instance removed, port freed, record deleted)
   * and the error rethrown so the job retries it from scratch.
   */
  async startNode(req: { nodeId: string; requestId: string; region: string; version?: FleetVersion }): Promise<StartOutcome> {
    const { nodeId } = req;
    let rec = await this.d.registry.get(nodeId);
    if (rec && rec.state === "stopped" && rec.lastSeenAt === 0) {
      // A start of this request that failed and whose clean-up was cut short (the scheduler died
      // between marking it stopped and deleting it): finish the clean-up and start afresh.
      await this.delete(nodeId, rec.stateChangedAt, "failed start, cleaned up on retry");
      rec = await this.d.registry.get(nodeId);
    }
    if (rec && rec.state !== "starting") return { kind: "exists", node: rec };
    if (!rec) {
      const res = await this.reservePort(nodeId);
      if (!res.ok) return { kind: "at-capacity", reason: res.reason };
      const now = this.now();
      const fresh: NodeRecord = {
        id: nodeId,
        state: "starting",
        host: this.d.config.nodeBindAddress === "0.0.0.0" ? "127.0.0.1" : this.d.config.nodeBindAddress,
        port: res.port,
        region: req.region,
        capacity: this.d.config.maxPlayersPerServer,
        maxRooms: this.d.config.nodeMaxRooms,
        rooms: 0,
        players: 0,
        reservedRooms: 0,
        reservedSeats: 0,
        token: randomBytes(24).toString("base64url"),
        driver: this.d.driver.kind,
        ref: "",
        dockerHost: "",
        startedAt: now,
        lastSeenAt: 0,
        stateChangedAt: now,
        lastActivityAt: 0,
        stoppedAt: 0,
        healthFailures: 0,
        requestId: req.requestId,
        version: req.version?.version ?? "",
        image: req.version?.image ?? "",
        ...(req.version?.env && Object.keys(req.version.env).length > 0 ? { versionEnv: JSON.stringify(req.version.env) } : {}),
      };
      // Record first, instance second: an instance never exists without a record, so the orphan
      // sweep may remove any instance it cannot find in the registry.
      if (!(await this.d.registry.create(fresh, now))) {
        rec = await this.d.registry.get(nodeId);
        if (!rec) throw new Error(`node ${nodeId} vanished while being created`);
        if (rec.state !== "starting") return { kind: "exists", node: rec };
      } else rec = fresh;
      this.d.log.info("node starting", { nodeId, port: rec.port, requestId: req.requestId });
    }
    try {
      return { kind: "ready", node: await this.bringUp(rec, req.version?.env) };
    } catch (e) {
      await this.failStart(nodeId, e instanceof Error ? e.message : String(e));
      throw e;
    }
  }

  /**
   * The port a node is started on: its reservation. Not `rec.port`, which is the address the driver
   * reported to dial (a bridge-networked or fake node may be reached on another port) — a wake must
   * start the node on the port it was given, not on the one it was reached at.
   */
  private async specPort(rec: NodeRecord): Promise<number> {
    const r = await this.d.ports.reserve(rec.id, this.now());
    return r.ok ? r.port : rec.port;
  }

  /** driver.start + wait for /health ready + `starting → ready`. */
  private async bringUp(rec: NodeRecord, env?: Record<string, string>): Promise<NodeRecord> {
    const started = this.now();
    const handle = await this.d.driver.start(this.spec({ ...rec, port: await this.specPort(rec) }, env ?? versionEnvOf(rec)));
    await this.d.registry.update(rec.id, { host: handle.host, port: handle.port, driver: handle.driver, ref: handle.ref, dockerHost: handle.dockerHost, ...(handle.region ? { region: handle.region } : {}) });
    await this.waitHealthy(rec.id, handle.host, handle.port, started + this.d.config.nodeStartTimeoutMs);
    const now = this.now();
    // A freshly ready node counts its inactivity from now (CONTRACT: shut down after
    // INACTIVITY_SHUTDOWN without activity).
    let node: NodeRecord;
    try {
      node = await this.d.registry.transition(rec.id, "ready", now, {
        expectFrom: ["starting"],
        patch: { lastActivityAt: now, lastSeenAt: now, healthFailures: 0 },
        reason: `healthy after ${now - started} ms`,
      });
    } catch (e) {
      // A replica that took over this job while we were still on it (our lock lapsed) may have
      // finished first: its `ready` is ours too — never fail a node that is up.
      const cur = e instanceof InvalidTransitionError ? await this.d.registry.get(rec.id) : undefined;
      if (cur?.state === "ready") return cur;
      throw e;
    }
    this.d.log.info("node ready", { nodeId: rec.id, host: handle.host, port: handle.port, ms: now - started });
    return node;
  }

  private async waitHealthy(nodeId: string, host: string, port: number, deadline: number): Promise<void> {
    let last = "no answer yet";
    for (let i = 0; ; i++) {
      const p = await this.d.probe({ nodeId, host, port }, Math.min(this.d.config.healthCheckTimeoutMs, 1000));
      if (p.ok && p.state === "ready" && (p.nodeId === undefined || p.nodeId === nodeId)) return;
      last = p.ok ? `state ${p.state}${p.nodeId && p.nodeId !== nodeId ? ` (answered as ${p.nodeId})` : ""}` : p.error;
      // Every 20 polls, ask the driver whether the instance is still running: a node that exited
      // (bad image, crash at boot) fails now instead of at the timeout.
      if (i % 20 === 19) {
        const info = await this.d.driver.inspect(nodeId);
        if (!info || !info.running) {
          const logs = await this.d.driver.logs(nodeId, 20).catch(() => "");
          throw new Error(`node ${nodeId} exited while starting (exit ${info?.exitCode ?? "?"})${logs ? `: ${logs.slice(-500)}` : ""}`);
        }
      }
      if (isDeadline(this.now(), deadline)) throw new Error(`node ${nodeId} not ready within NODE_START_TIMEOUT (${this.d.config.nodeStartTimeoutMs} ms): ${last}`);
      await this.d.clock.sleep(START_POLL_MS);
    }
  }

  /** A node that failed to come up: stopped, instance removed, port freed, record deleted. */
  private async failStart(nodeId: string, reason: string): Promise<void> {
    this.d.log.warn("node failed to start; cleaning up", { nodeId, reason });
    const now = this.now();
    await this.d.registry.transition(nodeId, "stopped", now, { expectFrom: ["starting"], patch: { stoppedAt: now }, reason: `failed to start: ${reason}` }).catch(() => {});
    await this.d.driver.remove(nodeId).catch((e: unknown) => this.d.log.warn("remove after failed start failed", { nodeId, error: e }));
    await this.d.registry.remove(nodeId, this.now(), "failed to start", { state: "stopped" });
    await this.d.ports.releaseNode(nodeId);
  }

  /**
   * Wakes a stopped node (same id, port and token) for a returning player and waits until ready.
   * A node that is already starting or ready is just waited for.
   */
  async wake(nodeId: string): Promise<NodeRecord> {
    for (;;) {
      const rec = await this.d.registry.get(nodeId);
      if (!rec) throw new UnrecoverableError(`node ${nodeId} no longer exists (deleted after CLEANUP_DELETE)`);
      if (rec.state === "ready") return rec;
      if (rec.state === "starting") {
        await this.waitHealthy(nodeId, rec.host, rec.port, rec.stateChangedAt + this.d.config.nodeStartTimeoutMs);
        const after = await this.d.registry.get(nodeId);
        if (after?.state === "ready") return after;
        // Healthy but still `starting`: the other waker is about to flip it; loop and look again.
        await this.d.clock.sleep(START_POLL_MS);
        continue;
      }
      if (rec.state !== "stopped") throw new Error(`node ${nodeId} is ${rec.state}; it can be woken once stopped`);
      const now = this.now();
      let woken: NodeRecord;
      try {
        woken = await this.d.registry.transition(nodeId, "starting", now, { expectFrom: ["stopped"], patch: { startedAt: now, healthFailures: 0 }, reason: "wake" });
      } catch (e) {
        if (e instanceof InvalidTransitionError) continue; // another replica woke it first
        throw e;
      }
      // The slot check comes after the CAS, so two wakes racing for the last slot both see the
      // other and both back off — never both start.
      const live = await this.d.ports.liveCount();
      if (live > this.d.config.maxServers) {
        await this.d.registry.transition(nodeId, "stopped", this.now(), { expectFrom: ["starting"], patch: { stoppedAt: rec.stoppedAt }, reason: "wake refused: MAX_SERVERS" });
        throw new UnrecoverableError(`cannot wake ${nodeId}: MAX_SERVERS=${this.d.config.maxServers} reached`);
      }
      try {
        return await this.bringUp(woken);
      } catch (e) {
        const t = this.now();
        await this.d.registry.transition(nodeId, "stopped", t, { expectFrom: ["starting"], patch: { stoppedAt: t }, reason: "wake failed" }).catch(() => {});
        await this.d.driver.stop(nodeId, 0).catch(() => {});
        throw e instanceof DriverError && !e.retryable ? new UnrecoverableError(e.message) : e;
      }
    }
  }

  /**
   * Stops a node: `→ stopping`, SIGTERM with NODE_DRAIN_SECONDS grace, `→ stopped` (stoppedAt).
   * With `epoch`, acts only if the node is still in the state it entered at `epoch` (the decision
   * was made on it). Returns false when it stepped aside.
   */
  async stop(nodeId: string, opts: { from: readonly NodeState[]; epoch?: number; reason: string; graceMs?: number }): Promise<boolean> {
    const rec = await this.d.registry.get(nodeId);
    if (!rec || rec.state === "stopped") return false;
    if (rec.state !== "stopping") {
      if (!opts.from.includes(rec.state)) return false;
      if (opts.epoch !== undefined && rec.stateChangedAt !== opts.epoch) return false;
      try {
        await this.d.registry.transition(nodeId, "stopping", this.now(), { expectFrom: [rec.state], reason: opts.reason });
      } catch (e) {
        if (e instanceof InvalidTransitionError || e instanceof NodeNotFoundError) return false;
        throw e;
      }
    }
    // The node closes its players with 4009 at DRAIN_SECONDS; SIGKILL only after that plus the
    // close grace, or players would see 1006 instead of "reconnect".
    await this.d.driver.stop(nodeId, opts.graceMs ?? stopGraceMs(this.d.config.nodeDrainMs / 1000));
    const now = this.now();
    try {
      await this.d.registry.transition(nodeId, "stopped", now, { expectFrom: ["stopping"], patch: { stoppedAt: now, players: 0, rooms: 0 }, reason: opts.reason });
    } catch (e) {
      if (e instanceof InvalidTransitionError || e instanceof NodeNotFoundError) return false;
      throw e;
    }
    this.d.log.info("node stopped", { nodeId, reason: opts.reason });
    return true;
  }

  /**
   * Deletes a stopped node: record (only if still stopped since `epoch`), then instance, then port.
   * Record first, so a wake racing the delete either wins the CAS (and the delete steps aside) or
   * finds no node.
   */
  async delete(nodeId: string, epoch: number | undefined, reason: string): Promise<boolean> {
    const removed = await this.d.registry.remove(nodeId, this.now(), reason, { state: "stopped", ...(epoch !== undefined ? { stateChangedAt: epoch } : {}) });
    if (!removed && (await this.d.registry.get(nodeId))) return false; // woken (or re-stopped) since the decision
    await this.d.driver.remove(nodeId);
    await this.d.ports.releaseNode(nodeId);
    if (removed) this.d.log.info("node deleted", { nodeId, reason });
    return removed;
  }

  /**
   * Drains a node: `→ draining` (no new rooms), wait until it has no rooms or `deadlineAt` passes,
   * then stop it. Repeatable: a drain resumed by another replica carries on from `draining`.
   */
  async drain(nodeId: string, deadlineAt: number, reason: string, onProgress?: (p: { rooms: number; players: number; msLeft: number }) => Promise<void>): Promise<"drained" | "gone"> {
    let rec = await this.d.registry.get(nodeId);
    if (!rec || rec.state === "stopped" || rec.state === "stopping") return rec ? "drained" : "gone";
    if (rec.state === "starting") throw new Error(`node ${nodeId} is still starting; drain retries once it is ready`);
    if (rec.state === "ready" || rec.state === "unhealthy") {
      try {
        rec = await this.d.registry.transition(nodeId, "draining", this.now(), { expectFrom: [rec.state], reason });
      } catch (e) {
        if (e instanceof NodeNotFoundError) return "gone";
        if (!(e instanceof InvalidTransitionError)) throw e;
        rec = await this.d.registry.get(nodeId);
        if (!rec) return "gone";
      }
    }
    // The drain contract: tell the node first (it warns its players and closes what is left itself
    // at the deadline — the moment the last player is closed is the deadline, not the deadline plus
    // DRAIN_SECONDS of a SIGTERM sent then). Told again by a replica that resumes the drain; a node
    // keeps its first deadline.
    let told = false;
    if (rec.state === "draining") {
      const secondsLeft = Math.max(0, deadlineAt - this.now()) / 1000;
      told = await (this.d.notifyDrain ?? httpDrainNotifier)({ nodeId, host: rec.host, port: rec.port, token: rec.token }, secondsLeft, this.d.config.healthCheckTimeoutMs);
      this.d.log.info("node told to drain", { nodeId, deadlineSeconds: secondsLeft, accepted: told });
    }
    const pollMs = Math.max(50, Math.min(this.d.config.healthCheckIntervalMs, 1000));
    let deadlinePassed = false;
    for (;;) {
      const cur = await this.d.registry.get(nodeId);
      if (!cur) return "gone";
      if (cur.state !== "draining") break; // stopped by someone else, or went unhealthy→stopping
      const p = await this.d.probe({ nodeId, host: cur.host, port: cur.port }, this.d.config.healthCheckTimeoutMs);
      // Rooms the node reports, or — when it does not answer — what placement still has on it.
      const rooms = p.ok ? p.rooms : cur.rooms;
      const players = p.ok ? p.players : cur.players;
      if (p.ok) await this.d.registry.update(nodeId, { rooms, players, lastSeenAt: this.now() });
      const msLeft = deadlineAt - this.now();
      await onProgress?.({ rooms, players, msLeft: Math.max(0, msLeft) });
      if (rooms === 0 && players === 0) break;
      if (msLeft <= 0) {
        this.d.log.info("drain deadline passed; stopping with rooms left", { nodeId, rooms, players });
        deadlinePassed = true;
        break;
      }
      await this.d.clock.sleep(Math.min(pollMs, Math.max(1, msLeft)));
    }
    // A node that took the drain closes its players at the deadline and exits on SIGTERM at once.
    // One that did not would spend DRAIN_SECONDS more after SIGTERM: past the deadline it is killed
    // after the close grace instead (the gateway tells its players 4009 on the lost upstream).
    const graceMs = deadlinePassed && !told ? NODE_CLOSE_GRACE_MS : undefined;
    await this.stop(nodeId, { from: ["draining", "unhealthy"], reason: `drained: ${reason}`, ...(graceMs !== undefined ? { graceMs } : {}) });
    // …then deleted: a drained node is retired, never woken again (CONTRACT "drain as a contract").
    const after = await this.d.registry.get(nodeId);
    if (after?.state === "stopped") await this.delete(nodeId, after.stateChangedAt, `drained: ${reason}`);
    return "drained";
  }

  /** A driver instance the registry does not know: removed (unless a record appeared meanwhile). */
  async removeOrphanInstance(nodeId: string): Promise<boolean> {
    if (await this.d.registry.get(nodeId)) return false;
    await this.d.driver.remove(nodeId);
    this.d.log.info("orphan instance removed", { nodeId });
    return true;
  }

  /**
   * A record whose instance is gone or that is stuck mid-transition: finished to `stopped` and
   * deleted at once (nothing left to wake). Acts only if the node is still in the state of `epoch`.
   */
  async finishOrphanRecord(nodeId: string, epoch: number, reason: string): Promise<boolean> {
    const rec = await this.d.registry.get(nodeId);
    if (!rec || rec.stateChangedAt !== epoch) return false;
    const now = this.now();
    try {
      if (rec.state === "ready" || rec.state === "draining" || rec.state === "unhealthy") {
        await this.d.registry.transition(nodeId, "stopping", now, { expectFrom: [rec.state], reason });
      }
      if (rec.state !== "stopped") {
        await this.d.driver.stop(nodeId, 0).catch(() => {});
        await this.d.registry.transition(nodeId, "stopped", this.now(), { expectFrom: ["starting", "stopping"], patch: { stoppedAt: this.now() }, reason });
      }
    } catch (e) {
      if (e instanceof InvalidTransitionError || e instanceof NodeNotFoundError) return false;
      throw e;
    }
    const after = await this.d.registry.get(nodeId);
    return this.delete(nodeId, after?.stateChangedAt, reason);
  }

  /** Stops and deletes every node of the fleet (STOP_NODES_ON_EXIT). */
  async stopAll(reason: string, registryBudgetMs = Number.POSITIVE_INFINITY): Promise<number> {
    let n = 0;
    // Through the registry first (nodes drain, records go), for at most `registryBudgetMs`: with
    // Redis gone every registry call would wait for it. The sweep below then removes every
    // container of the fleet the engine still has — running or stopped — whatever the registry said.
    const viaRegistry = (async () => {
      const nodes = await this.d.registry.list();
      await Promise.all(
        nodes.map(async (node) => {
          try {
            if (node.state !== "stopped") await this.stop(node.id, { from: ["starting", "ready", "draining", "unhealthy"], reason });
            if (await this.delete(node.id, undefined, reason)) n++;
          } catch (e) {
            this.d.log.warn("stop on exit failed", { nodeId: node.id, error: e });
          }
        }),
      );
    })().catch((e: unknown) => this.d.log.warn("stop on exit: registry unreachable; removing containers directly", { error: e instanceof Error ? e.message : String(e) }));
    if (Number.isFinite(registryBudgetMs)) await Promise.race([viaRegistry, Bun.sleep(registryBudgetMs)]);
    else await viaRegistry;
    const left = await this.d.driver.list().catch(() => []);
    await Promise.all(left.map((i) => this.d.driver.remove(i.nodeId).catch(() => {})));
    return n + left.length;
  }
}

/** A port checker for nodes on this machine: true when binding it fails. */
export function localPortInUse(bindAddress: string): (port: number) => Promise<boolean> {
  return async (port) => {
    try {
      const s = Bun.listen({ hostname: bindAddress, port, socket: { data() {} } });
      s.stop(true);
      return false;
    } catch {
      return true;
    }
  };
}
