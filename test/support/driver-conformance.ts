/**
 * One conformance suite for every NodeDriver (fake, process, docker): what the scheduler relies on
 * — start/health, the node contract through the driver's node (relay, echo, token, limits), idempotent
 * start, list/inspect, stop with a SIGTERM drain (4009, exit 0), wake, remove.
 */
import { afterAll, describe, expect, test } from "bun:test";
import type { RoomMode } from "../../core/config.ts";
import type { NodeDriver, NodeHandle, NodeSpec } from "../../scheduler/drivers/driver.ts";
import { connectPlayer, freeLoopbackPort, frameBytes, getHealth, upgradeStatus, waitHealth, type TestPlayer } from "./node-harness.ts";
import { waitFor } from "./services.ts";

/** How {@link runDriverConformance} runs against one driver. */
export interface DriverConformanceOptions {
  /** How long a started node may take to answer /health ready. */
  readyTimeoutMs: number;
  /** Per-test timeout for bun:test. Default 20000. */
  testTimeoutMs?: number;
  /** Skip the whole suite (service missing). */
  skip?: boolean;
  /** Extra cleanup after the driver removed its nodes (e.g. a label sweep of containers). */
  cleanup?: () => Promise<void>;
  /** Node ports; default a free port on 127.0.0.1. */
  port?: () => number;
}

const TOKEN = "conformance-token-0123456789";

/**
 * Registers the conformance suite for one driver. `makeDriver` is called once, lazily (so a skipped
 * suite never builds images or connects); every node the suite starts is removed in afterAll.
 */
export function runDriverConformance(name: string, makeDriver: () => NodeDriver | Promise<NodeDriver>, opts: DriverConformanceOptions): void {
  const timeout = opts.testTimeoutMs ?? 20_000;
  describe.skipIf(!!opts.skip)(`NodeDriver conformance: ${name}`, () => {
    let driverPromise: Promise<NodeDriver> | undefined;
    const driver = () => (driverPromise ??= Promise.resolve(makeDriver()));
    const started = new Set<string>();
    const players: TestPlayer[] = [];
    const run = crypto.randomUUID().slice(0, 6);
    let seq = 0;

    const spec = (over: Partial<NodeSpec> = {}): NodeSpec => ({
      nodeId: `cf${run}-${++seq}`,
      port: (opts.port ?? freeLoopbackPort)(),
      token: TOKEN,
      maxRooms: 10,
      maxPlayers: 50,
      drainSeconds: 0.3,
      roomMode: "relay" as RoomMode,
      ...over,
    });
    const startNode = async (s: NodeSpec): Promise<NodeHandle> => {
      started.add(s.nodeId);
      const h = await (await driver()).start(s);
      await waitHealth(h, opts.readyTimeoutMs);
      return h;
    };
    const player = async (h: NodeHandle, room: string, id: string) => {
      const p = await connectPlayer(h, room, { token: TOKEN, playerId: id, playerName: `name-${id}` });
      players.push(p);
      return p;
    };

    afterAll(async () => {
      for (const p of players) p.close();
      const d = await driver();
      await Promise.allSettled([...started].map((id) => d.remove(id)));
      await d.close();
      await opts.cleanup?.();
    });

    test(
      "start: /health answers ready within the bound, handle names the node",
      async () => {
        const s = spec();
        const t0 = performance.now();
        started.add(s.nodeId);
        const h = await (await driver()).start(s);
        const { body } = await waitHealth(h, opts.readyTimeoutMs);
        const ms = performance.now() - t0;
        expect(h.nodeId).toBe(s.nodeId);
        expect(h.driver).toBe((await driver()).kind);
        expect(h.ref.length).toBeGreaterThan(0);
        expect(h.host).toBe("127.0.0.1");
        expect(body).toMatchObject({ state: "ready", rooms: 0, players: 0 });
        expect(ms).toBeLessThan(opts.readyTimeoutMs);
      },
      timeout,
    );

    test(
      "relay: each frame reaches the room's other players byte-exact, text and binary, in order, never the sender",
      async () => {
        const h = await startNode(spec());
        const a = await player(h, "room-relay", "a");
        const b = await player(h, "room-relay", "b");
        const c = await player(h, "room-relay", "c");
        const other = await player(h, "other-room", "x");
        const text = '{"a":  1, "ü": "\u00e9\u{1F600}"}';
        const bin = new Uint8Array([0, 255, 1, 254, 0, 0, 7]);
        a.ws.send(text);
        a.ws.send(bin);
        for (let i = 0; i < 20; i++) b.ws.send(`seq-${i}`);
        expect(await b.next()).toBe(text);
        expect(frameBytes(await b.next())).toEqual(bin);
        // b's frames arrive in order at a.
        for (let i = 0; i < 20; i++) expect(await a.next()).toBe(`seq-${i}`);
        // c hears both senders: each one's frames in its order (the two streams may interleave).
        const atC: Array<string | Uint8Array> = [];
        for (let i = 0; i < 22; i++) atC.push(await c.next());
        const fromA = atC.filter((f) => typeof f !== "string" || !f.startsWith("seq-"));
        expect(fromA.length).toBe(2);
        expect(fromA[0]).toBe(text);
        expect(frameBytes(fromA[1]!)).toEqual(bin);
        expect(atC.filter((f) => typeof f === "string" && f.startsWith("seq-"))).toEqual(Array.from({ length: 20 }, (_, i) => `seq-${i}`));
        expect(await b.next(150).catch(() => undefined)).toBeUndefined(); // b never hears itself
        expect(other.pending.length).toBe(0); // another room hears nothing
        const health = await getHealth(h);
        expect(health).toMatchObject({ state: "ready", rooms: 2, players: 4 });
        for (const p of [a, b, c, other]) p.close();
      },
      timeout,
    );

    test(
      "echo mode: each frame comes back to its sender byte-exact",
      async () => {
        const h = await startNode(spec({ roomMode: "echo" }));
        const a = await player(h, "room-echo", "a");
        const b = await player(h, "room-echo", "b");
        const bin = new Uint8Array(70_000).map((_, i) => i % 251);
        a.ws.send("hello  {}");
        a.ws.send(bin);
        expect(await a.next()).toBe("hello  {}");
        expect(frameBytes(await a.next())).toEqual(bin);
        await Bun.sleep(50);
        expect(b.pending.length).toBe(0);
        a.close();
        b.close();
      },
      timeout,
    );

    test(
      "a wrong or missing node token is refused with 401 before the upgrade; bad room codes with 400",
      async () => {
        const h = await startNode(spec());
        expect(await upgradeStatus(h, "/rooms/abcd", { token: "wrong", playerId: "p", playerName: "p" })).toBe(401);
        expect(await upgradeStatus(h, "/rooms/abcd", { token: `${TOKEN}x`, playerId: "p", playerName: "p" })).toBe(401);
        expect(await upgradeStatus(h, "/rooms/abcd", { playerId: "p", playerName: "p" })).toBe(401);
        expect(await upgradeStatus(h, "/rooms/ab", { token: TOKEN, playerId: "p", playerName: "p" })).toBe(400);
        expect(await upgradeStatus(h, "/rooms/abcd", { token: TOKEN, playerName: "p" })).toBe(400);
        expect(await upgradeStatus(h, "/rooms/abcd", { token: TOKEN, playerId: "p", playerName: "p" })).toBe(101);
        await expect(connectPlayer(h, "abcd", { token: "nope", playerId: "p" })).rejects.toThrow();
        // The accepted probe (101) above is closed by the client; the node counts it until the
        // close reaches it, so wait for that rather than read the count at once.
        await waitFor(async () => (await getHealth(h))?.players === 0, 3000, "the accepted probe's seat back");
        expect((await getHealth(h))?.players).toBe(0);
      },
      timeout,
    );

    test(
      "limits: MAX_PLAYERS and MAX_ROOMS refuse with 503 before the upgrade",
      async () => {
        const h = await startNode(spec({ maxPlayers: 3, maxRooms: 2 }));
        const p1 = await player(h, "room-1", "p1");
        const p2 = await player(h, "room-2", "p2");
        // A third room is one too many; a third player in an existing room fits.
        expect(await upgradeStatus(h, "/rooms/room-3", { token: TOKEN, playerId: "p3", playerName: "p3" })).toBe(503);
        const p3 = await player(h, "room-1", "p3");
        expect(await upgradeStatus(h, "/rooms/room-1", { token: TOKEN, playerId: "p4", playerName: "p4" })).toBe(503);
        expect(await getHealth(h)).toMatchObject({ rooms: 2, players: 3 });
        p2.close();
        await p2.closed;
        await Bun.sleep(30);
        // The emptied room freed a room slot and a seat.
        const p5 = await player(h, "room-3", "p5");
        for (const p of [p1, p3, p5]) p.close();
      },
      timeout,
    );

    test(
      "start is idempotent: a running node's second start returns the same instance",
      async () => {
        const d = await driver();
        const s = spec();
        const h1 = await startNode(s);
        const h2 = await d.start(s);
        expect(h2.ref).toBe(h1.ref);
        expect(h2.port).toBe(h1.port);
        const mine = (await d.list()).filter((n) => n.nodeId === s.nodeId);
        expect(mine.length).toBe(1);
      },
      timeout,
    );

    test(
      "list and inspect see running nodes; inspect of an unknown node is undefined",
      async () => {
        const d = await driver();
        const s = spec();
        const h = await startNode(s);
        const info = await d.inspect(s.nodeId);
        expect(info).toMatchObject({ nodeId: s.nodeId, ref: h.ref, port: h.port, running: true, exitCode: undefined });
        expect(typeof info?.startedAt).toBe("number");
        expect((await d.list()).some((n) => n.nodeId === s.nodeId && n.running)).toBe(true);
        expect(await d.inspect(`cf${run}-missing`)).toBeUndefined();
        expect(typeof (await d.logs(s.nodeId, 50))).toBe("string");
      },
      timeout,
    );

    test(
      "stop: SIGTERM drains — refuses new players, closes connected ones with 4009, exits 0; then wake starts it again",
      async () => {
        const d = await driver();
        // Long enough that /health can be seen draining even on a loaded machine.
        const s = spec({ drainSeconds: 1.2 });
        const h = await startNode(s);
        const a = await player(h, "room-drain", "a");
        const t0 = performance.now();
        const stopping = d.stop(s.nodeId, 10_000);
        // While draining: health says so and new players are refused.
        await waitHealth(h, 3000, "draining");
        expect(await upgradeStatus(h, "/rooms/room-new", { token: TOKEN, playerId: "late", playerName: "late" })).toBe(503);
        expect(await upgradeStatus(h, "/rooms/room-drain", { token: TOKEN, playerId: "late", playerName: "late" })).toBe(503);
        const closed = await a.closed;
        expect(closed.code).toBe(4009);
        expect(closed.reason).toMatch(/reconnect after \d+ ms/);
        await stopping;
        const elapsed = performance.now() - t0;
        expect(elapsed).toBeGreaterThanOrEqual(1100); // waited for the drain deadline first
        const info = await d.inspect(s.nodeId);
        expect(info?.running).toBe(false);
        expect(info?.exitCode).toBe(0);
        expect(await getHealth(h, 300)).toBeUndefined();
        await d.stop(s.nodeId, 1000); // idempotent

        // Wake: the stopped (not removed) node starts again under the same id.
        const h2 = await d.start(s);
        expect(h2.nodeId).toBe(s.nodeId);
        await waitHealth(h2, opts.readyTimeoutMs);
        expect((await d.inspect(s.nodeId))?.running).toBe(true);
        expect((await d.list()).filter((n) => n.nodeId === s.nodeId).length).toBe(1);
      },
      timeout,
    );

    test(
      "stop without players exits promptly",
      async () => {
        const d = await driver();
        const s = spec({ drainSeconds: 5 });
        await startNode(s);
        const t0 = performance.now();
        await d.stop(s.nodeId, 10_000);
        expect(performance.now() - t0).toBeLessThan(4000);
        expect(await d.inspect(s.nodeId)).toMatchObject({ running: false, exitCode: 0 });
      },
      timeout,
    );

    test(
      "remove: gone from list and inspect; removing twice, or an unknown node, is fine",
      async () => {
        const d = await driver();
        const s = spec();
        const h = await startNode(s);
        await d.remove(s.nodeId); // running: killed first
        expect(await d.inspect(s.nodeId)).toBeUndefined();
        expect((await d.list()).some((n) => n.nodeId === s.nodeId)).toBe(false);
        expect(await getHealth(h, 300)).toBeUndefined();
        await d.remove(s.nodeId);
        await d.remove(`cf${run}-never-existed`);
        started.delete(s.nodeId);
      },
      timeout,
    );
  });
}
