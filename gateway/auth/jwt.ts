/**
 * JWT signing and verification through @elysiajs/jwt (jose underneath). HS256 with a shared
 * secret, or RS256/ES256 with a PEM key pair (the gateway only needs the public key to verify; the
 * private key signs guest tokens and `npm run token`).
 *
 * Verification pins the algorithm: a token whose header says `none`, or another algorithm than the
 * configured one (the classic HS256-with-the-public-key confusion), is refused, as are expired,
 * tampered and wrongly-signed tokens and any whose claims do not have the CONTRACT shape.
 */
import { jwt } from "@elysiajs/jwt";
import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { realClock, type Clock } from "../../core/clock.ts";
import type { JwtAlgorithm } from "../../core/config.ts";
import type { Authenticator, Claims, Role, TokenSigner } from "../contracts.ts";

/** Key material for one deployment. */
export type JwtKeys =
  | { alg: "HS256"; secret: string }
  | { alg: "RS256" | "ES256"; publicKeyPem: string; privateKeyPem?: string | undefined };

const ROLES: readonly Role[] = ["player", "admin"];

/** Builds the key material from config (`secret` already resolved by main: env or DATA_DIR file). */
export function jwtKeysFromConfig(cfg: { jwtAlg: JwtAlgorithm; jwtPublicKey: string | undefined; jwtPrivateKey: string | undefined }, secret: string | undefined): JwtKeys {
  if (cfg.jwtAlg === "HS256") {
    if (!secret) throw new Error("HS256 needs a secret");
    return { alg: "HS256", secret };
  }
  if (!cfg.jwtPublicKey) throw new Error(`${cfg.jwtAlg} needs JWT_PUBLIC_KEY`);
  return { alg: cfg.jwtAlg, publicKeyPem: pem(cfg.jwtPublicKey), privateKeyPem: cfg.jwtPrivateKey ? pem(cfg.jwtPrivateKey) : undefined };
}

/** PEM from an env var may carry literal `\n` sequences. */
function pem(s: string): string {
  return s.includes("\\n") ? s.replace(/\\n/g, "\n") : s;
}

type JwtPluginKey = string | KeyObject;
/** The decorator @elysiajs/jwt installs; taken from the plugin so the signing code is the library's. */
type JwtHelper = ReturnType<typeof makeHelper>;

function makeHelper(key: JwtPluginKey, alg: JwtAlgorithm) {
  // The plugin's types accept a string or a CryptoKey/KeyObject-like key; jose accepts KeyObject.
  return jwt({ name: "jwt", secret: key as string, alg }).decorator.jwt;
}

/** Verifies and signs JWTs; implements the gateway's Authenticator and TokenSigner seams. */
export class JwtAuthenticator implements Authenticator, TokenSigner {
  private readonly verifier: JwtHelper;
  private readonly signer: JwtHelper | undefined;
  private readonly alg: JwtAlgorithm;

  constructor(
    keys: JwtKeys,
    /** Default access-token lifetime (JWT_TTL). */
    private readonly defaultTtlMs: number,
    /** Time for `exp` checks (a FakeClock in tests). */
    private readonly clock: Pick<Clock, "now"> = realClock,
  ) {
    this.alg = keys.alg;
    if (keys.alg === "HS256") {
      this.verifier = makeHelper(keys.secret, "HS256");
      this.signer = this.verifier;
    } else {
      this.verifier = makeHelper(createPublicKey(keys.publicKeyPem), keys.alg);
      this.signer = keys.privateKeyPem ? makeHelper(createPrivateKey(keys.privateKeyPem), keys.alg) : undefined;
    }
  }

  async verify(token: string | undefined | null): Promise<Claims | null> {
    if (!token || token.length > 8192) return null;
    try {
      // `algorithms` pins the header's alg: `none` and algorithm substitution are refused by jose.
      const payload = await this.verifier.verify(token, { algorithms: [this.alg], currentDate: new Date(this.clock.now()) });
      return payload ? toClaims(payload) : null;
    } catch {
      return null;
    }
  }

  async sign(claims: Omit<Claims, "exp">, now: number, ttlMs = this.defaultTtlMs): Promise<{ token: string; expiresAt: number }> {
    if (!this.signer) throw new Error(`cannot sign ${this.alg} tokens without JWT_PRIVATE_KEY`);
    const exp = Math.floor((now + ttlMs) / 1000);
    const token = await this.signer.sign({ sub: claims.sub, name: claims.name, region: claims.region, roles: [...claims.roles], exp });
    return { token, expiresAt: exp * 1000 };
  }
}

/** The CONTRACT claims of a verified payload, or null when its shape is wrong. */
export function toClaims(p: Record<string, unknown>): Claims | null {
  const { sub, name, region, roles, exp } = p;
  if (typeof sub !== "string" || sub.length === 0 || sub.length > 128) return null;
  if (typeof exp !== "number" || !Number.isFinite(exp)) return null;
  if (!Array.isArray(roles) || roles.length === 0 || !roles.every((r): r is Role => (ROLES as readonly unknown[]).includes(r))) return null;
  return { sub, name: typeof name === "string" ? name : "", region: typeof region === "string" ? region : "", roles, exp };
}
