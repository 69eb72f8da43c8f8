/** `bun scheduler/main.ts` as a process: bad config exits 1 with every problem; SIGTERM exits 0. */
import { afterAll, describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import { REDIS_URL, freePort, need, testRedis, waitFor } from "../support/services.ts";

const ROOT = resolve(import.meta.dir, "../..");

function run(env: Record<string, string>) {
  return Bun.spawn([process.execPath, "scheduler/main.ts"], { cwd: ROOT, env: { PATH: process.env.PATH ?? "", ...env }, stdout: "pipe", stderr: "pipe" });
}

describe("scheduler main", () => {
  test("a bad configuration prints every problem and exits 1", async () => {
    const p = run({ MAX_SERVERS: "lots", SCHEDULER_METRICS_PORT: "99999", STOP_NODES_ON_EXIT: "maybe" });
    expect(await p.exited).toBe(1);
    const err = await new Response(p.stderr).text();
    expect(err).toContain("MAX_SERVERS");
    expect(err).toContain("SCHEDULER_METRICS_PORT");
    expect(err).toContain("STOP_NODES_ON_EXIT");
    expect(err).not.toContain("    at "); // no stack trace
  });

  describe.skipIf(!need("redis"))("with Redis", () => {
    const t = testRedis("main");
    afterAll(() => t.cleanup());

    test("a SIGTERM while it is still starting waits for the start, then shuts down cleanly (exit 0, not 143)", async () => {
      const p = run({ REDIS_URL, REDIS_PREFIX: t.prefix, NODE_DRIVER: "process", SCHEDULER_METRICS_PORT: "0", DATA_DIR: `/tmp/${t.prefix}` });
      try {
        // "node driver: ..." is logged just before start-up begins.
        const reader = (p.stdout as ReadableStream<Uint8Array>).getReader();
        let out = "";
        await waitFor(async () => {
          const { value, done } = await reader.read();
          if (value) out += new TextDecoder().decode(value);
          return done || out.includes("node driver:");
        }, 10_000, "the driver line");
        p.kill("SIGTERM");
        expect(await p.exited).toBe(0);
      } finally {
        if (p.exitCode === null) p.kill("SIGKILL");
      }
    }, 30_000);

    test("serves /metrics, logs the driver it chose, and stops on SIGTERM with exit 0", async () => {
      const port = freePort();
      const p = run({ REDIS_URL, REDIS_PREFIX: t.prefix, NODE_DRIVER: "process", SCHEDULER_METRICS_PORT: String(port), DATA_DIR: `/tmp/${t.prefix}` });
      try {
        const body = await waitFor(async () => {
          const r = await fetch(`http://127.0.0.1:${port}/metrics`);
          return r.ok ? r.text() : undefined;
        }, 10_000, "metrics endpoint", 100);
        expect(body).toContain("fleetgate_scheduler_nodes");
        // The job schedulers are installed (BullMQ v6 job schedulers, not repeatable jobs).
        // Installed at start-up, possibly a moment after /metrics answers: wait for them.
        const schedulers = await waitFor(async () => {
          const k = await t.redis.keys(`${t.prefix}:bull:*:repeat*`);
          return k.length > 0 ? k : undefined;
        }, 10_000, "job schedulers installed", 50);
        expect(schedulers.length).toBeGreaterThan(0);
        p.kill("SIGTERM");
        expect(await p.exited).toBe(0);
        const out = await new Response(p.stdout).text();
        expect(out).toContain("node driver: process (NODE_DRIVER=process)");
        expect(out).toContain("scheduler stopped");
      } finally {
        if (p.exitCode === null) p.kill("SIGKILL");
      }
    }, 30_000);
  });
});
