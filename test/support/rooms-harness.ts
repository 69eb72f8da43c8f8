/**
 * Test support for rooms and matchmaking: a fixed-claims Authenticator, the deps the rooms and
 * matchmaking routes need over a TestRedis, and a JSON request helper for `app.handle`.
 */
import { testConfig, type Config } from "../../core/config.ts";
import type { Clock } from "../../core/clock.ts";
import { silentLogger } from "../../core/log.ts";
import type { Authenticator, Claims, Placement } from "../../gateway/contracts.ts";
import type { RoomsDeps } from "../../gateway/rooms/routes.ts";
import type { TestRedis } from "./services.ts";

/**
 * Tokens are `player:<id>` or `admin:<id>`; anything else is rejected. No signatures: the routes
 * only depend on the Authenticator interface, and the real JWT verifier is tested by its owner.
 */
export class FixedTokenAuth implements Authenticator {
  async verify(token: string | undefined | null): Promise<Claims | null> {
    // Any subject is accepted, so tests can check what the routes do with unsafe ones.
    const m = /^(player|admin):(.{1,200})$/.exec(token ?? "");
    if (!m) return null;
    return { sub: m[2]!, name: m[2]!, region: "local", roles: m[1] === "admin" ? ["player", "admin"] : ["player"], exp: Math.floor(Date.now() / 1000) + 3600 };
  }
}

export const tokenOf = (playerId: string) => `player:${playerId}`;

/** A Placement that places nothing and records released rooms. */
export function recordingPlacement(): Placement & { released: string[] } {
  const released: string[] = [];
  return {
    released,
    async placeRoom() {
      throw new Error("placement is not part of these tests");
    },
    async placeRoomWithSeat() {
      throw new Error("placement is not part of these tests");
    },
    async nodeForRoom() {
      return undefined;
    },
    async releaseRoom(code: string) {
      released.push(code);
    },
  };
}

export function roomsDeps(tr: TestRedis, clock: Clock, config: Partial<Config> = {}): RoomsDeps & { placement: ReturnType<typeof recordingPlacement> } {
  return {
    redis: tr.redis,
    keys: tr.keys,
    clock,
    config: testConfig({ port: 3999, ...config }),
    auth: new FixedTokenAuth(),
    placement: recordingPlacement(),
    log: silentLogger,
  };
}

/** Something with Elysia's `handle`. */
export interface Handler {
  handle(request: Request): Promise<Response>;
}

export interface JsonResponse {
  status: number;
  // The body is whatever JSON the route returned; tests index into it.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- test-only convenience for reading JSON bodies
  body: any;
}

/** Sends a JSON request as `playerId` (or with no token when playerId is null). */
export async function call(app: Handler, method: string, path: string, playerId: string | null, body?: unknown, rawBody?: string): Promise<JsonResponse> {
  const headers: Record<string, string> = {};
  if (playerId !== null) headers.authorization = `Bearer ${playerId.includes(":") ? playerId : tokenOf(playerId)}`;
  if (body !== undefined || rawBody !== undefined) headers["content-type"] = "application/json";
  const res = await app.handle(
    new Request(`http://localhost${path}`, { method, headers, ...(rawBody !== undefined ? { body: rawBody } : body !== undefined ? { body: JSON.stringify(body) } : {}) }),
  );
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text so the assertion shows it
  }
  return { status: res.status, body: parsed };
}
