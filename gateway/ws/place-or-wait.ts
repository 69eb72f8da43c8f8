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
import { decideCapacity, waitForNode } from "../../model/placement/wait-for-node.ts";
import type { NodeChangeWaiter } from "../players/node-events.ts";
import { openRegions, type RegionRanking } from "../../model/placement/region-choice.ts";

export type PlaceDeps = Pick<GatewayDeps, "placement" | "nodes" | "scheduler" | "redis" | "keys" | "clock" | "config" | "log">;

/**
 * With `ranking` (a room whose creator's regions were ranked), the room goes to the first choice,
 * and to a fallback region only once this connect has waited REGION_FALLBACK_WAIT; capacity is
 * asked for in the first choice.
 */
export async function placeOrWait(deps: PlaceDeps, waiter: NodeChangeWaiter, roomCode: string, region: string | undefined, seats?: number, ranking?: RegionRanking): Promise<NodeRecord | undefined> {
  const { clock, config } = deps;
  return waitForNode({
    clock,
    timeoutMs: config.joinWaitTimeoutMs,
    ...(ranking?.fallbacks.length ? { wakeAtElapsedMs: config.regionFallbackWaitMs } : {}),
    nextChange: (ms) => waiter.next(ms),
    attempt: async (elapsed) => {
      try {
        const regions = ranking ? openRegions(ranking, elapsed, config.regionFallbackWaitMs) : undefined;
        const node = await deps.placement.placeRoom(roomCode, { region: ranking?.best ?? region, now: clock.now(), ...(seats ? { seats } : {}), ...(regions ? { regions } : {}) });
        // A starting node (being woken) does not listen yet: wait for it to turn ready.
        return node.state !== "starting" ? node : undefined;
      } catch (err) {
        if (err instanceof AppError && err.status === 503) return undefined;
        throw err;
      }
    },
    askForCapacity: async () => {
      // A connect keeps waiting even when nothing can be asked for: a seat freed by a leave may
      // let it in before the deadline (then it closes 4013).
      await askForCapacity(deps, roomCode, ranking?.best ?? region).catch((err: unknown) => deps.log.warn("capacity request failed", { roomCode, err }));
      return "wait";
    },
  });
}

async function askForCapacity(deps: PlaceDeps, roomCode: string, region: string | undefined): Promise<void> {
  const previous = await deps.redis.get(deps.keys.roomNode(roomCode));
  const roomNode = previous ? await deps.nodes.get(previous) : undefined;
  const ask = decideCapacity({ fleet: await deps.nodes.list(), ...(roomNode ? { roomNode } : {}), maxServers: deps.config.maxServers, fallbacksLater: false });
  if (ask.kind === "wake") await deps.scheduler.requestWake({ nodeId: ask.nodeId, requestId: `connect-${roomCode}-${roomNode!.stoppedAt}` });
  else if (ask.kind === "scale-up") await deps.scheduler.requestScaleUp({ count: 1, region: region ?? deps.config.region, reason: "connect: no node for the room", requestId: `connect-${roomCode}-${previous ?? "new"}` });
}
