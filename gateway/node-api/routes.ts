/**
 * The node API (CONTRACT "Session resume"): what game-server nodes call on the gateway, at
 * FLEETGATE_URL, with their `X-Node-Token`.
 *
 * - `PUT /v1/node/rooms/:code/snapshot` — body: the snapshot's bytes (any content type), at most
 *   SNAPSHOT_MAX_BYTES (413 above) → 204. Kept SNAPSHOT_TTL after the last write; deleted when the
 *   room closes.
 * - `GET /v1/node/rooms/:code/snapshot` → 200 with the bytes (`application/octet-stream`), or 204
 *   when the room has none.
 *
 * A node reads and writes only rooms placed on it: the token must be the token of the node the
 * room is placed on (401 without a token, 403 otherwise, 400 for a bad room code). The write is a
 * compare-and-set on the placement (model/snapshots.ts), so a lost node's late write cannot
 * overwrite the snapshot of the node that took the room over.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { Elysia } from "elysia";
import { badRequest, forbidden, tooLarge, unauthorized } from "../../core/errors.ts";
import { renderError } from "../http/errors.ts";
import { parseRoomCode, ROOM_CODE_RULE } from "../../core/names.ts";
import { RedisSnapshotStore, type SnapshotStore } from "../../model/snapshots.ts";
import type { GatewayDeps } from "../deps.ts";

export type NodeApiDeps = Pick<GatewayDeps, "config" | "redis" | "keys" | "nodes" | "log">;

/** Constant-time comparison of two tokens (hashed first: neither where they differ nor the length leaks). */
function sameToken(a: string, b: string): boolean {
  return timingSafeEqual(createHash("sha256").update(a).digest(), createHash("sha256").update(b).digest());
}

export function nodeApiRoutes(deps: NodeApiDeps, store: SnapshotStore = new RedisSnapshotStore(deps.redis, deps.keys)) {
  const c = deps.config;

  /** The room code from the path and the id of the node it is placed on, if the caller is that node. */
  const authorize = async (request: Request, rawCode: string | undefined): Promise<{ code: string; nodeId: string }> => {
    const code = parseRoomCode(rawCode ?? null);
    if (!code) throw badRequest("INVALID_ROOM_CODE", `room code must be ${ROOM_CODE_RULE}`);
    const token = request.headers.get("x-node-token");
    if (!token) throw unauthorized("NODE_TOKEN_MISSING", "X-Node-Token is required");
    const nodeId = await deps.redis.get(deps.keys.roomNode(code));
    const node = nodeId ? await deps.nodes.get(nodeId) : undefined;
    if (!node || !sameToken(node.token, token)) throw forbidden("NOT_YOUR_ROOM", "this room is not placed on the node with this token");
    return { code, nodeId: node.id };
  };

  return new Elysia({ name: "nodeApiRoutes" })
    .onError(({ code, error }) => renderError(code, error, deps.log))
    .put(
      "/v1/node/rooms/:code/snapshot",
      async ({ request, params, set }) => {
        const declared = Number(request.headers.get("content-length") ?? 0);
        if (declared > c.snapshotMaxBytes) throw tooLarge("SNAPSHOT_TOO_LARGE", `snapshot above SNAPSHOT_MAX_BYTES (${c.snapshotMaxBytes} bytes)`);
        const { code, nodeId } = await authorize(request, params.code);
        const bytes = new Uint8Array(await request.arrayBuffer());
        if (bytes.byteLength > c.snapshotMaxBytes) throw tooLarge("SNAPSHOT_TOO_LARGE", `snapshot above SNAPSHOT_MAX_BYTES (${c.snapshotMaxBytes} bytes)`);
        if (!(await store.put(code, nodeId, bytes, c.snapshotTtlMs))) throw forbidden("NOT_YOUR_ROOM", "the room moved to another node");
        set.status = 204;
        return undefined;
      },
      { parse: "none", detail: { summary: "A node saves its room's snapshot (session resume)", tags: ["node"] } },
    )
    .get(
      "/v1/node/rooms/:code/snapshot",
      async ({ request, params }) => {
        const { code } = await authorize(request, params.code);
        const bytes = await store.get(code);
        if (!bytes) return new Response(null, { status: 204 });
        return new Response(new Uint8Array(bytes), { status: 200, headers: { "content-type": "application/octet-stream" } });
      },
      { detail: { summary: "The node taking a room over reads its last snapshot (204 when none)", tags: ["node"] } },
    );
}
