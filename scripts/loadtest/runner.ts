/**
 * The load-test run (issue 13): real clients through the client SDK (sdk/client) — guest sign-in,
 * then a dedicated session, a lobby (rooms flow: the first client of each group creates a public
 * room, the others join it) or a matchmaking ticket — a WebSocket to the room, and messages at
 * `msgRate` for `matchDurationS` once the room's players are all in.
 *
 * Message round trips: every message is a ping `{"lt":1,"k":"p","f":from,"s":seq,"r":responder}`.
 * A node in echo mode sends it back to its sender; in relay mode (each message to the room's other
 * players) the designated responder — the next connected player of the room — answers with a
 * pong. RTT is measured by the sender, with one clock (all clients run in this process). A ping
 * with no answer once the room stops and drains (≤ 2 s) is a lost frame; pings sent by a client
 * alone in its room to a node that never echoed (dedicated flow on a relay node) cannot be
 * answered and are reported apart, not as lost.
 *
 * Bounded: spawning stops at `clients`, each room messages for `matchDurationS`, the whole run is
 * cut at `timeoutS` (every socket closed, the run marked timed out).
 */
import { FleetgateClient, FleetgateError, type MatchedTicket, type RoomConnection, type WebSocketCtor } from "../../sdk/client/src/index.ts";
import type { LoadTestOptions } from "./args.ts";
import { progressLine, Reservoir, type RunCounts } from "./stats.ts";

export interface RunHooks {
  /** Called with a progress line every `progressS` (and once at the end with `final`). */
  onProgress?: (line: string, final: boolean) => void;
  /** WebSocket class for the SDK (default: the global one). */
  WebSocket?: WebSocketCtor;
}

/** Longest a room waits for its players before it starts messaging with those it has. */
const BARRIER_MS = 10_000;
/** Longest a client waits for answers to its last pings. */
const DRAIN_MS = 2_000;
/** Tries for a retryable HTTP failure (429, 5xx, network) before the client counts as failed. */
const HTTP_TRIES = 4;

interface Ping {
  t: number;
  solo: boolean;
}

/** What a room's other players need to know of a client. */
interface Member {
  readonly idx: number;
  open: boolean;
  leaving: boolean;
  /** Pings waiting for an answer. */
  readonly pending: { readonly size: number };
  /** Room-mates whose frames reached this client (so the node relays between them). */
  readonly heard: { readonly size: number };
}

/** The players of one room that run in this process. */
class Group {
  readonly members: Member[] = [];
  opened = 0;
  /** Members that stopped sending (their match time is over, or they failed). */
  doneSending = 0;
  startedAt: number | undefined;
  private releaseFn!: () => void;
  readonly released = new Promise<void>((r) => (this.releaseFn = r));
  /** Rooms flow: the code the group's first client created. */
  code: Promise<string>;
  resolveCode!: (code: string) => void;
  rejectCode!: (err: Error) => void;
  constructor(public expected: number) {
    this.code = new Promise<string>((resolve, reject) => {
      this.resolveCode = resolve;
      this.rejectCode = reject;
    });
    this.code.catch(() => {});
  }
  release(now: number): void {
    this.startedAt ??= now;
    this.releaseFn();
  }
}

class Stop extends Error {}

export async function runLoadTest(o: LoadTestOptions, hooks: RunHooks = {}): Promise<RunCounts> {
  const t0 = performance.now();
  const now = () => performance.now();
  const joinMs = new Reservoir();
  const rttMs = new Reservoir();
  const counts: RunCounts = {
    flow: o.flow,
    clients: o.clients,
    spawned: 0,
    joinsOk: 0,
    joinsFailed: 0,
    joinMs: [],
    rttMs: [],
    messagesSent: 0,
    messagesAnswered: 0,
    framesLost: 0,
    unanswerable: 0,
    closeCodes: {},
    reconnects: 0,
    errors: {},
    failedClients: 0,
    peakConnected: 0,
    elapsedMs: 0,
    timedOut: false,
  };
  let connected = 0;
  let anySoloAnswered = false;
  const soloUnanswered: number[] = []; // per bot, decided at the end
  const stop = new AbortController();
  const deadline = setTimeout(() => {
    counts.timedOut = true;
    stop.abort(new Stop("the run hit --timeout"));
  }, o.timeoutS * 1000);

  const roomGroups = new Map<number, Group>();
  const matchGroups = new Map<string, Group>();
  const fail = (code: string) => {
    counts.failedClients++;
    counts.errors[code] = (counts.errors[code] ?? 0) + 1;
  };
  const codeOf = (err: unknown) => (err instanceof FleetgateError ? err.code : err instanceof Stop ? "TIMEOUT" : err instanceof Error ? err.message.slice(0, 60) : String(err));

  /** Resolves after `ms`, or rejects with Stop when the run is cut. */
  const sleep = (ms: number) =>
    new Promise<void>((resolve, reject) => {
      if (stop.signal.aborted) return reject(stop.signal.reason);
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        stop.signal.removeEventListener("abort", cut);
        resolve();
      }
      function cut() {
        clearTimeout(t);
        reject(stop.signal.reason);
      }
      stop.signal.addEventListener("abort", cut, { once: true });
    });
  const race = <T>(p: Promise<T>): Promise<T> =>
    stop.signal.aborted
      ? Promise.reject(stop.signal.reason)
      : Promise.race([p, new Promise<never>((_, reject) => stop.signal.addEventListener("abort", () => reject(stop.signal.reason), { once: true }))]);
  async function retry<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await race(fn());
      } catch (err) {
        if (!(err instanceof FleetgateError) || !err.retryable || attempt >= HTTP_TRIES) throw err;
        await sleep(200 * 2 ** attempt * (0.5 + Math.random() / 2));
      }
    }
  }

  class Bot implements Member {
    conn: RoomConnection | undefined;
    open = false;
    leaving = false;
    seq = 0;
    readonly pending = new Map<number, Ping>();
    readonly heard = new Set<number>();
    group: Group | undefined;
    roomCode: string | undefined;
    constructor(
      readonly idx: number,
      readonly fg: FleetgateClient,
    ) {}

    onMessage(data: string | ArrayBuffer): void {
      if (typeof data !== "string" || !data.startsWith('{"lt"')) return;
      let m: { k?: string; f?: number; s?: number; r?: number; to?: number };
      try {
        m = JSON.parse(data) as typeof m;
      } catch {
        return;
      }
      if (m.f !== undefined && m.f !== this.idx) this.heard.add(m.f);
      if (m.k === "h") return;
      if (m.k === "p" && m.f === this.idx) this.answered(m.s!); // echoed back by the node
      else if (m.k === "p" && m.r === this.idx) this.conn?.send(`{"lt":1,"k":"a","to":${m.f},"s":${m.s}}`);
      else if (m.k === "a" && m.to === this.idx) this.answered(m.s!);
    }

    answered(seq: number): void {
      const p = this.pending.get(seq);
      if (!p) return;
      this.pending.delete(seq);
      rttMs.add(now() - p.t);
      counts.messagesAnswered++;
      if (p.solo) anySoloAnswered = true;
    }

    ping(): void {
      const peers = this.group!.members.filter((b) => b.open && !b.leaving).sort((a, b) => a.idx - b.idx);
      const solo = peers.length <= 1;
      const responder = solo ? this.idx : peers[(peers.findIndex((b) => b === this) + 1) % peers.length]!.idx;
      const seq = ++this.seq;
      this.pending.set(seq, { t: now(), solo });
      counts.messagesSent++;
      this.conn!.send(`{"lt":1,"k":"p","f":${this.idx},"s":${seq},"r":${responder}}`);
    }
  }

  async function runBot(i: number): Promise<void> {
    const fg = new FleetgateClient({ baseUrl: o.url, backoff: { initialMs: 250, maxMs: 5000, maxAttempts: 10 }, requestTimeoutMs: 30_000, ...(hooks.WebSocket ? { WebSocket: hooks.WebSocket } : {}) });
    const bot = new Bot(i, fg);
    let joined = false;
    let sentAll = false;
    let failedCode: string | undefined;
    try {
      await retry(() => fg.signInAsGuest({ displayName: `lt-${i}` }));
      const started = now();
      let conn: RoomConnection;
      let group: Group;
      if (o.flow === "dedicated") {
        const s = await retry(() => fg.join({ mode: o.mode }));
        bot.roomCode = s.roomCode;
        conn = fg.connect();
        group = new Group(1);
      } else if (o.flow === "rooms") {
        const gi = Math.floor(i / o.roomSize);
        group = roomGroups.get(gi)!;
        if (i % o.roomSize === 0) {
          try {
            const room = await retry(() => fg.rooms.create({ visibility: "public", mode: o.mode, maxPlayers: o.roomSize }));
            group.resolveCode(room.code);
          } catch (err) {
            group.rejectCode(new FleetgateError(0, "ROOM_CREATE_FAILED", "the room's creator failed"));
            throw err;
          }
        }
        const code = await race(group.code);
        bot.roomCode = code;
        conn = await retry(() => fg.rooms.connect(code));
      } else {
        const remaining = Math.max(1000, o.timeoutS * 1000 - (now() - t0));
        const match: MatchedTicket = await race(fg.matchmaking.findMatch({ mode: o.mode, intervalMs: 250, timeoutMs: remaining }));
        bot.roomCode = match.roomCode;
        let g = matchGroups.get(match.roomCode);
        if (!g) {
          g = new Group(1);
          matchGroups.set(match.roomCode, g);
          const room = await retry(() => fg.rooms.get(match.roomCode)).catch(() => undefined);
          if (room) g.expected = room.players.length;
        }
        group = g;
        // Connect last: the listeners below are attached before the socket can open.
        conn = fg.matchmaking.connect(match);
      }
      bot.conn = conn;
      bot.group = group;
      group.members.push(bot);
      conn.on("message", (m) => bot.onMessage(m));
      conn.on("reconnecting", () => counts.reconnects++);
      conn.on("open", () => {
        bot.open = true;
      });
      let finalClose: ((code: number) => void) | undefined;
      const closedForGood = new Promise<number>((resolve) => (finalClose = resolve));
      conn.on("close", (e) => {
        bot.open = false;
        counts.closeCodes[String(e.code)] = (counts.closeCodes[String(e.code)] ?? 0) + 1;
        if (!e.willReconnect) finalClose!(e.code);
      });
      // The first open — or a close the SDK will not retry — settles the join.
      bot.open = conn.isOpen;
      const first = conn.isOpen ? 0 : await race(Promise.race([conn.once("open").then(() => 0), closedForGood]));
      if (first !== 0) throw new FleetgateError(0, `CLOSE_${first}`, `socket closed ${first} before it opened`);
      joined = true;
      counts.joinsOk++;
      joinMs.add(now() - started);
      connected++;
      counts.peakConnected = Math.max(counts.peakConnected, connected);
      void closedForGood.then((code) => {
        if (!bot.leaving && failedCode === undefined) failedCode = `CLOSE_${code}`;
      });

      // Wait (bounded) until every player of the room hears every other one — a socket open at
      // the gateway is not yet a player in the node's room, and a ping sent before its responder
      // is in would be lost — then message for the match duration. Hellos repeat, since the first
      // ones may reach a room still missing someone.
      group.opened++;
      const barrierUntil = now() + BARRIER_MS;
      const ready = () => group.members.length >= group.expected && group.members.every((m) => m.heard.size >= group.expected - 1);
      while (group.startedAt === undefined && !ready() && now() < barrierUntil) {
        if (bot.open) conn.send(`{"lt":1,"k":"h","f":${i}}`);
        await race(Promise.race([group.released, sleep(100)]));
      }
      group.release(now());
      const endAt = group.startedAt! + o.matchDurationS * 1000;
      if (o.msgRate > 0) {
        const interval = 1000 / o.msgRate;
        // Spread the clients' first pings over one interval (open loop: a fixed schedule).
        let next = now() + Math.random() * interval;
        while (next < endAt && failedCode === undefined) {
          await sleep(Math.max(0, next - now()));
          if (bot.open && now() < endAt) bot.ping();
          next += interval;
        }
      } else await sleep(Math.max(0, endAt - now()));
      group.doneSending++;
      sentAll = true;
      // Keep answering while the room's last pings drain (everyone in it stopped at endAt): a
      // player who left at once would leave a peer's last ping to it unanswered.
      const drainUntil = now() + DRAIN_MS;
      while ((group.doneSending < group.members.length || group.members.some((m) => m.open && m.pending.size > 0)) && now() < drainUntil) await sleep(25);
      if (failedCode) throw new FleetgateError(0, failedCode, "the room socket closed for good");
    } catch (err) {
      failedCode ??= codeOf(err);
      if (!joined) counts.joinsFailed++;
      fail(failedCode);
    } finally {
      if (!sentAll && bot.group) bot.group.doneSending++;
      bot.leaving = true;
      let solo = 0;
      for (const p of bot.pending.values()) if (p.solo) solo++;
      counts.framesLost += bot.pending.size - solo;
      soloUnanswered.push(solo);
      if (joined) connected--;
      if (bot.conn) {
        // Count this socket's own close too (bounded: a socket that never opened may never report one).
        const closed = bot.conn.once("close");
        bot.conn.close();
        await Promise.race([closed, new Promise((r) => setTimeout(r, 1000))]);
      }
      if (!stop.signal.aborted) {
        // Retried like the joins (a whole room leaving at once can meet HTTP_RATE_LIMIT); a leave
        // that still fails is not a client error — the seat reaper frees it.
        const code = bot.roomCode;
        const sessionId = fg.session?.sessionId;
        if (sessionId) await retry(() => fg.request<void>("POST", "/v1/players/leave", { sessionId })).catch(() => {});
        else if (code) await retry(() => fg.rooms.leave(code)).catch(() => {});
      }
      fg.close();
    }
  }

  if (o.flow === "rooms") for (let g = 0; g * o.roomSize < o.clients; g++) roomGroups.set(g, new Group(Math.min(o.roomSize, o.clients - g * o.roomSize)));

  let lastJoins = 0;
  let lastAt = now();
  const line = () => {
    const t = now();
    const rate = ((counts.joinsOk - lastJoins) * 1000) / Math.max(1, t - lastAt);
    lastJoins = counts.joinsOk;
    lastAt = t;
    return progressLine({ elapsedMs: t - t0, spawned: counts.spawned, clients: o.clients, connected, joinsOk: counts.joinsOk, joinsFailed: counts.joinsFailed, joinsPerS: rate, messagesSent: counts.messagesSent, errors: counts.failedClients });
  };
  const progress = o.progressS > 0 && hooks.onProgress ? setInterval(() => hooks.onProgress!(line(), false), o.progressS * 1000) : undefined;

  const bots: Promise<void>[] = [];
  try {
    for (let i = 0; i < o.clients; i++) {
      const due = t0 + (i * 1000) / o.spawnRate;
      if (due > now()) await sleep(due - now());
      counts.spawned++;
      bots.push(runBot(i));
    }
  } catch {
    /* cut by --timeout while spawning */
  }
  await Promise.all(bots);
  clearTimeout(deadline);
  if (progress) clearInterval(progress);
  if (!counts.timedOut) stop.abort(new Stop("done"));
  const unspawned = o.clients - counts.spawned;
  if (unspawned > 0) {
    counts.failedClients += unspawned;
    counts.errors.NOT_SPAWNED = unspawned;
  }
  // Pings alone in a room: lost if this node echoes at all (some were answered), else unmeasurable.
  const solo = soloUnanswered.reduce((a, b) => a + b, 0);
  if (anySoloAnswered) counts.framesLost += solo;
  else counts.unanswerable += solo;
  counts.joinMs = joinMs.sorted();
  counts.rttMs = rttMs.sorted();
  counts.elapsedMs = now() - t0;
  hooks.onProgress?.(line(), true);
  return counts;
}
