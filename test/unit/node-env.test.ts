import { describe, expect, test } from "bun:test";
import { ConfigError } from "../../core/config.ts";
import { parseNodeEnv } from "../../node/node-env.ts";

const base = { NODE_ID: "n-1", NODE_TOKEN: "secret" };

describe("parseNodeEnv", () => {
  test("defaults for everything but NODE_ID and NODE_TOKEN", () => {
    expect(parseNodeEnv(base)).toEqual({
      nodeId: "n-1",
      port: 8081,
      host: "0.0.0.0",
      maxRooms: 100,
      maxPlayers: 1000,
      token: "secret",
      drainMs: 5000,
      roomMode: "relay",
      reconnectDelayMs: 1000,
      fleetgateUrl: undefined,
      snapshotIntervalMs: 100,
      version: "dev",
      logLevel: "info",
    });
  });

  test("reads every contract variable", () => {
    const env = parseNodeEnv({ ...base, PORT: "9001", HOST: "127.0.0.1", MAX_ROOMS: "3", MAX_PLAYERS: "7", DRAIN_SECONDS: "0.25", ROOM_MODE: "echo" });
    expect(env).toMatchObject({ port: 9001, host: "127.0.0.1", maxRooms: 3, maxPlayers: 7, drainMs: 250, roomMode: "echo" });
  });

  const bad: Array<[string, Record<string, string>, RegExp]> = [
    ["missing NODE_ID", { NODE_TOKEN: "x" }, /NODE_ID is required/],
    ["missing NODE_TOKEN", { NODE_ID: "n" }, /NODE_TOKEN is required/],
    ["bad NODE_ID", { ...base, NODE_ID: "a/b" }, /NODE_ID/],
    ["port out of range", { ...base, PORT: "70000" }, /PORT="70000"/],
    ["port not a number", { ...base, PORT: "http" }, /PORT/],
    ["zero rooms", { ...base, MAX_ROOMS: "0" }, /MAX_ROOMS/],
    ["negative players", { ...base, MAX_PLAYERS: "-1" }, /MAX_PLAYERS/],
    ["drain not a number", { ...base, DRAIN_SECONDS: "soon" }, /DRAIN_SECONDS/],
    ["unknown mode", { ...base, ROOM_MODE: "broadcast" }, /ROOM_MODE="broadcast" must be relay or echo/],
  ];
  for (const [name, env, re] of bad) {
    test(`refuses ${name}`, () => {
      expect(() => parseNodeEnv(env)).toThrow(re);
    });
  }

  test("reports every problem at once", () => {
    try {
      parseNodeEnv({ PORT: "x", ROOM_MODE: "y" });
      throw new Error("expected a ConfigError");
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems.length).toBe(4);
    }
  });
});
