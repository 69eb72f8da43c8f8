/**
 * RedisOutageWatch (one line when Redis goes, one when it is back, hooks on recovery) and the
 * error classification behind the 503 REDIS_UNAVAILABLE, with fake connections (event emitters)
 * and a fake time source; plus the small lifecycle helpers.
 */
import { describe, expect, test } from "bun:test";
import { EventEmitter } from "node:events";
import { isRedisUnavailable, redisUnavailable, RedisOutageWatch } from "../../core/redis-outage.ts";
import type { Logger } from "../../core/log.ts";
import { supervisorPidFrom, within } from "../../core/process-lifecycle.ts";
import { busyPortsMessage } from "../../scripts/services.ts";

function capture(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const log: Logger = {
    debug: () => {},
    info: (m) => void lines.push(`info ${m}`),
    warn: (m) => void lines.push(`warn ${m}`),
    error: (m) => void lines.push(`error ${m}`),
    child: () => log,
  };
  return { log, lines };
}

describe("RedisOutageWatch", () => {
  test("many connections, many retries: one line when it starts, one when every connection is back", () => {
    const { log, lines } = capture();
    let now = 1_000;
    const w = new RedisOutageWatch(log, () => now);
    const a = w.watch(new EventEmitter());
    const b = w.watch(new EventEmitter());
    let recovered = 0;
    w.onRecover(() => recovered++);
    a.emit("ready");
    b.emit("ready");
    expect(lines).toEqual([]);
    for (let i = 0; i < 50; i++) {
      a.emit("error", Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:6379"), { code: "ECONNREFUSED" }));
      a.emit("reconnecting");
      b.emit("error", new Error("connect ECONNREFUSED 127.0.0.1:6379"));
    }
    expect(w.outage).toBe(true);
    expect(lines).toEqual(["warn Redis unreachable (connect ECONNREFUSED 127.0.0.1:6379); requests that need it answer 503 until it is back"]);
    now = 13_500;
    a.emit("ready");
    // b is still down: not over yet.
    expect(lines.length).toBe(1);
    expect(recovered).toBe(0);
    b.emit("ready");
    expect(lines[1]).toBe("info Redis reachable again after 12.5 s");
    expect(recovered).toBe(1);
    expect(w.outage).toBe(false);
    // A second outage is logged again, once; a connection closed for good meanwhile is no recovery.
    a.emit("reconnecting");
    a.emit("reconnecting");
    b.emit("reconnecting");
    a.emit("end");
    expect(lines.length).toBe(3);
    expect(w.outage).toBe(true);
    b.emit("ready");
    expect(lines.length).toBe(4);
    expect(lines[3]).toMatch(/^info Redis reachable again/);
  });

  test("an intentional quit (close + end, no reconnecting) is not an outage", () => {
    const { log, lines } = capture();
    const w = new RedisOutageWatch(log);
    const c = w.watch(new EventEmitter());
    c.emit("ready");
    c.emit("close");
    c.emit("end");
    expect(lines).toEqual([]);
    expect(w.outage).toBe(false);
  });
});

describe("isRedisUnavailable", () => {
  const rows: [string, unknown, boolean][] = [
    ["command timeout", new Error("Command timed out"), true],
    ["closed connection", new Error("Connection is closed."), true],
    ["offline queue off", new Error("Stream isn't writeable and enableOfflineQueue options is false"), true],
    ["max retries", Object.assign(new Error("Reached the max retries per request limit"), { name: "MaxRetriesPerRequestError" }), true],
    ["refused", Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }), true],
    ["a reply error is a bug, not an outage", Object.assign(new Error("WRONGTYPE Operation against a key"), { name: "ReplyError" }), false],
    ["any other error", new Error("boom"), false],
    ["not an error", "Command timed out", false],
  ];
  for (const [name, err, want] of rows) test(name, () => expect(isRedisUnavailable(err)).toBe(want));

  test("renders as the contract's 503", () => {
    const e = redisUnavailable();
    expect(e.status).toBe(503);
    expect(e.toBody()).toEqual({ error: { code: "REDIS_UNAVAILABLE", message: expect.any(String) } });
  });
});

describe("lifecycle helpers", () => {
  test("a supervisor pid counts only when it is our parent", () => {
    expect(supervisorPidFrom(String(process.ppid))).toBe(process.ppid);
    expect(supervisorPidFrom(String(process.ppid + 100_000))).toBeUndefined();
    expect(supervisorPidFrom(undefined)).toBeUndefined();
    expect(supervisorPidFrom("12x")).toBeUndefined();
  });

  test("within: the value, or the fallback after the bound", async () => {
    expect(await within(Promise.resolve(1), 1000, "late")).toBe(1);
    expect(await within(new Promise(() => {}), 10, "late")).toBe("late");
  });

  test("busy ports are named with their variables, in one line", () => {
    expect(busyPortsMessage([{ variable: "PORT", host: "127.0.0.1", port: 3000 }])).toBe("port 3000 (PORT) is in use by another process: stop it or set PORT to a free port");
    const two = busyPortsMessage([
      { variable: "PORT", host: "127.0.0.1", port: 3000 },
      { variable: "SCHEDULER_METRICS_PORT", host: "127.0.0.1", port: 9464 },
    ]);
    expect(two).toBe("port 3000 (PORT), port 9464 (SCHEDULER_METRICS_PORT) are in use by another process: stop it or set PORT, SCHEDULER_METRICS_PORT to a free port");
    expect(two).not.toContain("\n");
  });
});
