/**
 * Fleet administration (admin only):
 * - `POST /v1/admin/scale {nodes}` sets the autoscaler's floor: at least `nodes` ready + starting
 *   nodes (0 clears it). Stored in Redis (keys.scaleState); the next autoscale tick acts on it.
 * - `POST /v1/admin/nodes/:id/drain {deadlineSeconds?}` drains a node: it is told (`POST /drain`),
 *   takes no new rooms, and once its rooms are empty or at the deadline (default DRAIN_DEADLINE) —
 *   when it closes whoever is left with 4009 — it is stopped and deleted.
 * - `POST /v1/admin/nodes/:id/restart {deadlineSeconds?}` starts a replacement of the node's
 *   version and drains the node once it is ready (a restart job).
 * - Fleet versions and rollouts (CONTRACT "Fleet versions and rollouts"): `GET /v1/admin/fleet`,
 *   `POST /v1/admin/fleet/rollouts`, `GET /v1/admin/fleet/rollouts[/:id]`, `POST …/:id/cancel`,
 *   `POST …/:id/promote`. The rollout itself runs as a scheduler job (scheduler/jobs/rollout.ts).
 * Errors in the CONTRACT shape; the input is checked here so bad input is a 400 with or without
 * the app's schema layer.
 */
import { Elysia } from "elysia";
import { badRequest, conflict, notFound } from "../../core/errors.ts";
import { renderError } from "../http/errors.ts";
import { ScaleStateStore } from "../../model/scale-state.ts";
import { RedisRolloutStore, defaultVersion, summarizeVersions, versionOfImage, type RolloutRecord, type RolloutStore } from "../../model/rollouts.ts";
import { dockerFromUrl, dockerStatus } from "../../core/docker-connect.ts";
import type { NodeRecord } from "../../core/types.ts";
import { requireAdmin } from "../contracts.ts";
import type { GatewayDeps } from "../deps.ts";

const IMAGE_RE = /^[A-Za-z0-9][A-Za-z0-9._\/:@-]{0,255}$/;
const VERSION_RE = /^[A-Za-z0-9_.-]{1,64}$/;
const ROLLOUT_ID_RE = /^ro-[a-z0-9-]{1,60}$/;
const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
/** Environment a version may not set: the node contract's own variables come from the scheduler. */
const RESERVED_ENV = new Set(["NODE_ID", "PORT", "HOST", "MAX_ROOMS", "MAX_PLAYERS", "NODE_TOKEN", "DRAIN_SECONDS", "ROOM_MODE"]);

/** Options of {@link fleetAdminRoutes}. */
export interface FleetAdminOptions {
  /**
   * Whether some node host has `image`. Default: with NODE_DRIVER=process every image is accepted
   * (process nodes run NODE_COMMAND; the image is the version's label); otherwise some DOCKER_HOSTS
   * engine must have it — or, with NODE_DRIVER=auto, no engine answers at all (processes then).
   */
  imageExists?: (image: string) => Promise<boolean>;
  /** The rollout store (default: Redis, on the gateway's connection). */
  rollouts?: RolloutStore;
}

/** The default image check (see FleetAdminOptions.imageExists). */
export function dockerImageCheck(config: GatewayDeps["config"]): (image: string) => Promise<boolean> {
  return async (image) => {
    if (config.nodeDriver === "process") return true;
    let answered = 0;
    for (const host of config.dockerHosts) {
      try {
        await dockerFromUrl(host).getImage(image).inspect();
        return true;
      } catch (e) {
        if (dockerStatus(e) !== undefined) answered++;
      }
    }
    return config.nodeDriver === "auto" && answered === 0;
  };
}

/** A rollout as the API shows it: the record, the nodes on each side now, and its timeline. */
async function rolloutView(store: RolloutStore, r: RolloutRecord, nodes: readonly NodeRecord[], activeVersion: string) {
  const brief = (n: NodeRecord) => ({ id: n.id, state: n.state, rooms: Math.max(n.rooms, n.reservedRooms), players: n.players });
  const isNew = (n: NodeRecord) => (n.version || activeVersion) === r.version;
  const fresh = nodes.filter(isNew);
  const old = nodes.filter((n) => !isNew(n) && n.state !== "stopped");
  const timeline = await store.events(r.id);
  const lastDrain = [...timeline].reverse().find((e) => e.event === "old node draining");
  return {
    id: r.id,
    version: r.version,
    image: r.image,
    fromVersion: r.fromVersion,
    fromImage: r.fromImage,
    state: r.state,
    ...(r.reason ? { reason: r.reason } : {}),
    canaryPercent: r.canaryPercent,
    maxSurge: r.maxSurge,
    drainDeadlineSeconds: r.drainDeadlineMs / 1000,
    startedAt: new Date(r.startedAt).toISOString(),
    ...(r.finishedAt ? { finishedAt: new Date(r.finishedAt).toISOString() } : {}),
    /** Old-version nodes still there, and new-version nodes ready. */
    oldNodes: old.length,
    newNodes: fresh.filter((n) => n.state === "ready").length,
    roomsOnOld: old.reduce((a, n) => a + Math.max(n.rooms, n.reservedRooms), 0),
    playersOnOld: old.reduce((a, n) => a + n.players, 0),
    /** When the last old node asked to drain is closed at the latest. */
    ...(lastDrain && r.state === "running" ? { drainDeadlineAt: new Date(lastDrain.at + r.drainDeadlineMs).toISOString() } : {}),
    failures: r.failures,
    old: old.map(brief),
    new: fresh.map(brief),
    startedBy: r.by,
    timeline: timeline.map((e) => ({ at: new Date(e.at).toISOString(), event: e.event, ...(e.detail ? { detail: e.detail } : {}) })),
  };
}

const NODE_ID_RE = /^[A-Za-z0-9_.-]{1,64}$/;
/** Longest drain deadline an admin may ask for: one day. */
const MAX_DEADLINE_SECONDS = 24 * 3600;

function field(body: unknown, name: string): unknown {
  return typeof body === "object" && body !== null ? (body as Record<string, unknown>)[name] : undefined;
}

/** `deadlineSeconds` of a drain or restart body: undefined, or 0..MAX_DEADLINE_SECONDS (400 INVALID_DEADLINE). */
function deadlineOf(body: unknown, name = "deadlineSeconds"): number | undefined {
  const raw = field(body, name);
  if (raw !== undefined && (typeof raw !== "number" || !Number.isFinite(raw) || raw < 0 || raw > MAX_DEADLINE_SECONDS)) {
    throw badRequest("INVALID_DEADLINE", `${name} must be a number from 0 to ${MAX_DEADLINE_SECONDS}`);
  }
  return raw;
}

/** A node id from the path (400 INVALID_NODE_ID) that names a node (404 NODE_NOT_FOUND). */
async function existingNode(deps: GatewayDeps, nodeId: string): Promise<NodeRecord> {
  if (!NODE_ID_RE.test(nodeId)) throw badRequest("INVALID_NODE_ID", "node ids are 1-64 of [A-Za-z0-9_.-]");
  const node = await deps.nodes.get(nodeId);
  if (!node) throw notFound("NODE_NOT_FOUND", `no node ${nodeId}`);
  return node;
}

export function fleetAdminRoutes(deps: GatewayDeps, opts: FleetAdminOptions = {}) {
  const scaleState = new ScaleStateStore(deps.redis, deps.keys);
  const store = opts.rollouts ?? new RedisRolloutStore(deps.redis, deps.keys, defaultVersion(deps.config.nodeImage));
  const imageExists = opts.imageExists ?? dockerImageCheck(deps.config);
  const rolloutOr404 = async (id: string): Promise<RolloutRecord> => {
    if (!ROLLOUT_ID_RE.test(id)) throw notFound("ROLLOUT_NOT_FOUND", `no rollout ${id.slice(0, 80)}`);
    const r = await store.get(id);
    if (!r) throw notFound("ROLLOUT_NOT_FOUND", `no rollout ${id}`);
    return r;
  };
  return (
    new Elysia({ name: "fleetAdminRoutes" })
      // The one renderer, installed here too so the plugin answers the same mounted alone (tests).
      .onError(({ code, error }) => renderError(code, error, deps.log))
      .get(
        "/v1/admin/fleet",
        async ({ request, set }) => {
          await requireAdmin(deps.auth, request);
          const [routing, nodes] = await Promise.all([store.routing(), deps.nodes.list()]);
          const id = routing.rolloutId ?? (await store.list(1))[0]?.id;
          const r = id ? await store.get(id) : undefined;
          return {
            versions: summarizeVersions(routing, nodes).map(({ byState: _b, ...v }) => v),
            canaryPercent: routing.target ? routing.canaryPercent : 100,
            ...(r ? { rollout: await rolloutView(store, r, nodes, r.state === "running" ? r.fromVersion : routing.active.version) } : {}),
          };
        },
        { detail: { summary: "Fleet versions and the current rollout (admin)", tags: ["admin"] } },
      )
      .get(
        "/v1/admin/fleet/rollouts",
        async ({ request, set }) => {
          await requireAdmin(deps.auth, request);
          const list = await store.list(50);
          return {
            rollouts: list.map((r) => ({
              id: r.id,
              version: r.version,
              image: r.image,
              state: r.state,
              ...(r.reason ? { reason: r.reason } : {}),
              startedAt: new Date(r.startedAt).toISOString(),
              ...(r.finishedAt ? { finishedAt: new Date(r.finishedAt).toISOString() } : {}),
            })),
          };
        },
        { detail: { summary: "Rollouts, newest first (admin)", tags: ["admin"] } },
      )
      .post(
        "/v1/admin/fleet/rollouts",
        async ({ body, request, set }) => {
          const claims = await requireAdmin(deps.auth, request);
          const image = field(body, "image");
          if (typeof image !== "string" || !IMAGE_RE.test(image)) throw badRequest("INVALID_IMAGE", "image must be an image reference (1-256 of [A-Za-z0-9._/:@-])");
          const rawVersion = field(body, "version");
          if (rawVersion !== undefined && (typeof rawVersion !== "string" || !VERSION_RE.test(rawVersion))) throw badRequest("INVALID_VERSION", "version must be 1-64 of [A-Za-z0-9_.-]");
          const version = rawVersion ?? versionOfImage(image);
          if (!VERSION_RE.test(version)) throw badRequest("INVALID_VERSION", `the image's tag is not a version; give version (1-64 of [A-Za-z0-9_.-])`);
          const canary = field(body, "canaryPercent") ?? 100;
          if (typeof canary !== "number" || !Number.isInteger(canary) || canary < 1 || canary > 100) throw badRequest("INVALID_CANARY", "canaryPercent must be a whole number from 1 to 100");
          const surge = field(body, "maxSurge") ?? 1;
          if (typeof surge !== "number" || !Number.isInteger(surge) || surge < 1 || surge > deps.config.maxServers)
            throw badRequest("INVALID_MAX_SURGE", `maxSurge must be a whole number from 1 to MAX_SERVERS (${deps.config.maxServers})`);
          const rawDeadline = deadlineOf(body, "drainDeadlineSeconds");
          const rawEnv = field(body, "env") ?? {};
          if (typeof rawEnv !== "object" || rawEnv === null || Array.isArray(rawEnv)) throw badRequest("INVALID_ENV", "env must be an object of string values");
          const env: Record<string, string> = {};
          for (const [k, v] of Object.entries(rawEnv as Record<string, unknown>)) {
            if (!ENV_NAME_RE.test(k) || RESERVED_ENV.has(k) || typeof v !== "string" || v.length > 4096)
              throw badRequest("INVALID_ENV", `env ${k.slice(0, 64)}: names are [A-Za-z_][A-Za-z0-9_]*, values strings; the node contract's variables are set by the scheduler`);
            env[k] = v;
          }
          const routing = await store.routing();
          if (routing.rolloutId) throw conflict("ROLLOUT_RUNNING", `rollout ${routing.rolloutId} is running; cancel it or wait`);
          if (version === routing.active.version) throw conflict("VERSION_ACTIVE", `version ${version} is already active`);
          if (!(await imageExists(image))) throw badRequest("IMAGE_NOT_FOUND", `no Docker host has the image ${image}`);
          const now = deps.clock.now();
          const nodes = await deps.nodes.list();
          const oldNodes = nodes.filter((n) => (n.version || routing.active.version) !== version && (n.state === "ready" || n.state === "unhealthy")).map((n) => n.id);
          const id = `ro-${now.toString(36)}-${crypto.randomUUID().slice(0, 8)}`;
          const drainDeadlineMs = rawDeadline === undefined ? deps.config.drainDeadlineMs : Math.round(rawDeadline * 1000);
          const res = await store.begin({ id, version, image, env, canaryPercent: canary, maxSurge: surge, drainDeadlineMs, startedAt: now, oldNodes, by: claims.sub });
          if (!res.ok) throw conflict("ROLLOUT_RUNNING", `rollout ${res.runningId} is running; cancel it or wait`);
          await store.event(id, {
            at: now,
            event: "started",
            detail: `${res.record.fromVersion} → ${version} (${image}), canary ${canary}%, maxSurge ${surge}, drain deadline ${drainDeadlineMs / 1000} s, ${oldNodes.length} old node(s), by ${claims.sub}`,
          });
          try {
            await deps.scheduler.requestRollout({ rolloutId: id });
          } catch (e) {
            // Without its job the rollout would hold the fleet forever: give it up at once.
            await store.finish(id, "cancelled", "could not queue the rollout job", deps.clock.now()).catch(() => {});
            throw e;
          }
          deps.log.info("rollout started", { rolloutId: id, version, image, canaryPercent: canary, maxSurge: surge, by: claims.sub });
          set.status = 202;
          return { rolloutId: id };
        },
        { detail: { summary: "Start a rollout to a new version (admin)", tags: ["admin"] } },
      )
      .get(
        "/v1/admin/fleet/rollouts/:id",
        async ({ params, request, set }) => {
          await requireAdmin(deps.auth, request);
          const r = await rolloutOr404(params.id);
          const [routing, nodes] = await Promise.all([store.routing(), deps.nodes.list()]);
          return rolloutView(store, r, nodes, r.state === "running" ? r.fromVersion : routing.active.version);
        },
        { detail: { summary: "A rollout's progress and timeline (admin)", tags: ["admin"] } },
      )
      .post(
        "/v1/admin/fleet/rollouts/:id/cancel",
        async ({ params, request, set }) => {
          const claims = await requireAdmin(deps.auth, request);
          const r = await rolloutOr404(params.id);
          const now = deps.clock.now();
          if (!(await store.finish(r.id, "cancelled", `cancelled by ${claims.sub}`, now))) throw conflict("ROLLOUT_NOT_RUNNING", `rollout ${r.id} is ${r.state}`);
          await store.event(r.id, { at: now, event: "cancelled", detail: `by ${claims.sub}; ${r.fromVersion} takes new rooms again` });
          deps.log.info("rollout cancelled", { rolloutId: r.id, by: claims.sub });
          set.status = 202;
          return { rolloutId: r.id, state: "cancelled" };
        },
        { detail: { summary: "Cancel a rollout: the old version takes new rooms again (admin)", tags: ["admin"] } },
      )
      .post(
        "/v1/admin/fleet/rollouts/:id/promote",
        async ({ params, request, set }) => {
          const claims = await requireAdmin(deps.auth, request);
          const r = await rolloutOr404(params.id);
          if (!(await store.promote(r.id))) throw conflict("ROLLOUT_NOT_RUNNING", `rollout ${r.id} is ${r.state}`);
          await store.event(r.id, { at: deps.clock.now(), event: "promoted", detail: `canary ${r.canaryPercent}% → 100% by ${claims.sub}` });
          set.status = 202;
          return { rolloutId: r.id, canaryPercent: 100 };
        },
        { detail: { summary: "Promote a canary to 100% (admin)", tags: ["admin"] } },
      )
      .post(
        "/v1/admin/nodes/:id/restart",
        async ({ body, params, request, set }) => {
          const claims = await requireAdmin(deps.auth, request);
          const node = await existingNode(deps, params.id);
          const nodeId = node.id;
          const raw = deadlineOf(body);
          if (node.state !== "ready" && node.state !== "unhealthy") throw conflict("NODE_NOT_RESTARTABLE", `node ${nodeId} is ${node.state}`);
          const deadlineMs = raw === undefined ? deps.config.drainDeadlineMs : Math.round(raw * 1000);
          await deps.scheduler.requestRestart({ nodeId, deadlineMs, reason: `admin restart by ${claims.sub}` });
          deps.log.info("admin restart requested", { nodeId, deadlineMs, by: claims.sub });
          set.status = 202;
          return { nodeId, state: node.state, deadlineSeconds: deadlineMs / 1000 };
        },
        { detail: { summary: "Restart a node: a replacement of its version first, then a drain (admin)", tags: ["admin"] } },
      )
      .post(
        "/v1/admin/scale",
        async ({ body, request, set }) => {
          const claims = await requireAdmin(deps.auth, request);
          const nodes = field(body, "nodes");
          if (typeof nodes !== "number" || !Number.isInteger(nodes) || nodes < 0 || nodes > deps.config.maxServers) {
            throw badRequest("INVALID_NODES", `nodes must be a whole number from 0 to MAX_SERVERS (${deps.config.maxServers})`);
          }
          await scaleState.setFloor(nodes, deps.clock.now(), claims.sub);
          deps.log.info("admin set the fleet floor", { nodes, by: claims.sub });
          set.status = 202;
          return { nodes, maxServers: deps.config.maxServers };
        },
        { detail: { summary: "Set the fleet's floor of ready nodes (admin)", tags: ["admin"] } },
      )
      .post(
        "/v1/admin/nodes/:id/drain",
        async ({ body, params, request, set }) => {
          const claims = await requireAdmin(deps.auth, request);
          const node = await existingNode(deps, params.id);
          const nodeId = node.id;
          const raw = deadlineOf(body);
          if (node.state !== "ready" && node.state !== "unhealthy" && node.state !== "draining") {
            throw conflict("NODE_NOT_DRAINABLE", `node ${nodeId} is ${node.state}`);
          }
          const deadlineMs = raw === undefined ? deps.config.drainDeadlineMs : Math.round(raw * 1000);
          await deps.scheduler.requestDrain({ nodeId, deadlineMs, reason: `admin drain by ${claims.sub}` });
          deps.log.info("admin drain requested", { nodeId, deadlineMs, by: claims.sub });
          set.status = 202;
          return { nodeId, state: node.state, deadlineSeconds: deadlineMs / 1000 };
        },
        { detail: { summary: "Drain a node (admin)", tags: ["admin"] } },
      )
  );
}
