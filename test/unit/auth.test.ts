import { describe, expect, test } from "bun:test";
import { generateKeyPairSync, createHmac } from "node:crypto";
import { Elysia } from "elysia";
import { FakeClock } from "../../core/clock.ts";
import { AppError } from "../../core/errors.ts";
import { JwtAuthenticator, jwtKeysFromConfig, toClaims } from "../../gateway/auth/jwt.ts";
import { cleanDisplayName } from "../../gateway/auth/routes.ts";
import { requireAdmin, requireClaims, type Claims } from "../../gateway/contracts.ts";

const SECRET = "unit-secret-0123456789abcdef";
const player: Omit<Claims, "exp"> = { sub: "p_1", name: "Ann", region: "eu", roles: ["player"] };
const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");

function hs(alg: "HS256" | "HS384", payload: Record<string, unknown>, secret = SECRET): string {
  const head = `${b64({ alg, typ: "JWT" })}.${b64(payload)}`;
  const sig = createHmac(alg === "HS256" ? "sha256" : "sha384", secret).update(head).digest("base64url");
  return `${head}.${sig}`;
}

describe("JwtAuthenticator (HS256)", () => {
  const clock = new FakeClock(1_800_000_000_000);
  const auth = new JwtAuthenticator({ alg: "HS256", secret: SECRET }, 60_000, clock);
  const exp = Math.floor(clock.now() / 1000) + 60;

  test("a token it signed verifies to the CONTRACT claims", async () => {
    const { token, expiresAt } = await auth.sign(player, clock.now());
    expect(expiresAt).toBe(exp * 1000);
    expect(await auth.verify(token)).toEqual({ ...player, exp });
  });

  test.each<[string, () => Promise<string | undefined | null>]>([
    ["missing", async () => undefined],
    ["null", async () => null],
    ["empty", async () => ""],
    ["garbage", async () => "not-a-jwt"],
    ["alg none", async () => `${b64({ alg: "none", typ: "JWT" })}.${b64({ ...player, exp })}.`],
    ["alg none with a signature", async () => `${b64({ alg: "none" })}.${b64({ ...player, exp })}.abc`],
    ["wrong secret", async () => hs("HS256", { ...player, exp }, "some-other-secret-123456")],
    ["other HMAC alg with the right secret", async () => hs("HS384", { ...player, exp })],
    ["tampered payload", async () => {
      const [h, , s] = (await auth.sign(player, clock.now())).token.split(".");
      return `${h}.${b64({ ...player, roles: ["admin"], exp })}.${s}`;
    }],
    ["tampered signature", async () => {
      const t = (await auth.sign(player, clock.now())).token;
      return t.slice(0, -2) + (t.endsWith("AA") ? "BB" : "AA");
    }],
    ["no exp", async () => hs("HS256", { ...player })],
    ["unknown role", async () => hs("HS256", { ...player, roles: ["root"], exp })],
    ["no sub", async () => hs("HS256", { name: "x", roles: ["player"], exp })],
    ["oversized", async () => "a".repeat(9000)],
  ])("refuses %s", async (_name, make) => {
    expect(await auth.verify(await make())).toBeNull();
  });

  test("refuses an expired token (by the injected clock)", async () => {
    const c = new FakeClock(1_800_000_000_000);
    const a = new JwtAuthenticator({ alg: "HS256", secret: SECRET }, 10_000, c);
    const { token } = await a.sign(player, c.now());
    expect(await a.verify(token)).not.toBeNull();
    c.advance(11_000);
    expect(await a.verify(token)).toBeNull();
  });
});

describe("JwtAuthenticator (RS256 / ES256)", () => {
  test.each(["RS256", "ES256"] as const)("%s signs with the private key, verifies with the public key", async (alg) => {
    const pair =
      alg === "RS256"
        ? generateKeyPairSync("rsa", { modulusLength: 2048, publicKeyEncoding: { type: "spki", format: "pem" }, privateKeyEncoding: { type: "pkcs8", format: "pem" } })
        : generateKeyPairSync("ec", { namedCurve: "P-256", publicKeyEncoding: { type: "spki", format: "pem" }, privateKeyEncoding: { type: "pkcs8", format: "pem" } });
    const keys = jwtKeysFromConfig({ jwtAlg: alg, jwtPublicKey: pair.publicKey, jwtPrivateKey: pair.privateKey.replace(/\n/g, "\\n") }, undefined);
    const auth = new JwtAuthenticator(keys, 60_000);
    const { token } = await auth.sign(player, Date.now());
    expect((await auth.verify(token))?.sub).toBe("p_1");
    // A verifier with only the public key still verifies, but cannot sign.
    const verifyOnly = new JwtAuthenticator({ alg, publicKeyPem: pair.publicKey }, 60_000);
    expect((await verifyOnly.verify(token))?.sub).toBe("p_1");
    expect(verifyOnly.sign(player, Date.now())).rejects.toThrow();
    // Algorithm confusion: an HS256 token keyed with the public PEM is refused.
    expect(await auth.verify(hs("HS256", { ...player, exp: Math.floor(Date.now() / 1000) + 60 }, pair.publicKey))).toBeNull();
  });
});

describe("toClaims", () => {
  test.each<[string, Record<string, unknown>, boolean]>([
    ["full", { sub: "a", name: "n", region: "r", roles: ["player"], exp: 1 }, true],
    ["admin+player", { sub: "a", roles: ["admin", "player"], exp: 1 }, true],
    ["empty roles", { sub: "a", roles: [], exp: 1 }, false],
    ["roles not array", { sub: "a", roles: "admin", exp: 1 }, false],
    ["exp string", { sub: "a", roles: ["player"], exp: "1" }, false],
    ["sub empty", { sub: "", roles: ["player"], exp: 1 }, false],
  ])("%s", (_n, payload, ok) => {
    expect(toClaims(payload) !== null).toBe(ok);
  });
});

describe("requireClaims / requireAdmin on a route", () => {
  const clock = new FakeClock(1_800_000_000_000);
  const auth = new JwtAuthenticator({ alg: "HS256", secret: SECRET }, 60_000, clock);
  const app = new Elysia()
    .onError(({ error }) => (error instanceof AppError ? new Response(JSON.stringify(error.toBody()), { status: error.status }) : new Response("x", { status: 500 })))
    .get("/me", async ({ request }) => (await requireClaims(auth, request)).sub)
    .get("/admin", async ({ request }) => (await requireAdmin(auth, request)).sub);
  const get = (path: string, token?: string) => app.handle(new Request(`http://localhost${path}`, token ? { headers: { authorization: `Bearer ${token}` } } : {}));

  test("401 without a token, 401 with a bad one, 403 for a player on an admin route, 200 for an admin", async () => {
    const p = (await auth.sign(player, clock.now())).token;
    const a = (await auth.sign({ ...player, sub: "admin", roles: ["admin"] }, clock.now())).token;
    expect((await get("/admin")).status).toBe(401);
    expect((await get("/admin", "bad.token.here")).status).toBe(401);
    const forbidden = await get("/admin", p);
    expect(forbidden.status).toBe(403);
    expect(((await forbidden.json()) as { error: { code: string } }).error.code).toBe("NOT_ADMIN");
    expect((await get("/admin", a)).status).toBe(200);
    expect(await (await get("/me", p)).text()).toBe("p_1");
  });
});

describe("cleanDisplayName", () => {
  test.each<[string | undefined, string]>([
    [undefined, "fallback"],
    ["", "fallback"],
    ["  Ann  ", "Ann"],
    ["a\u0000b\u001fc", "abc"],
    ["x".repeat(40), "x".repeat(32)],
  ])("%p → %p", (input, want) => {
    expect(cleanDisplayName(input, "fallback")).toBe(want);
  });
});
