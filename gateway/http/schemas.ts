/**
 * Request schemas of the HTTP API, built from the one set of name patterns (core/names.ts). Routes
 * declare them as `body`/`query`/`params`, so Elysia validates with them and @elysiajs/openapi
 * documents them: the OpenAPI page cannot drift from what the routes accept.
 */
import { t } from "elysia";
import { NAME_PATTERN, PLAYER_ID_PATTERN, ROOM_CODE_PATTERN } from "../../core/names.ts";

export const RoomCode = t.String({ pattern: ROOM_CODE_PATTERN, description: "4-32 characters of [A-Za-z0-9_-]" });
/** A mode or region name. */
export const Name = t.String({ pattern: NAME_PATTERN, description: "1-32 characters of [A-Za-z0-9_.-]" });
export const PlayerId = t.String({ pattern: PLAYER_ID_PATTERN });
/** Measured round trips to regions, in ms (CONTRACT "Regions"). */
export const Latencies = t.Record(t.String({ pattern: NAME_PATTERN }), t.Number({ minimum: 0, maximum: 60_000 }), { maxProperties: 32 });

