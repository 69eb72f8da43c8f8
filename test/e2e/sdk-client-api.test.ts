/**
 * The client SDK's whole API against a real gateway, real Redis, a real relay-mode reference node
 * and the real matchmaker (issue 13): rooms (create, list, get, join with password / by invite,
 * connect, chat, host transfer, kick, the lifecycle, leave), matchmaking (find a match with
 * progress, cancel, adopt a live ticket), seat renewal on reconnect, typed errors.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { realClock } from "../../core/clock.ts";
import { silentLogger } from "../../core/log.ts";
import { startMatchmaker } from "../../scheduler/matchmaker/index.ts";
import { FleetgateClient, FleetgateError, type MatchProgress, type RoomConnection, type RoomEvents } from "../../sdk/client/src/index.ts";
import { startTestGateway, startTestNode, type TestGateway, type TestNode } from "../support/gateway-fixtures.ts";
import { freePort, need, testRedis, waitFor, type TestRedis } from "../support/services.ts";

/** Collects a connection's frames and closes. */
function watch(c: RoomConnection) {
  const messages: string[] = [];
  const closes: RoomEvents["close"][] = [];
  c.on("message", (m) => messages.push(typeof m === "string" ? m : "<binary>"));
  c.on("close", (e) => closes.push(e));
  return { messages, closes };
}

async function errorOf(p: Promise<unknown>): Promise<FleetgateError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  if (!(e instanceof FleetgateError)) throw new Error(`expected a FleetgateError, got ${String(e)}`);
  return e;
}

describe.skipIf(!need("redis"))("client SDK API end to end", () => {
  let tr: TestRedis;
  let gw: TestGateway;
  let node: TestNode;
  let matchmaker: { close(): Promise<void> } | undefined;
  const clients: FleetgateClient[] = [];

  const client = async (name: string) => {
    const c = new FleetgateClient({ baseUrl: gw.url, backoff: { initialMs: 50, maxMs: 400 } });
    clients.push(c);
    await c.signInAsGuest({ displayName: name });
    return c;
  };

  beforeAll(async () => {
    tr = testRedis("sdkapi");
    gw = await startTestGateway(tr.prefix, { port: freePort(), matchmakerIntervalMs: 50, flushWaitMs: 300, minPartialSessionSize: 2, seatTokenTtlMs: 60_000 });
    node = await startTestNode(gw.deps, { roomMode: "relay" });
    matchmaker = await startMatchmaker({ ...gw.deps, newRedis: () => tr.connect(), clock: realClock, log: silentLogger });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await matchmaker?.close();
    await gw?.stop();
    await node?.stop();
    await tr?.cleanup();
  });

  test("rooms: create, browse, password, invite, chat, host transfer, kick, lifecycle, leave", async () => {
    const [ada, bob, cy] = [await client("ada"), await client("bob"), await client("cy")];
    const priv = await ada.rooms.create({ visibility: "private", password: "hunter2", maxPlayers: 3, mode: "sdk" });
    expect(priv).toMatchObject({ visibility: "private", hostId: ada.playerId, state: "waiting", players: [ada.playerId] });
    const pub = await ada.rooms.create({ visibility: "public", mode: "sdk" });
    // The lobby browser shows public rooms only; a private room is invisible to outsiders.
    const listed = (await bob.rooms.list({ mode: "sdk" })).map((r) => r.code);
    expect(listed).toContain(pub.code);
    expect(listed).not.toContain(priv.code);
    expect((await errorOf(bob.rooms.get(priv.code))).code).toBe("ROOM_NOT_FOUND");
    // Wrong or missing password: typed errors with the contract's codes.
    const wrong = await errorOf(bob.rooms.join(priv.code, { password: "nope" }));
    expect([wrong.status, wrong.code]).toEqual([403, "WRONG_PASSWORD"]);
    // A bad code is refused before any request.
    expect((await errorOf(bob.rooms.get("no"))).code).toBe("INVALID_ROOM_CODE");

    const adaRoom = await ada.rooms.connect(priv.code);
    const bobRoom = await bob.rooms.connect(priv.code, { password: "hunter2" });
    const a = watch(adaRoom);
    const b = watch(bobRoom);
    await Promise.all([adaRoom.ready(3000), bobRoom.ready(3000)]);
    // An invited player needs no password.
    await bob.rooms.invite(priv.code, cy.playerId!);
    const cyRoom = await cy.rooms.connect(priv.code);
    const c = watch(cyRoom);
    await cyRoom.ready(3000);
    expect((await ada.rooms.get(priv.code)).players.sort()).toEqual([ada.playerId!, bob.playerId!, cy.playerId!].sort());
    // Full: a fourth player is refused with 409 ROOM_FULL.
    const dee = await client("dee");
    await ada.rooms.invite(priv.code, dee.playerId!);
    expect((await errorOf(dee.rooms.join(priv.code))).code).toBe("ROOM_FULL");

    // Chat through the relay: the node sends each message to the room's other players.
    adaRoom.send("hello from ada");
    await waitFor(() => b.messages.includes("hello from ada") && c.messages.includes("hello from ada"), 3000, "chat relayed");
    expect(a.messages).not.toContain("hello from ada");

    // Host transfer, then the new host kicks cy: cy's socket closes 4003 and does not come back.
    expect(await ada.rooms.transferHost(priv.code, bob.playerId!)).toEqual({ hostId: bob.playerId! });
    expect((await errorOf(ada.rooms.kick(priv.code, cy.playerId!))).code).toBe("NOT_HOST");
    await bob.rooms.kick(priv.code, cy.playerId!);
    await waitFor(() => c.closes.length > 0, 3000, "kicked socket closed");
    expect(c.closes[0]).toMatchObject({ code: 4003, willReconnect: false, action: "stop" });
    expect((await errorOf(cy.rooms.join(priv.code))).code).toBe("KICKED");

    // The lifecycle: start → activate → end with results → restart votes → waiting → close.
    expect(await bob.rooms.start(priv.code)).toEqual({ state: "starting" });
    expect(await bob.rooms.activate(priv.code)).toEqual({ state: "active" });
    const ended = await bob.rooms.end(priv.code, { teams: [[ada.playerId!], [bob.playerId!]], scores: [1, 2], reason: "score_limit" });
    expect(ended.state).toBe("ending");
    expect((await ada.rooms.voteRestart(priv.code)).restarted).toBe(false);
    expect(await bob.rooms.voteRestart(priv.code)).toMatchObject({ restarted: true, state: "waiting" });
    const left = await ada.rooms.leave(priv.code);
    expect(left).toMatchObject({ left: true, closed: false, hostId: bob.playerId });
    expect(await bob.rooms.close(priv.code)).toEqual({ state: "completed" });
    await waitFor(() => b.closes.some((e) => e.code === 4004), 3000, "closed room's socket 4004");
    expect(b.closes.at(-1)).toMatchObject({ willReconnect: false, action: "stop" });
    adaRoom.close();
  }, 30_000);

  test("regions: GET /v1/regions, a measured round trip to this gateway's ping, joins in that region", async () => {
    // What gateway/main.ts does for a replica: register it, with the public URL its ping lives on.
    await gw.deps.gateways.heartbeat({ id: "gw-sdk", host: "127.0.0.1", port: gw.port, region: "local", publicUrl: gw.url, startedAt: Date.now() }, Date.now());
    const fg = await client("traveller");
    const regions = await fg.regions.list();
    expect(regions.map((r) => r.name)).toContain("local");
    const chosen = await fg.regions.choose({ samples: 2 });
    expect(chosen.region).toBe("local");
    expect(chosen.measured[0]!.samples).toHaveLength(2);
    expect(chosen.latencies.local).toBeGreaterThanOrEqual(0);
    // The chosen region goes into bodies that name none, and the gateway takes the latencies.
    const room = await fg.rooms.create({ visibility: "public", mode: "regional", latencies: chosen.latencies });
    expect(room.region).toBe("local");
  });

  test("a seat token that no longer works is renewed (re-join) before the reconnect", async () => {
    const [host, guest] = [await client("host"), await client("guest")];
    const room = await host.rooms.create({ visibility: "private", password: "pw" });
    const seat = await guest.rooms.join(room.code, { password: "pw" });
    let renewals = 0;
    // Start from a URL whose seat token is bogus: the gateway closes 4003, the SDK renews and opens.
    const bad = seat.connectUrl.replace(/seat=[^&]+/, "seat=bogus");
    const conn = guest.connectSeat(bad, async () => {
      renewals++;
      return (await guest.rooms.join(room.code, { password: "pw" })).connectUrl;
    });
    const w = watch(conn);
    await waitFor(() => conn.isOpen, 3000, "open after renewal");
    expect(w.closes.map((e) => e.code)).toEqual([4003]);
    expect(renewals).toBe(1);
    conn.close();
  });

  test("matchmaking: two players find one match with progress, meet in its room; cancel and adopt", async () => {
    const [p1, p2] = [await client("m1"), await client("m2")];
    const progress: MatchProgress[] = [];
    const [m1, m2] = await Promise.all([
      p1.matchmaking.findMatch({ mode: "duel", intervalMs: 50, timeoutMs: 10_000, onProgress: (p) => progress.push(p) }),
      p2.matchmaking.findMatch({ mode: "duel", intervalMs: 50, timeoutMs: 10_000 }),
    ]);
    expect(m1.roomCode).toBe(m2.roomCode);
    expect(progress.length).toBeGreaterThanOrEqual(1);
    expect(progress.at(-1)).toMatchObject({ status: "matched", ticketId: m1.ticketId });
    expect(progress.every((p, i) => p.polls === i + 1)).toBe(true);
    const [r1, r2] = [p1.matchmaking.connect(m1), p2.matchmaking.connect(m2)];
    const w2 = watch(r2);
    await Promise.all([r1.once("open"), r2.once("open")]);
    r1.send("gg");
    await waitFor(() => w2.messages.includes("gg"), 3000, "match chat");
    r1.close();
    r2.close();

    // Cancel: a waiting ticket ends with TICKET_CANCELLED.
    const p3 = await client("m3");
    const { ticketId } = await p3.matchmaking.createTicket({ mode: "solo-queue" });
    const waiting = errorOf(p3.matchmaking.waitForMatch(ticketId, { intervalMs: 50 }));
    await p3.matchmaking.cancel(ticketId);
    expect((await waiting).code).toBe("TICKET_CANCELLED");
    // A second ticket while one is live: 409 ALREADY_QUEUED, and findMatch adopts the live one.
    const live = await p3.matchmaking.createTicket({ mode: "solo-queue" });
    const dup = await errorOf(p3.matchmaking.createTicket({ mode: "solo-queue" }));
    expect([dup.status, dup.code, dup.details?.ticketId]).toEqual([409, "ALREADY_QUEUED", live.ticketId]);
    const timedOut = await errorOf(p3.matchmaking.findMatch({ mode: "solo-queue", intervalMs: 50, timeoutMs: 300 }));
    expect(timedOut.code).toBe("TIMEOUT");
    // The timeout cancelled the adopted ticket.
    await waitFor(async () => (await p3.matchmaking.getTicket(live.ticketId)).status === "cancelled", 2000, "ticket cancelled");
  }, 30_000);
});
