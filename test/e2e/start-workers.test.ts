/**
 * GATEWAY_WORKERS: `npm start` runs that many gateway processes on one port (SO_REUSEPORT). The
 * kernel spreads connections across them, so the players of one room arrive through different
 * processes: they must still meet on one node (placement is one atomic step in Redis) and the
 * room's presence must count every socket once, under the process that holds it.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { createKeys } from "../../core/keys.ts";
import { createRedis } from "../../core/redis.ts";
import { openSocket, type TestSocket } from "../support/gateway-fixtures.ts";
import { REDIS_URL, captureOutput, need, waitFor } from "../support/services.ts";
import { ROOT, stackFixture } from "../support/start-stack.ts";

const PLAYERS = 8;

describe.skipIf(!need("redis"))("npm start with GATEWAY_WORKERS=2", () => {
  const fx = stackFixture("workers");
  const { prefix, ports } = fx;
  const redis = createRedis(REDIS_URL);
  const keys = createKeys(prefix);
  let proc: ReturnType<typeof Bun.spawn> | undefined;
  const sockets: TestSocket[] = [];

  afterAll(async () => {
    for (const s of sockets) s.ws.close();
    if (proc && proc.exitCode === null) {
      proc.kill("SIGKILL");
      await proc.exited;
    }
    redis.disconnect();
    await fx.cleanup();
  });

  test("players of one room through both processes meet on one node; presence counts each socket once", async () => {
    proc = Bun.spawn([process.execPath, "scripts/start.ts"], {
      cwd: ROOT,
      env: {
        ...fx.baseEnv,
        NODE_DRIVER: "process",
        NODE_ROOM_MODE: "relay",
        NODE_DRAIN_SECONDS: "0.5",
        GATEWAY_WORKERS: "2",
        GATEWAY_ID: "",
        LOG_LEVEL: "warn",
        PUBLIC_URL: "",
      },
      stdout: "pipe",
      stderr: "pipe",
    });
    const captured = captureOutput(proc);
    const api = `http://127.0.0.1:${ports.api}`;
    const ws = `ws://127.0.0.1:${ports.api}`;
    await waitFor(async () => (await fetch(`${api}/health`).catch(() => undefined))?.ok, 30_000, `the gateway (output: ${captured.output().slice(-500)})`, 100);
    expect(captured.output()).toContain("2 gateway processes on port");
    // Both processes registered as replicas of their own.
    const gateways = await waitFor(async () => {
      const ids = await redis.zrange(keys.gateways, "0", "-1");
      return ids.length === 2 ? ids : undefined;
    }, 20_000, "two gateway replicas in the registry", 100);
    expect(new Set(gateways).size).toBe(2);

    const post = async (path: string, token: string, body: unknown) => {
      const res = await fetch(`${api}${path}`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify(body) });
      if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
      return (await res.json()) as Record<string, unknown>;
    };
    const players: { id: string; token: string; seat: string }[] = [];
    for (let i = 0; i < PLAYERS; i++) {
      const g = await post("/v1/auth/guest", "", { displayName: `w${i}` });
      players.push({ id: String(g.playerId), token: String(g.token), seat: "" });
    }
    const room = await post("/v1/rooms", players[0]!.token, { visibility: "public", maxPlayers: PLAYERS });
    const code = String(room.code);
    players[0]!.seat = String(room.seatToken);
    for (const p of players.slice(1)) p.seat = String((await post(`/v1/rooms/${code}/join`, p.token, {})).seatToken);

    const connect = async (p: (typeof players)[number]) => {
      const s = openSocket(`${ws}/v1/connect?room=${code}&seat=${encodeURIComponent(p.seat)}`, ["bearer", p.token]);
      await s.opened;
      return s;
    };
    // The first connect places the room (a process node is started for it).
    for (const p of players) sockets.push(await connect(p));
    const presence = async () => redis.hgetall(keys.roomPresence(code));
    const gatewaysHolding = async () => new Set(Object.keys(await presence()).map((k) => k.split("|")[0]));
    await waitFor(async () => Object.keys(await presence()).length === PLAYERS, 5000, "presence of every player");
    // The kernel picks the process per connection: reconnect players until both processes hold some
    // (all 8 on one process happens 1 time in 128; 20 tries make a miss all but impossible).
    for (let tries = 0; (await gatewaysHolding()).size < 2 && tries < 20; tries++) {
      const i = 1 + (tries % (PLAYERS - 1));
      sockets[i]!.ws.close();
      await sockets[i]!.closed;
      sockets[i] = await connect(players[i]!);
      await waitFor(async () => Object.keys(await presence()).length === PLAYERS, 5000, "presence after a reconnect");
    }
    const holders = await gatewaysHolding();
    expect(holders.size).toBe(2);
    for (const g of holders) expect(gateways).toContain(g!);

    // One socket per player, each counted once, under the process that holds it.
    const entries = await presence();
    expect(Object.keys(entries).map((k) => k.split("|")[1]).sort()).toEqual(players.map((p) => p.id).sort());
    expect(Object.values(entries).every((v) => v === "1")).toBe(true);

    // One node, one room: every frame reaches the other seven players, whichever process they are on.
    const placed = await redis.get(keys.roomNode(code));
    expect(placed).toBeString();
    for (const s of sockets) s.messages.length = 0;
    sockets.forEach((s, i) => s.ws.send(`hello from ${i}`));
    await Promise.all(sockets.map((s) => s.waitMessages(PLAYERS - 1, 10_000)));
    sockets.forEach((s, i) => {
      const got = s.messages.map(String).sort();
      expect(got).toEqual(players.map((_, j) => `hello from ${j}`).filter((_, j) => j !== i).sort());
    });
    const servers = (await (await fetch(`${api}/v1/servers`)).json()) as { id: string; players: number }[];
    expect(servers.map((n) => n.id)).toContain(placed!);

    // Closing three sockets: their presence entries go, the others stay.
    for (const i of [1, 2, 3]) sockets[i]!.ws.close();
    await waitFor(async () => Object.keys(await presence()).length === PLAYERS - 3, 5000, "presence after three closes");
    const left = Object.keys(await presence()).map((k) => k.split("|")[1]).sort();
    expect(left).toEqual([0, 4, 5, 6, 7].map((i) => players[i]!.id).sort());

    for (const s of sockets) s.ws.close();
    proc.kill("SIGINT");
    const exit = await Promise.race([proc.exited, Bun.sleep(30_000).then(() => "timeout")]);
    expect(exit).toBe(0);
    expect(await fetch(`${api}/health`).then(() => "up", () => "down")).toBe("down");
  }, 120_000);
});
