/** POST /v1/admin/scale and POST /v1/admin/nodes/:id/drain (issue 4). STUB: filled in by its feature; mounted by gateway/app.ts. */
import { Elysia } from "elysia";
import type { GatewayDeps } from "../deps.ts";

export function fleetAdminRoutes(_deps: GatewayDeps) {
  return new Elysia({ name: "fleetAdminRoutes" });
}
