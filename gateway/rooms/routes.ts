/** rooms, lobbies, invites, kicks, host transfer (issue 6). STUB: filled in by its feature; mounted by gateway/app.ts. */
import { Elysia } from "elysia";
import type { GatewayDeps } from "../deps.ts";

export function roomsRoutes(_deps: GatewayDeps) {
  return new Elysia({ name: "roomsRoutes" });
}
