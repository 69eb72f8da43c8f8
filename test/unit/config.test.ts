import { describe, expect, test } from "bun:test";
import { ConfigError, loadConfig } from "../../core/config.ts";

describe("loadConfig", () => {
  test("defaults run on one machine and match CONTRACT", () => {
    const c = loadConfig({});
    expect(c.port).toBe(3000);
    expect(c.haproxyPort).toBe(8080);
    expect(c.haproxyStatsPort).toBe(8404);
    expect(c.maxPlayersPerServer).toBe(1);
    expect(c.maxServers).toBe(50);
    expect(c.heartbeatIntervalMs).toBe(5000);
    expect(c.inactivityShutdownMs).toBe(10_000);
    expect(c.cleanupDeleteMs).toBe(30_000);
    expect(c.serverPortStart).toBe(8081);
    expect(c.sessionSize).toBe(8);
    expect(c.redisPrefix).toBe("fleetgate");
    expect(c.nodeDriver).toBe("auto");
    expect(c.nodeRoomMode).toBe("relay");
    expect(Object.isFrozen(c)).toBe(true);
  });

  test("timings are seconds in, milliseconds out, fractions allowed", () => {
    const c = loadConfig({ HEARTBEAT_INTERVAL: "0.5", INACTIVITY_SHUTDOWN: "1", CLEANUP_DELETE: "3" });
    expect(c.heartbeatIntervalMs).toBe(500);
    expect(c.inactivityShutdownMs).toBe(1000);
    expect(c.cleanupDeleteMs).toBe(3000);
    expect(c.sessionTtlMs).toBe(1500);
  });

  test("every problem is reported at once", () => {
    let err: unknown;
    try {
      loadConfig({ PORT: "abc", MAX_SERVERS: "-1", NODE_DRIVER: "kubernetes", AUTH_GUEST: "maybe" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems;
    expect(problems.length).toBe(4);
    const msg = (err as ConfigError).message;
    for (const name of ["PORT", "MAX_SERVERS", "NODE_DRIVER", "AUTH_GUEST"]) expect(msg).toContain(name);
  });

  test.each([
    [{ PORT: "70000" }, "PORT"],
    [{ HEARTBEAT_INTERVAL: "0" }, "HEARTBEAT_INTERVAL"],
    [{ HEARTBEAT_INTERVAL: "5s" }, "HEARTBEAT_INTERVAL"],
    [{ REDIS_URL: "http://x" }, "REDIS_URL"],
    [{ REDIS_PREFIX: "a b" }, "REDIS_PREFIX"],
    [{ MIN_PARTIAL_SESSION_SIZE: "9" }, "MIN_PARTIAL_SESSION_SIZE"],
    [{ MIN_READY_SERVERS: "60" }, "MIN_READY_SERVERS"],
    [{ JWT_ALG: "RS256" }, "JWT_ALG"],
    [{ JWT_SECRET: "short" }, "JWT_SECRET"],
    [{ DOCKER_HOSTS: "ftp://x" }, "DOCKER_HOSTS"],
    [{ SERVER_PORT_START: "9000", SERVER_PORT_END: "8000" }, "SERVER_PORT_END"],
  ] as const)("rejects %p", (env, name) => {
    expect(() => loadConfig(env)).toThrow(name);
  });

  test("NODE_MAX_PLAYERS defaults to what a whole room needs, and may not be below a matched room", () => {
    expect(loadConfig({}).nodeMaxPlayers).toBe(8);
    expect(loadConfig({ MAX_PLAYERS_PER_SERVER: "32" }).nodeMaxPlayers).toBe(32);
    expect(loadConfig({ NODE_MAX_PLAYERS: "12" }).nodeMaxPlayers).toBe(12);
    expect(() => loadConfig({ NODE_MAX_PLAYERS: "4" })).toThrow("SESSION_SIZE");
  });

  test("blank values mean unset", () => {
    expect(loadConfig({ PORT: "  " }).port).toBe(3000);
  });

  test("DOCKER_HOSTS is a comma list", () => {
    expect(loadConfig({ DOCKER_HOSTS: "unix:///var/run/docker.sock, tcp://127.0.0.1:2375" }).dockerHosts).toEqual([
      "unix:///var/run/docker.sock",
      "tcp://127.0.0.1:2375",
    ]);
  });

  test("a bad environment fails fast from the command line with one message naming every variable", async () => {
    const t = Date.now();
    const proc = Bun.spawn([process.execPath, "-e", "const {loadConfig}=await import('./core/config.ts'); try{loadConfig(process.env)}catch(e){console.error(e.message);process.exit(1)}"], {
      env: { ...process.env, PORT: "abc", MAX_SERVERS: "-1" },
      stderr: "pipe",
      stdout: "ignore",
    });
    const code = await proc.exited;
    const err = await new Response(proc.stderr).text();
    expect(code).toBe(1);
    expect(err).toContain("PORT");
    expect(err).toContain("MAX_SERVERS");
    expect(Date.now() - t).toBeLessThan(2000);
  });
});
