/**
 * The health-check tick (a BullMQ job scheduler every HEALTH_CHECK_INTERVAL): probe every ready,
 * draining and unhealthy node's /health (HEALTH_CHECK_TIMEOUT each, all at once), apply the pure
 * verdicts (counts, lastSeenAt, `unhealthy` after HEALTH_CHECK_FAILURES), and ask for a
 * replacement when a serving node is lost. The gateway sees the `unhealthy` event and closes that
 * node's players with 4009.
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
}

export async function processHealthTick(ctx: SchedulerContext, probe: HealthProbe = httpHealthProbe): Promise<HealthTickResult | { skipped: true }> {
  const release = await ctx.locks.tryTick("health-tick", Math.max(5_000, 3 * ctx.config.healthCheckIntervalMs));
  if (!release) return { skipped: true };
  try {
    const nodes = (await ctx.registry.list()).filter((n) => CHECKED_STATES.includes(n.state));
    const out: HealthTickResult = { checked: nodes.length, failed: 0, unhealthy: [], recovered: [] };
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
    const fresh = (await ctx.registry.list()).filter((n) => failedNow.has(n.id));
    for (const n of staleNodes(fresh, ctx.clock.now(), ctx.config)) {
      await applyVerdict(ctx, n, { patch: {}, to: "unhealthy", replace: n.state === "ready", reason: `not seen for ${ctx.clock.now() - n.lastSeenAt} ms` }, out);
    }
    return out;
  } finally {
    await release();
  }
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
