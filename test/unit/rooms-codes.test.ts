import { describe, expect, test } from "bun:test";
import { AppError } from "../../core/errors.ts";
import { ROOM_CODE_RE } from "../../core/keys.ts";
import { connectUrl } from "../../gateway/http/connect-url.ts";
import { jsonObjectBody } from "../../gateway/http/body.ts";
import { renderError } from "../../gateway/http/errors.ts";
import { assertRoomCode, generateRoomCode, randomToken, ROOM_CODE_ALPHABET } from "../../model/rooms/room-store.ts";

describe("room codes", () => {
  test("generated codes use only the unambiguous alphabet and pass validation", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const c = generateRoomCode();
      expect(c).toHaveLength(6);
      for (const ch of c) expect(ROOM_CODE_ALPHABET).toContain(ch);
      expect(ROOM_CODE_RE.test(c)).toBe(true);
      seen.add(c);
    }
    for (const ambiguous of ["0", "O", "1", "I", "L"]) expect(ROOM_CODE_ALPHABET).not.toContain(ambiguous);
    expect(seen.size).toBeGreaterThan(1990);
  });

  const table: [unknown, boolean][] = [
    ["ABCD", true],
    ["a-b_c", true],
    ["x".repeat(32), true],
    ["abc", false],
    ["x".repeat(33), false],
    ["ab cd", false],
    ["room:1", false],
    ["röom", false],
    ["", false],
    [undefined, false],
    [42, false],
  ];
  for (const [code, ok] of table) {
    test(`assertRoomCode(${JSON.stringify(code)}) ${ok ? "accepts" : "rejects with 400"}`, () => {
      if (ok) expect(assertRoomCode(code)).toBe(code as string);
      else {
        try {
          assertRoomCode(code);
          throw new Error("accepted");
        } catch (e) {
          expect(e).toBeInstanceOf(AppError);
          expect((e as AppError).status).toBe(400);
          expect((e as AppError).code).toBe("INVALID_ROOM_CODE");
        }
      }
    });
  }

  test("seat tokens are 128-bit base64url", () => {
    const t = randomToken();
    expect(t).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(randomToken()).not.toBe(t);
  });
});

describe("http helpers (gateway/http)", () => {
  const req = (url = "http://play.local:8080/v1/rooms", headers: Record<string, string> = {}) => new Request(url, { method: "POST", headers });

  test("connectUrl: PUBLIC_URL when set, else the scheme and Host the client called (the edge, not the gateway's port)", () => {
    expect(connectUrl(undefined, req(), "ABCD", "tok")).toBe("ws://play.local:8080/v1/connect?room=ABCD&seat=tok");
    expect(connectUrl(undefined, req("http://10.0.0.2:3000/x", { host: "edge.example:8080", "x-forwarded-proto": "https" }), "ABCD")).toBe("wss://edge.example:8080/v1/connect?room=ABCD");
    expect(connectUrl("wss://play.example.com/", req(), "ABCD", "t-_")).toBe("wss://play.example.com/v1/connect?room=ABCD&seat=t-_");
    expect(connectUrl("https://play.example.com", req(), "ABCD")).toBe("wss://play.example.com/v1/connect?room=ABCD");
  });

  test("jsonObjectBody: strict JSON objects, optional only where asked, size-bounded, unknown fields named", async () => {
    const parse = (body: string | undefined, opts = {}) => jsonObjectBody(opts)({ request: new Request("http://x/", { method: "POST", ...(body === undefined ? {} : { body }) }) });
    expect(await parse('{"a":1}')).toEqual({ a: 1 });
    expect(await parse(undefined, { optional: true })).toEqual({});
    for (const bad of ["", "null", "\"str\"", "1", "[1]", "{bad"]) await expect(parse(bad)).rejects.toBeInstanceOf(AppError);
    await expect(parse('{"a":1,"b":2}', { fields: ["a"] })).rejects.toMatchObject({ status: 400, details: { field: "b" } });
    await expect(parse('{"s":[1]}', { objects: ["s"] })).rejects.toMatchObject({ status: 400 });
    await expect(parse("x".repeat(40_000))).rejects.toMatchObject({ status: 413 });
  });

  test("renderError renders AppError (also wrapped by a parse hook), Elysia's errors, never a stack", async () => {
    const r1 = renderError("UNKNOWN", new AppError(409, "ROOM_FULL", "full"));
    expect(r1.status).toBe(409);
    expect(await r1.json()).toEqual({ error: { code: "ROOM_FULL", message: "full" } });
    const wrapped = new Error("Bad Request", { cause: new AppError(413, "BODY_TOO_LARGE", "big") });
    expect(renderError("PARSE", wrapped).status).toBe(413);
    expect((await renderError("PARSE", new Error("Unexpected token")).json()).error.code).toBe("BAD_JSON");
    expect(renderError("NOT_FOUND", new Error("x")).status).toBe(404);
    const r3 = renderError("UNKNOWN", new Error("secret internals at foo.ts:1"));
    expect(r3.status).toBe(500);
    expect(JSON.stringify(await r3.json())).not.toContain("foo.ts");
  });
});
