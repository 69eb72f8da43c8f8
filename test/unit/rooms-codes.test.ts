import { describe, expect, test } from "bun:test";
import { AppError } from "../../core/errors.ts";
import { ROOM_CODE_RE } from "../../core/keys.ts";
import { bodyObject, connectUrl, errorResponse } from "../../gateway/rooms/http.ts";
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

describe("http helpers", () => {
  test("connectUrl uses PUBLIC_URL, else the gateway port", () => {
    expect(connectUrl({ publicUrl: undefined, port: 3000 }, "ABCD", "tok")).toBe("ws://127.0.0.1:3000/v1/connect?room=ABCD&seat=tok");
    expect(connectUrl({ publicUrl: "wss://play.example.com/", port: 3000 }, "ABCD", "t-_")).toBe("wss://play.example.com/v1/connect?room=ABCD&seat=t-_");
  });

  test("bodyObject rejects non-objects and oversize bodies in the contract shape", () => {
    const req = (len?: number) => new Request("http://x/", { method: "POST", headers: len ? { "content-length": String(len) } : {} });
    expect(bodyObject(req(), { a: 1 })).toEqual({ a: 1 });
    expect(bodyObject(req(), undefined, true)).toEqual({});
    for (const bad of [undefined, null, "str", 1, [1]]) expect(() => bodyObject(req(), bad)).toThrow(AppError);
    expect(() => bodyObject(req(10_000_000), {})).toThrow(AppError);
  });

  test("errorResponse renders AppError and Elysia's parse errors, never a stack", async () => {
    const r1 = errorResponse("UNKNOWN", new AppError(409, "ROOM_FULL", "full"));
    expect(r1.status).toBe(409);
    expect(await r1.json()).toEqual({ error: { code: "ROOM_FULL", message: "full" } });
    const r2 = errorResponse("PARSE", new Error("Unexpected token"));
    expect(r2.status).toBe(400);
    const r3 = errorResponse("UNKNOWN", new Error("secret internals at foo.ts:1"));
    expect(r3.status).toBe(500);
    expect(JSON.stringify(await r3.json())).not.toContain("foo.ts");
  });
});
