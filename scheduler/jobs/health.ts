/**
 * The health-check tick (a BullMQ job scheduler every HEALTH_CHECK_INTERVAL): probe every ready,
 * draining and unhealthy node's /health (HEALTH_CHECK_TIMEOUT each, all at once), apply the pure
 * verdicts (counts, lastSeenAt, `unhealthy` after HEALTH_CHECK_FAILURES), and ask for a
 * replacement when a serving node is lost. The gateway sees the `unhealthy` event and closes that
 * node's players with 4009.
 *
 * It also adopts `starting` nodes whose instance the driver already started (the record has its
 * address) and that answer ready: the scale-up job that started them may have died with its
 * scheduler, and its job waits out the BullMQ lock (SCHEDULER_LOCK_DURATION) before another
 * replica picks it up — by then the node is ready, and the retried job finds it there instead of
 * leaving it in `starting` (where the reaper would delete it as a failed start, to be recreated).
 */
import { InvalidTransitionError, NodeNotFoundError } from "../../model/node-registry.ts";
import type { NodeRecord } from "../../core/types.ts";
import { httpHealthProbe, type HealthProbe } from "../fleet/health-probe.ts";
import { CHECKED_STATES, healthVerdict, staleNodes, type HealthVerdict } from "../policy/liveness.ts";
import type { SchedulerContext } from "./context.ts";

export interface HealthTickResult {
  checked: number;
  failed: number;
  unhealthy: string[];
  recovered: string[];
  /** `starting` nodes found running and healthy, turned ready (see adoptStarted). */
  adopted: string[];
}

export async function processHealthTick(ctx: SchedulerContext, probe: HealthProbe = httpHealthProbe): Promise<HealthTickResult | { skipped: true }> {
  const release = await ctx.locks.tryTick("health-tick", Math.max(5_000, 3 * ctx.config.healthCheckIntervalMs));
  if (!release) return { skipped: true };
  try {
    const nodes = (await ctx.registry.list()).filter((n) => CHECKED_STATES.includes(n.state));
    const out: HealthTickResult = { checked: nodes.length, failed: 0, unhealthy: [], recovered: [], adopted: [] };
    const failedNow = new Set<string>();
    await Promise.all(
      nodes.map(async (n) => {
        const p = await probe({ nodeId: n.id, host: n.host, port: n.port }, ctx.config.healthCheckTimeoutMs);
        ctx.metrics.healthChecks.inc({ outcome: p.ok ? "ok" : "failed" });
        if (!p.ok) {
          out.failed++;
          failedNow.add(n.id);
        }
        const v = healthVerdict(n, p, ctx.clock.now(), ctx.config);
        await applyVerdict(ctx, n, v, out);
      }),
    );
    // A node that fails now and has not answered for the whole failure budget (its earlier probes
    // hung, or no checker ran meanwhile) is lost without waiting for more failures. A node that
    // answers now is never marked, however long the checker was away.
    const after = await ctx.registry.list();
    const fresh = after.filter((n) => failedNow.has(n.id));
    for (const n of staleNodes(fresh, ctx.clock.now(), ctx.config)) {
      await applyVerdict(ctx, n, { patch: {}, to: "unhealthy", replace: n.state === "ready", reason: `not seen for ${ctx.clock.now() - n.lastSeenAt} ms` }, out);
    }
    await adoptStarted(ctx, probe, after, out);
    return out;
  } finally {
    await release();
  }
}

/**
 * `starting` nodes the driver has started (their record carries the instance's address) that
 * answer ready with their own id: turned `ready` now. A live scale-up job racing this loses
 * nothing — its own `starting → ready` finds the node ready and takes it as its own.
 */
async function adoptStarted(ctx: SchedulerContext, probe: HealthProbe, nodes: readonly NodeRecord[], out: HealthTickResult): Promise<void> {
  const now0 = ctx.clock.now();
  // Without an address in the record the job may have died between the driver's start and the
  // record's update: once it is older than a check interval, ask the driver (list/inspect by label).
  const starting = nodes.filter((n) => n.state === "starting" && (n.ref !== "" || now0 - n.stateChangedAt >= ctx.config.healthCheckIntervalMs));
  await Promise.all(
    starting.map(async (n) => {
      let at = { host: n.host, port: n.port };
      if (n.ref === "") {
        const info = await ctx.driver.inspect(n.id).catch(() => undefined);
        if (!info?.running) return;
        await ctx.registry.update(n.id, { host: info.host, port: info.port, driver: info.driver, ref: info.ref, dockerHost: info.dockerHost, ...(info.region ? { region: info.region } : {}) });
        at = { host: info.host, port: info.port };
      }
      if (!(at.port > 0)) return;
      const p = await probe({ nodeId: n.id, host: at.host, port: at.port }, ctx.config.healthCheckTimeoutMs);
      if (!p.ok || p.state !== "ready" || (p.nodeId !== undefined && p.nodeId !== n.id)) return;
      const now = ctx.clock.now();
      try {
        await ctx.registry.transition(n.id, "ready", now, {
          expectFrom: ["starting"],
          patch: { rooms: p.rooms, players: p.players, lastSeenAt: now, lastActivityAt: now, healthFailures: 0 },
          reason: "adopted: its instance runs and answers ready",
        });
      } catch (e) {
        if (e instanceof InvalidTransitionError || e instanceof NodeNotFoundError) return;
        throw e;
      }
      out.adopted.push(n.id);
      ctx.log.info("node adopted: started by a scale-up whose scheduler went away, and healthy", { nodeId: n.id, requestId: n.requestId });
    }),
  );
}

async function applyVerdict(ctx: SchedulerContext, n: NodeRecord, v: HealthVerdict, out: HealthTickResult): Promise<void> {
  const now = ctx.clock.now();
  if (!v.to) {
    await ctx.registry.update(n.id, v.patch);
    if (v.reason !== "ok") ctx.log.debug("health check", { nodeId: n.id, reason: v.reason });
    if (v.replace) {
      ctx.log.warn("node lost", { nodeId: n.id, reason: v.reason });
      await requestReplacement(ctx, n, v, now);
    }
    return;
  }
  try {
    // Only from the state the probe saw: a node drained or stopped meanwhile is left alone.
    await ctx.registry.transition(n.id, v.to, now, { expectFrom: [n.state], patch: v.patch, reason: v.reason });
  } catch (e) {
    if (e instanceof InvalidTransitionError || e instanceof NodeNotFoundError) return;
    throw e;
  }
  if (v.to === "unhealthy") {
    out.unhealthy.push(n.id);
    ctx.log.warn("node unhealthy", { nodeId: n.id, reason: v.reason });
  } else {
    out.recovered.push(n.id);
    ctx.log.info("node healthy again", { nodeId: n.id });
  }
  if (v.replace) await requestReplacement(ctx, n, v, now);
}

async function requestReplacement(ctx: SchedulerContext, n: NodeRecord, v: HealthVerdict, now: number): Promise<void> {
  // One replacement per loss: the id names the node and the moment it was lost.
  await ctx.requests.scaleUp({ count: 1, region: n.region, reason: `replace unhealthy ${n.id}`, requestId: `replace-${n.id}-${now}` });
  await ctx.scaleState.record({ at: now, action: "replace", count: 1, reason: `${n.id}: ${v.reason}` });
}
