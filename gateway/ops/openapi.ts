/**
 * The public API as an OpenAPI 3.1 document, written by hand from CONTRACT.md (no extra
 * dependency), and a docs page that renders it without any CDN.
 */

type Schema = Record<string, unknown>;

const str = (extra: Schema = {}): Schema => ({ type: "string", ...extra });
const int = (extra: Schema = {}): Schema => ({ type: "integer", ...extra });
const obj = (properties: Record<string, Schema>, required: string[] = []): Schema => ({ type: "object", properties, ...(required.length ? { required } : {}) });
const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Schema) => ({ "application/json": { schema } });
const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [String(c), { description: ERROR_TEXT[c] ?? "error", content: json(ref("Error")) }]));
const ERROR_TEXT: Record<number, string> = { 400: "bad input", 401: "no or bad token", 403: "not allowed", 404: "unknown", 409: "conflict", 429: "rate limited", 503: "no capacity" };
const bearer = [{ bearer: [] }];
const roomCode = str({ pattern: "^[A-Za-z0-9_-]{4,32}$" });

interface Op {
  summary: string;
  tags: string[];
  security?: unknown[];
  requestBody?: unknown;
  parameters?: unknown[];
  responses: Record<string, unknown>;
}
const op = (summary: string, tag: string, responses: Record<string, unknown>, extra: Partial<Op> = {}): Op => ({ summary, tags: [tag], responses, ...extra });
const body = (schema: Schema) => ({ required: true, content: json(schema) });
const ok = (status: number, schema?: Schema, description = "ok") => ({ [String(status)]: schema ? { description, content: json(schema) } : { description } });

export function openApiDocument(): Record<string, unknown> {
  const nodeState = str({ enum: ["starting", "ready", "draining", "stopping", "stopped", "unhealthy"] });
  return {
    openapi: "3.1.0",
    info: { title: "fleetgate", version: "0.1.0", description: "Fleet gateway and scheduler for session-based multiplayer games. WebSocket: GET /v1/connect?room=CODE (see the close codes in the description of that path)." },
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT" } },
      schemas: {
        Error: obj({ error: obj({ code: str(), message: str() }, ["code", "message"]) }, ["error"]),
        Node: obj({ id: str(), state: nodeState, health: str({ enum: ["healthy", "degraded", "unhealthy", "maintenance"] }), host: str(), port: int(), region: str(), rooms: int(), players: int(), capacity: int(), startedAt: str({ format: "date-time" }), lastSeenAt: str({ format: "date-time" }) }),
        Room: obj({ code: roomCode, mode: str(), region: str(), visibility: str({ enum: ["public", "private"] }), state: str({ enum: ["waiting", "starting", "active", "ending", "completed"] }), players: { type: "array", items: str() }, maxPlayers: int(), hostId: str(), nodeId: { type: ["string", "null"] } }),
      },
    },
    paths: {
      "/v1/auth/guest": { post: op("Guest sign-in", "auth", { ...ok(201, obj({ token: str(), refreshToken: str(), playerId: str(), expiresAt: int() })), ...errors(400, 404, 429) }, { requestBody: { required: false, content: json(obj({ displayName: str({ maxLength: 64 }), region: str() })) } }) },
      "/v1/auth/refresh": { post: op("Exchange a refresh token (single use)", "auth", { ...ok(200, obj({ token: str(), refreshToken: str(), expiresAt: int() })), ...errors(400, 401) }, { requestBody: body(obj({ refreshToken: str() }, ["refreshToken"])) }) },
      "/v1/players/join": { post: op("Join: a game-server seat", "players", { ...ok(201, obj({ sessionId: str(), playerId: str(), roomCode, nodeId: str(), connectUrl: str(), heartbeatIntervalMs: int() })), ...errors(400, 401, 503) }, { security: bearer, requestBody: { required: false, content: json(obj({ region: str(), mode: str() })) } }) },
      "/v1/players/heartbeat": { post: op("Keep a session alive", "players", { ...ok(204), ...errors(400, 401, 404) }, { security: bearer, requestBody: body(obj({ sessionId: str() }, ["sessionId"])) }) },
      "/v1/players/leave": { post: op("Leave a session", "players", { ...ok(204), ...errors(400, 401, 404) }, { security: bearer, requestBody: body(obj({ sessionId: str() }, ["sessionId"])) }) },
      "/v1/rooms": {
        post: op("Create a room (caller is host)", "rooms", { ...ok(201, ref("Room")), ...errors(400, 401, 503) }, { security: bearer, requestBody: body(obj({ mode: str(), visibility: str({ enum: ["public", "private"] }), password: str(), maxPlayers: int(), region: str(), settings: { type: "object" } }, ["visibility"])) }),
        get: op("Public rooms with open seats", "rooms", { ...ok(200, { type: "array", items: ref("Room") }), ...errors(401) }, { security: bearer, parameters: [{ name: "mode", in: "query", schema: str() }, { name: "region", in: "query", schema: str() }] }),
      },
      "/v1/rooms/{code}": { get: op("A room", "rooms", { ...ok(200, ref("Room")), ...errors(400, 401, 404) }, { security: bearer, parameters: [{ name: "code", in: "path", required: true, schema: roomCode }] }) },
      "/v1/rooms/{code}/join": { post: op("Take a seat", "rooms", { ...ok(200, obj({ seatToken: str(), connectUrl: str() })), ...errors(400, 401, 403, 404, 409) }, { security: bearer, parameters: [{ name: "code", in: "path", required: true, schema: roomCode }] }) },
      "/v1/rooms/{code}/leave": { post: op("Leave a room", "rooms", { ...ok(200, obj({ left: { type: "boolean" }, closed: { type: "boolean" }, hostId: { type: ["string", "null"] } })), ...errors(401, 404) }, { security: bearer, parameters: [{ name: "code", in: "path", required: true, schema: roomCode }] }) },
      "/v1/rooms/{code}/invite": { post: op("Invite a player (private rooms)", "rooms", { ...ok(200, obj({ invited: str() })), ...errors(400, 401, 403, 404) }, { security: bearer, parameters: [{ name: "code", in: "path", required: true, schema: roomCode }], requestBody: body(obj({ playerId: str() }, ["playerId"])) }) },
      "/v1/rooms/{code}/kick": { post: op("Kick a player (host); their socket closes 4003", "rooms", { ...ok(200, obj({ kicked: str(), wasSeated: { type: "boolean" } })), ...errors(400, 401, 403, 404) }, { security: bearer, parameters: [{ name: "code", in: "path", required: true, schema: roomCode }], requestBody: body(obj({ playerId: str() }, ["playerId"])) }) },
      "/v1/rooms/{code}/host": { post: op("Hand the host role over (host)", "rooms", { ...ok(200), ...errors(400, 401, 403, 404) }, { security: bearer, parameters: [{ name: "code", in: "path", required: true, schema: roomCode }], requestBody: body(obj({ playerId: str() }, ["playerId"])) }) },
      "/v1/matchmaking/tickets": { post: op("Queue for a match", "matchmaking", { ...ok(201, obj({ ticketId: str() })), ...errors(400, 401) }, { security: bearer, requestBody: body(obj({ mode: str(), region: str() }, ["mode"])) }) },
      "/v1/matchmaking/tickets/{id}": {
        get: op("Ticket status", "matchmaking", { ...ok(200, obj({ status: str({ enum: ["queued", "matched", "cancelled", "expired"] }), roomCode, seatToken: str(), connectUrl: str() })), ...errors(401, 404) }, { security: bearer, parameters: [{ name: "id", in: "path", required: true, schema: str() }] }),
        delete: op("Cancel a ticket", "matchmaking", { ...ok(200, obj({ ticketId: str(), status: str() })), ...errors(401, 404) }, { security: bearer, parameters: [{ name: "id", in: "path", required: true, schema: str() }] }),
      },
      "/v1/connect": {
        get: op(
          "WebSocket relay to the room's game server. Token: Sec-WebSocket-Protocol `bearer, <jwt>` or ?token=. Close codes: 4001 bad token, 4003 not seated/kicked, 4004 unknown room, 4008 room full, 4009 reconnect after the delay in the reason, 4013 no capacity, 4029 rate limited, 1009 frame too large, 1011 upstream error.",
          "websocket",
          { "101": { description: "switching protocols" }, ...errors(400, 401, 429) },
          { parameters: [{ name: "room", in: "query", required: true, schema: roomCode }, { name: "token", in: "query", schema: str() }, { name: "seat", in: "query", schema: str() }] },
        ),
      },
      "/v1/servers": { get: op("Game-server nodes", "ops", ok(200, { type: "array", items: ref("Node") })) },
      "/v1/capacity": { get: op("Fleet capacity", "ops", ok(200, obj({ players: int(), capacity: int(), utilization: { type: "number" }, nodes: { type: "object" }, queuedJobs: int() }))) },
      "/v1/admin/scale": { post: op("Scale the fleet (admin)", "admin", { ...ok(202), ...errors(400, 401, 403) }, { security: bearer, requestBody: body(obj({ nodes: int({ minimum: 0 }) }, ["nodes"])) }) },
      "/v1/admin/nodes/{id}/drain": { post: op("Drain a node (admin)", "admin", { ...ok(202), ...errors(401, 403, 404) }, { security: bearer, parameters: [{ name: "id", in: "path", required: true, schema: str() }], requestBody: { required: false, content: json(obj({ deadlineSeconds: int() })) } }) },
      "/health": { get: op("Liveness", "ops", ok(200, obj({ status: str() }))) },
      "/ready": { get: op("Readiness (Redis answers)", "ops", { ...ok(200), "503": { description: "Redis does not answer", content: json(ref("Error")) } }) },
      "/metrics": { get: op("Prometheus metrics", "ops", { "200": { description: "text exposition", content: { "text/plain": { schema: str() } } } }) },
    },
  };
}

/** A self-contained page listing every operation of /openapi.json. */
export function docsPage(): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fleetgate API</title>
<style>body{font:14px/1.5 system-ui,sans-serif;max-width:960px;margin:2rem auto;padding:0 1rem}code{background:#f3f3f3;padding:0 .25rem}
.m{display:inline-block;min-width:4.5rem;font-weight:600;text-transform:uppercase}.op{border-bottom:1px solid #eee;padding:.4rem 0}</style></head>
<body><h1>fleetgate API</h1><p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).</p><div id="ops">loading…</div>
<script>
fetch("/openapi.json").then(r=>r.json()).then(doc=>{
  const el=document.getElementById("ops");el.textContent="";
  for(const [path,item] of Object.entries(doc.paths)) for(const [method,op] of Object.entries(item)){
    const d=document.createElement("div");d.className="op";
    const m=document.createElement("span");m.className="m";m.textContent=method;
    const c=document.createElement("code");c.textContent=path;
    const s=document.createElement("div");s.textContent=op.summary+" — responses: "+Object.keys(op.responses).join(", ")+(op.security?" — bearer token":"");
    d.append(m,c,s);el.append(d);
  }
});
</script></body></html>`;
}
