/** the BullMQ board at /admin/queues and the capacity dashboard at /admin (issue 5). STUB: filled in by its feature; mounted by gateway/app.ts. */
import { Elysia } from "elysia";
import type { GatewayDeps } from "../deps.ts";

export function adminRoutes(_deps: GatewayDeps) {
  return new Elysia({ name: "adminRoutes" });
}
