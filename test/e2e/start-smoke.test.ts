/**
 * `npm start` as a user runs it: the supervisor (scripts/start.ts) with gateway, scheduler and
 * templater + HAProxy, on a fresh prefix, data dir and ports. A player signs in, joins (a node is
 * started for them), and talks to it through the HAProxy edge; Ctrl-C (SIGINT) then stops
 * everything — processes, HAProxy, containers. Catches what only the assembled system shows
 * (relative paths, child environments, shutdown order).
 */
import { afterAll, describe, expect, test } from "bun:test";
import Docker from "dockerode";
import { captureOutput, hasDocker, need, waitFor } from "../support/services.ts";
import { ROOT, stackFixture } from "../support/start-stack.ts";


describe.skipIf(!(need("redis") && need("haproxy")))("npm start, end to end through the edge", () => {
  const fx = stackFixture("start");
  const { ports, dataDir } = fx;
  let proc: ReturnType<typeof Bun.spawn> | undefined;

  afterAll(async () => {
    if (proc && proc.exitCode === null) {
      proc.kill("SIGKILL");
      await proc.exited;
    }
    await fx.cleanup();
  });

  test("sign in → join → frames through HAProxy → Ctrl-C leaves nothing behind", async () => {
    proc = Bun.spawn([process.execPath, "scripts/start.ts"], {
      cwd: ROOT,
      env: {
        ...fx.baseEnv,
        NODE_ROOM_MODE: "echo",
        NODE_DRAIN_SECONDS: "0.5",
        LOG_LEVEL: "warn",
        PUBLIC_URL: "",
      },
      stdout: "pipe",
      stderr: "pipe",
    });
    const captured = captureOutput(proc);

    const api = `http://127.0.0.1:${ports.api}`;
    const edge = `http://127.0.0.1:${ports.edge}`;
    await waitFor(async () => (await fetch(`${api}/health`).catch(() => undefined))?.ok, 30_000, `the gateway (output so far: ${captured.output().slice(-500)})`, 100);
    expect(captured.output()).toContain(`node driver: ${hasDocker ? "docker" : "process"}`);
    // The edge lists the gateway once the templater has seen its heartbeat.
    await waitFor(async () => (await fetch(`${edge}/health`).catch(() => undefined))?.ok, 15_000, "the gateway behind the HAProxy edge", 100);
    expect((await fetch(`http://127.0.0.1:${ports.stats}/stats`)).status).toBe(401);

    const guest = (await (await fetch(`${edge}/v1/auth/guest`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ displayName: "smoke" }) })).json()) as { token: string };
    const joinRes = await fetch(`${edge}/v1/players/join`, { method: "POST", headers: { authorization: `Bearer ${guest.token}`, "content-type": "application/json" }, body: "{}" });
    expect(joinRes.status).toBe(201);
    const joined = (await joinRes.json()) as { connectUrl: string; sessionId: string; nodeId: string };
    // Behind the edge, the connect URL points at the edge.
    expect(joined.connectUrl.startsWith(`ws://127.0.0.1:${ports.edge}/v1/connect?room=`)).toBe(true);

    const echoed = await new Promise<string>((resolve, reject) => {
      const ws = new WebSocket(joined.connectUrl, ["bearer", guest.token]);
      const timer = setTimeout(() => reject(new Error("no echo through the edge")), 10_000);
      ws.onopen = () => ws.send('{"a":  1}');
      ws.onmessage = (e) => {
        clearTimeout(timer);
        ws.close(1000, "done");
        resolve(String(e.data));
      };
      ws.onclose = (e) => e.code !== 1000 && reject(new Error(`closed ${e.code} ${e.reason}`));
    });
    expect(echoed).toBe('{"a":  1}');
    const servers = (await (await fetch(`${api}/v1/servers`)).json()) as { id: string; state: string }[];
    expect(servers.some((s) => s.id === joined.nodeId && s.state === "ready")).toBe(true);

    proc.kill("SIGINT");
    const code = await Promise.race([proc.exited, Bun.sleep(30_000).then(() => "timeout")]);
    expect(code).toBe(0);
    expect(captured.output()).toContain("[start] stopped");
    // Nothing left: no gateway, no edge, no node.
    expect(await fetch(`${api}/health`).then(() => "up", () => "down")).toBe("down");
    expect(await fetch(`${edge}/health`).then(() => "up", () => "down")).toBe("down");
    if (hasDocker) {
      const left = await new Docker().listContainers({ all: true, filters: { label: [fx.label] } });
      expect(left.length).toBe(0);
    }
    const ps = Bun.spawnSync(["pgrep", "-f", dataDir]);
    expect(ps.stdout.toString().trim()).toBe("");
  }, 90_000);
});
