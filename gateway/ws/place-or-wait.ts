/**
 * Finding a ready node for a WebSocket connect. Usually one placement call. When the fleet has no
 * room for it — the room's node was stopped for inactivity, or died, and no other node is free —
 * the gateway asks the scheduler (a wake of the room's stopped node, else one new node; the
 * request id is deterministic per room and lost node, so retrying clients do not multiply it) and
 * waits, woken by node events and bounded by JOIN_WAIT_TIMEOUT. Undefined past the bound: the
 * caller closes 4013 ("no capacity / node did not wake in time").
 */
import { AppError } from "../../core/errors.ts";
import type { NodeRecord } from "../../core/types.ts";
import type { GatewayDeps } from "../deps.ts";
import { mayScaleUp } from "../players/join.ts";
import type { NodeChangeWaiter } from "../players/node-events.ts";
import { openRegions, type RegionRanking } from "../../model/placement/region-choice.ts";

/** Re-check at least this often while waiting (a freed slot publishes no node event). */
const RECHECK_MS = 500;

export type PlaceDeps = Pick<GatewayDeps, "placement" | "nodes" | "scheduler" | "redis" | "keys" | "clock" | "config" | "log">;

/**
 * With `ranking` (a room whose creator's regions were ranked), the room goes to the first choice,
 * and to a fallback region only once this connect has waited REGION_FALLBACK_WAIT; capacity is
 * asked for in the first choice.
 */
export async function placeOrWait(deps: PlaceDeps, waiter: NodeChangeWaiter, roomCode: string, region: string | undefined, seats?: number, ranking?: RegionRanking): Promise<NodeRecord | undefined> {
  const { clock, config } = deps;
  const started = clock.now();
  const deadline = started + config.joinWaitTimeoutMs;
  let asked = false;
  for (;;) {
    try {
      const regions = ranking ? openRegions(ranking, clock.now() - started, config.regionFallbackWaitMs) : undefined;
      const node = await deps.placement.placeRoom(roomCode, { region: ranking?.best ?? region, now: clock.now(), ...(seats ? { seats } : {}), ...(regions ? { regions } : {}) });
      // A starting node (being woken) does not listen yet: wait for it to turn ready.
      if (node.state !== "starting") return node;
    } catch (err) {
      if (!(err instanceof AppError && err.status === 503)) throw err;
    }
    const now = clock.now();
    if (now >= deadline) return undefined;
    if (!asked) {
      asked = true;
      await askForCapacity(deps, roomCode, ranking?.best ?? region).catch((err: unknown) => deps.log.warn("capacity request failed", { roomCode, err }));
    }
    await waiter.next(Math.min(RECHECK_MS, deadline - now));
  }
}

async function askForCapacity(deps: PlaceDeps, roomCode: string, region: string | undefined): Promise<void> {
  const previous = await deps.redis.get(deps.keys.roomNode(roomCode));
  const node = previous ? await deps.nodes.get(previous) : undefined;
  if (node?.state === "stopped") {
    await deps.scheduler.requestWake({ nodeId: node.id, requestId: `connect-${roomCode}-${node.stoppedAt}` });
    return;
  }
  if (node?.state === "starting") return; // already on its way
  const fleet = await deps.nodes.list();
  if (!mayScaleUp(fleet, deps.config.maxServers)) return;
  await deps.scheduler.requestScaleUp({ count: 1, region: region ?? deps.config.region, reason: "connect: no node for the room", requestId: `connect-${roomCode}-${previous ?? "new"}` });
}
