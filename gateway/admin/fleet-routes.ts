/**
 * Fleet administration (admin only):
 * - `POST /v1/admin/scale {nodes}` sets the autoscaler's floor: at least `nodes` ready + starting
 *   nodes (0 clears it). Stored in Redis (keys.scaleState); the next autoscale tick acts on it.
 * - `POST /v1/admin/nodes/:id/drain {deadlineSeconds?}` drains a node: no new rooms, stop once its
 *   rooms are empty or the deadline (default DRAIN_DEADLINE) passes.
 * Errors in the CONTRACT shape; the input is checked here so bad input is a 400 with or without
 * the app's schema layer.
 */
import { Elysia } from "elysia";
import { AppError, badRequest, conflict, notFound } from "../../core/errors.ts";
import { ScaleStateStore } from "../../model/scale-state.ts";
import { requireAdmin } from "../contracts.ts";
import type { GatewayDeps } from "../deps.ts";

const NODE_ID_RE = /^[A-Za-z0-9_.-]{1,64}$/;
/** Longest drain deadline an admin may ask for: one day. */
const MAX_DEADLINE_SECONDS = 24 * 3600;

function field(body: unknown, name: string): unknown {
  return typeof body === "object" && body !== null ? (body as Record<string, unknown>)[name] : undefined;
}

/** Runs a handler, rendering AppErrors as contract errors (this plugin works mounted anywhere). */
async function contract(set: { status?: number | string }, fn: () => Promise<unknown>): Promise<unknown> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof AppError) {
      set.status = e.status;
      return e.toBody();
    }
    throw e;
  }
}

export function fleetAdminRoutes(deps: GatewayDeps) {
  const scaleState = new ScaleStateStore(deps.redis, deps.keys);
  return new Elysia({ name: "fleetAdminRoutes" })
    .post(
      "/v1/admin/scale",
      ({ body, request, set }) =>
        contract(set, async () => {
          const claims = await requireAdmin(deps.auth, request);
          const nodes = field(body, "nodes");
          if (typeof nodes !== "number" || !Number.isInteger(nodes) || nodes < 0 || nodes > deps.config.maxServers) {
            throw badRequest("INVALID_NODES", `nodes must be a whole number from 0 to MAX_SERVERS (${deps.config.maxServers})`);
          }
          await scaleState.setFloor(nodes, deps.clock.now(), claims.sub);
          deps.log.info("admin set the fleet floor", { nodes, by: claims.sub });
          set.status = 202;
          return { nodes, maxServers: deps.config.maxServers };
        }),
      { detail: { summary: "Set the fleet's floor of ready nodes (admin)", tags: ["admin"] } },
    )
    .post(
      "/v1/admin/nodes/:id/drain",
      ({ body, params, request, set }) =>
        contract(set, async () => {
          const claims = await requireAdmin(deps.auth, request);
          const nodeId = params.id;
          if (!NODE_ID_RE.test(nodeId)) throw badRequest("INVALID_NODE_ID", "node ids are 1-64 of [A-Za-z0-9_.-]");
          const raw = field(body, "deadlineSeconds");
          if (raw !== undefined && (typeof raw !== "number" || !Number.isFinite(raw) || raw < 0 || raw > MAX_DEADLINE_SECONDS)) {
            throw badRequest("INVALID_DEADLINE", `deadlineSeconds must be a number from 0 to ${MAX_DEADLINE_SECONDS}`);
          }
          const node = await deps.nodes.get(nodeId);
          if (!node) throw notFound("NODE_NOT_FOUND", `no node ${nodeId}`);
          if (node.state !== "ready" && node.state !== "unhealthy" && node.state !== "draining") {
            throw conflict("NODE_NOT_DRAINABLE", `node ${nodeId} is ${node.state}`);
          }
          const deadlineMs = raw === undefined ? deps.config.drainDeadlineMs : Math.round(raw * 1000);
          await deps.scheduler.requestDrain({ nodeId, deadlineMs, reason: `admin drain by ${claims.sub}` });
          deps.log.info("admin drain requested", { nodeId, deadlineMs, by: claims.sub });
          set.status = 202;
          return { nodeId, state: node.state, deadlineSeconds: deadlineMs / 1000 };
        }),
      { detail: { summary: "Drain a node (admin)", tags: ["admin"] } },
    );
}
