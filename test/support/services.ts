/**
 * What tests need from the machine. A test that needs Redis, Docker or HAProxy skips only when the
 * service is absent AND `CI` is unset; under CI an absent service fails the run.
 */
import { createKeys, type Keys } from "../../core/keys.ts";
import { createRedis, deletePrefix, redisAnswers, type Redis } from "../../core/redis.ts";

export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
export const IN_CI = !!process.env.CI && process.env.CI !== "false" && process.env.CI !== "0";

export const hasRedis = await redisAnswers(REDIS_URL, 500);
export const hasDocker = await dockerAnswers();
export const hasHaproxy = Bun.which("haproxy") !== null;

async function dockerAnswers(): Promise<boolean> {
  try {
    const res = await fetch("http://localhost/_ping", { unix: "/var/run/docker.sock", signal: AbortSignal.timeout(1000) } as RequestInit);
    return res.ok;
  } catch {
    return false;
  }
}

/** Throws under CI when a service is missing; otherwise tells the caller to skip. */
export function need(service: "redis" | "docker" | "haproxy"): boolean {
  const ok = service === "redis" ? hasRedis : service === "docker" ? hasDocker : hasHaproxy;
  if (!ok && IN_CI) throw new Error(`${service} is required under CI but is not available`);
  return ok;
}

/** A fresh random prefix per test; `cleanup()` deletes every key under it and closes connections. */
export interface TestRedis {
  redis: Redis;
  keys: Keys;
  prefix: string;
  /** A new connection (for subscribers, BullMQ). Closed by cleanup. */
  connect(): Redis;
  cleanup(): Promise<void>;
}

export function testRedis(label = "t"): TestRedis {
  const prefix = `fgtest-${label}-${crypto.randomUUID().slice(0, 8)}`;
  const redis = createRedis(REDIS_URL);
  const extra: Redis[] = [];
  return {
    redis,
    keys: createKeys(prefix),
    prefix,
    connect() {
      const r = createRedis(REDIS_URL);
      extra.push(r);
      return r;
    },
    async cleanup() {
      await deletePrefix(redis, prefix);
      for (const r of extra) r.disconnect();
      redis.disconnect();
    },
  };
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): number {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const p = s.port;
  s.stop(true);
  return p;
}

/** Polls `fn` until it returns truthy or `timeoutMs` passes (then throws with `what`). */
export async function waitFor<T>(fn: () => T | Promise<T>, timeoutMs: number, what = "condition", everyMs = 20): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await Bun.sleep(everyMs);
  }
}

/**
 * Collects a child process's stdout and stderr as they arrive; `output()` is everything so far.
 * (Reading both streams keeps a chatty child from blocking on a full pipe.)
 */
export function captureOutput(proc: { stdout: unknown; stderr: unknown }): { output: () => string } {
  let out = "";
  const pump = async (s: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    const r = s.getReader();
    for (;;) {
      const { done, value } = await r.read();
      if (done) break;
      out += dec.decode(value, { stream: true });
    }
  };
  void pump(proc.stdout as ReadableStream<Uint8Array>);
  void pump(proc.stderr as ReadableStream<Uint8Array>);
  return { output: () => out };
}
