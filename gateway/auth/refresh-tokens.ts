/**
 * Refresh tokens: opaque random strings whose identity (player id, name, region, roles) lives in
 * Redis until used. A refresh token works once: `consume` is a single GETDEL, so two concurrent
 * refreshes with the same token cannot both succeed.
 */
import { randomBytes } from "node:crypto";
import type { Keys } from "../../core/keys.ts";
import type { Redis } from "../../core/redis.ts";
import type { Claims } from "../contracts.ts";

export type RefreshIdentity = Omit<Claims, "exp">;

const TOKEN_RE = /^rt_[A-Za-z0-9_-]{43}$/;

export class RefreshTokenStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    /** REFRESH_TTL. */
    private readonly ttlMs: number,
  ) {}

  /** Stores `identity` under a new single-use token and returns the token. */
  async create(identity: RefreshIdentity): Promise<string> {
    const token = `rt_${randomBytes(32).toString("base64url")}`;
    await this.redis.set(this.keys.refreshToken(token), JSON.stringify(identity), "PX", this.ttlMs);
    return token;
  }

  /** The identity behind `token`, deleting it in the same step; null when unknown, used or expired. */
  async consume(token: unknown): Promise<RefreshIdentity | null> {
    if (typeof token !== "string" || !TOKEN_RE.test(token)) return null;
    const raw = await this.redis.getdel(this.keys.refreshToken(token));
    if (!raw) return null;
    try {
      const v = JSON.parse(raw) as RefreshIdentity;
      return typeof v.sub === "string" && Array.isArray(v.roles) ? v : null;
    } catch {
      return null;
    }
  }
}
