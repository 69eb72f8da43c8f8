import { describe, expect, test } from "bun:test";
import { createKeys, ROOM_CODE_RE } from "../../core/keys.ts";

describe("keys", () => {
  const k = createKeys("fg");
  test("everything lives under the prefix", () => {
    const all = [k.node("n-1"), k.nodes, k.room("ABCD"), k.session("s1"), k.ticket("t1"), k.gateway("g1"), k.nodeEventsChannel, k.lobby("4v4", "eu"), k.bullPrefix];
    for (const key of all) expect(key.startsWith("fg:")).toBe(true);
    expect(new Set(all).size).toBe(all.length);
  });

  test.each(["../x", "abc", "a".repeat(33), "héllo", "", "ab cd", "x".repeat(1024 * 1024)])("room code %# is refused before a key is built", (code) => {
    expect(ROOM_CODE_RE.test(code)).toBe(false);
    expect(() => k.room(code)).toThrow();
  });

  test.each(["ABCD", "room_1-x", "a".repeat(32)])("room code %p is accepted", (code) => {
    expect(k.room(code)).toBe(`fg:room:${code}`);
  });

  test("ids with separators or spaces cannot reach a key", () => {
    expect(() => k.node("a b")).toThrow();
    expect(() => k.session("x\ny")).toThrow();
    expect(() => k.node("")).toThrow();
  });

  test("queue names have no colon (BullMQ refuses them)", () => {
    for (const q of Object.values(k.queues)) expect(q.includes(":")).toBe(false);
  });
});
