/** `bun gateway/main.ts` as a process: bad config exits 1 with every problem; SIGTERM is graceful. */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RedisNodeRegistry } from "../../model/node-registry.ts";
import { GatewayRegistry } from "../../model/gateway-registry.ts";
import { JwtAuthenticator } from "../../gateway/auth/jwt.ts";
import { startNodeServer } from "../../node/server.ts";
import { closedWithin, openSocket } from "../support/gateway-fixtures.ts";
import { makeNode } from "../support/nodes.ts";
import { freePort, need, REDIS_URL, testRedis, waitFor } from "../support/services.ts";

const dataDir = mkdtempSync(join(tmpdir(), "fg-gwmain-"));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe("gateway/main.ts", () => {
  test("bad configuration: one message listing every problem, exit 1", () => {
    const r = Bun.spawnSync([process.execPath, "gateway/main.ts"], { env: { ...process.env, PORT: "nope", MAX_FRAME_BYTES: "-1", JWT_SECRET: "short" }, stderr: "pipe", stdout: "pipe" });
    expect(r.exitCode).toBe(1);
    const err = r.stderr.toString();
    for (const v of ["PORT", "MAX_FRAME_BYTES", "JWT_SECRET"]) expect(err).toContain(v);
    expect(err).not.toContain("    at ");
  });

  test.skipIf(!need("redis"))("starts, registers the replica, relays; SIGTERM closes clients 4009 and deregisters", async () => {
    const tr = testRedis("gwmain");
    const port = freePort();
    const proc = Bun.spawn([process.execPath, "gateway/main.ts"], {
      env: { ...process.env, PORT: String(port), REDIS_URL, REDIS_PREFIX: tr.prefix, DATA_DIR: dataDir, GATEWAY_ID: "gw-main-test", GATEWAY_HEARTBEAT: "0.2", LOG_LEVEL: "warn", JWT_SECRET: "" },
      stdout: "pipe",
      stderr: "pipe",
    });
    const node = startNodeServer({ nodeId: "main-node", port: 0, hostname: "127.0.0.1", maxRooms: 10, maxPlayers: 10, token: "main-tok", roomMode: "echo" });
    try {
      const reader = proc.stdout.getReader();
      let out = "";
      while (!out.includes(`http://127.0.0.1:${port}`)) {
        const { value, done } = await reader.read();
        if (done) break;
        out += new TextDecoder().decode(value);
      }
      expect(out).toContain(`http://127.0.0.1:${port}`);
      const gateways = new GatewayRegistry(tr.redis, tr.keys, 600);
      expect((await gateways.list(Date.now())).map((g) => [g.id, g.port])).toEqual([["gw-main-test", port]]);

      const reg = new RedisNodeRegistry(tr.redis, tr.keys, () => tr.connect());
      await reg.create(makeNode({ id: "main-node", port: node.port, token: "main-tok", capacity: 10, maxRooms: 10 }), Date.now());
      // JWT_SECRET unset: main created DATA_DIR/jwt-secret; sign with it as `npm run token` would.
      const secret = (await Bun.file(join(dataDir, "jwt-secret")).text()).trim();
      const token = (await new JwtAuthenticator({ alg: "HS256", secret }, 60_000).sign({ sub: "p_main", name: "m", region: "local", roles: ["player"] }, Date.now())).token;
      const s = openSocket(`ws://127.0.0.1:${port}/v1/connect?room=main-room`, ["bearer", token]);
      await s.opened;
      s.ws.send("through main");
      await s.waitMessages(1);
      expect(s.messages[0]).toBe("through main");

      proc.kill("SIGTERM");
      const c = await closedWithin(s, 3000);
      expect(c.code).toBe(4009);
      expect(await proc.exited).toBe(0);
      expect(await gateways.list(Date.now())).toEqual([]);
      await waitFor(() => node.health().players === 0, 2000, "upstream closed");
    } finally {
      proc.kill("SIGKILL");
      await node.stop();
      await tr.cleanup();
    }
  }, 20_000);
});
