/**
 * The load generator of `npm run bench:lobbies` (bench/lobbies.ts), in its own process so its event
 * loop is not the one being measured. `bun bench/lobbies-loadgen.ts <plan.json> <result.json>`.
 *
 * mode `gateway`: `players` players join `players / 8` lobbies of 8 — the first half of the lobbies
 * through the rooms flow (the host creates a public room, seven join it), the rest through
 * matchmaking (eight tickets, matched into a room) — each opening its room's WebSocket through the
 * gateway. Join latency: a player's first request → its socket open.
 * mode `haproxy`: the same players and rooms, straight to the nodes the gateway phase placed them
 * on, through HAProxy alone (the baseline).
 * Then every player sends `rate` text frames a second to its room for `seconds` s; the node (relay)
 * hands each to the room's other seven players. Message RTT: sent → arrived at another player of the
 * room (client → proxy → node → proxy → client; one clock, this process). Frames a player should
 * have got and did not are errors too.
 *
 * Prints `MSG_START` / `MSG_END` lines so the orchestrator samples CPU over the message window.
 */
import { dlopen, FFIType, ptr } from "bun:ffi";
import { readFileSync, writeFileSync } from "node:fs";
import { JwtAuthenticator } from "../gateway/auth/jwt.ts";

export interface LobbyRoom {
  code: string;
  /** Index into `nodes` (haproxy mode). */
  node: number;
  players: string[];
}

export interface LobbyPlan {
  mode: "gateway" | "haproxy";
  /** http://127.0.0.1:PORT of the gateways (gateway mode) or of HAProxy (haproxy mode). */
  url: string;
  jwtSecret: string;
  players: number;
  seconds: number;
  rate: number;
  /** Lobbies joining at once (gateway mode). */
  concurrency: number;
  /** Give up on a player's join after this long, ms. */
  joinTimeoutMs: number;
  /** haproxy mode: the rooms of the gateway phase. */
  rooms?: LobbyRoom[];
  /** Matchmaking mode name (unique per run). */
  matchMode: string;
}

export interface LobbyResult {
  mode: string;
  players: number;
  connected: number;
  joinP50: number;
  joinP99: number;
  /** The rooms flow alone (create / join → socket open) and matchmaking alone (ticket → socket open). */
  roomsJoinP50: number;
  roomsJoinP99: number;
  matchJoinP50: number;
  matchJoinP99: number;
  joinsPerSec: number;
  rttP50: number;
  rttP99: number;
  rttMax: number;
  sent: number;
  delivered: number;
  expected: number;
  errors: Record<string, number>;
  errorCount: number;
  rooms: LobbyRoom[];
  fdLimit: number;
}

const SIZE = 8;

/** Raises this process's soft fd limit to its hard limit (setrlimit through bun:ffi: Bun has no process.setrlimit). */
export function raiseFdLimit(): number {
  try {
    const libc = dlopen(process.platform === "darwin" ? "libc.dylib" : "libc.so.6", {
      getrlimit: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
      setrlimit: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
    });
    const RLIMIT_NOFILE = process.platform === "darwin" ? 8 : 7;
    const lim = new BigUint64Array(2);
    if (libc.symbols.getrlimit(RLIMIT_NOFILE, ptr(lim)) !== 0) return 0;
    if (lim[0]! < lim[1]!) {
      lim[0] = lim[1]!;
      libc.symbols.setrlimit(RLIMIT_NOFILE, ptr(lim));
      libc.symbols.getrlimit(RLIMIT_NOFILE, ptr(lim));
    }
    return Number(lim[0]);
  } catch {
    return 0;
  }
}

/** Latencies in 0.05 ms buckets up to 10 s (the last bucket holds everything above). */
class Histogram {
  private readonly b = new Uint32Array(200_001);
  n = 0;
  max = 0;
  add(ms: number): void {
    this.b[Math.min(200_000, Math.max(0, Math.round(ms * 20)))]!++;
    this.n++;
    if (ms > this.max) this.max = ms;
  }
  pct(p: number): number {
    if (this.n === 0) return NaN;
    const want = Math.ceil(this.n * p);
    let seen = 0;
    for (let i = 0; i < this.b.length; i++) {
      seen += this.b[i]!;
      if (seen >= want) return i / 20;
    }
    return this.max;
  }
}

const errors: Record<string, number> = {};
const fail = (kind: string) => (errors[kind] = (errors[kind] ?? 0) + 1);

async function api(url: string, method: string, path: string, token: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path.replace(/\/[A-Za-z0-9_-]{12,}/g, "/:id")} → ${res.status} ${/"code":"([A-Z_]+)"/.exec(text)?.[1] ?? ""}`.trim());
  return JSON.parse(text) as Record<string, unknown>;
}

interface Player {
  id: string;
  token: string;
  ws?: WebSocket;
  room?: string;
}

function openWs(url: string, init: { protocols?: string[]; headers?: Record<string, string> }, timeoutMs: number): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    // Bun's WebSocket takes extra upgrade headers in an options object (a Bun extension of the constructor).
    const ws = init.headers ? new WebSocket(url, { headers: init.headers } as unknown as string[]) : new WebSocket(url, init.protocols);
    const timer = setTimeout(() => {
      ws.close();
      reject(new Error("websocket open timed out"));
    }, timeoutMs);
    ws.onopen = () => {
      clearTimeout(timer);
      resolve(ws);
    };
    ws.onclose = (e) => {
      clearTimeout(timer);
      reject(new Error(`websocket closed ${e.code} before open`));
    };
  });
}

async function main(): Promise<void> {
  const plan = JSON.parse(readFileSync(process.argv[2]!, "utf8")) as LobbyPlan;
  const out = process.argv[3]!;
  const fdLimit = raiseFdLimit();
  const auth = new JwtAuthenticator({ alg: "HS256", secret: plan.jwtSecret }, 3600_000);
  const wsBase = plan.url.replace(/^http/, "ws");
  const players: Player[] = [];
  for (let i = 0; i < plan.players; i++) {
    const id = `p_lb${i}`;
    players.push({ id, token: (await auth.sign({ sub: id, name: id, region: "", roles: ["player"] }, Date.now())).token });
  }
  const lobbies = Math.floor(plan.players / SIZE);
  const joins = new Histogram();
  const roomJoins = new Histogram();
  const matchJoins = new Histogram();
  const rooms: LobbyRoom[] = [];
  const t0 = performance.now();

  const connectGateway = async (p: Player, code: string, seat: string, started: number, flow: Histogram) => {
    p.ws = await openWs(`${wsBase}/v1/connect?room=${encodeURIComponent(code)}&seat=${encodeURIComponent(seat)}`, { protocols: ["bearer", p.token] }, plan.joinTimeoutMs);
    p.room = code;
    joins.add(performance.now() - started);
    flow.add(performance.now() - started);
  };
  const viaRooms = async (group: Player[]) => {
    const [host, ...rest] = group;
    const started = performance.now();
    const created = await api(plan.url, "POST", "/v1/rooms", host!.token, { visibility: "public", maxPlayers: SIZE });
    const code = String(created.code);
    rooms.push({ code, node: -1, players: group.map((p) => p.id) });
    await Promise.all([
      connectGateway(host!, code, String(created.seatToken), started, roomJoins).catch((e: unknown) => fail(String((e as Error).message))),
      ...rest.map(async (p) => {
        const s = performance.now();
        try {
          const seat = await api(plan.url, "POST", `/v1/rooms/${code}/join`, p.token, {});
          await connectGateway(p, code, String(seat.seatToken), s, roomJoins);
        } catch (e) {
          fail((e as Error).message);
        }
      }),
    ]);
  };
  // One matchmaking mode per worker: a worker queues one lobby at a time, so its eight tickets make
  // exactly one room (tickets of lobbies queued at once would otherwise interleave and wait on each other).
  const viaMatchmaking = async (group: Player[], worker: number) => {
    const codes = await Promise.all(
      group.map(async (p) => {
        const s = performance.now();
        try {
          const { ticketId } = await api(plan.url, "POST", "/v1/matchmaking/tickets", p.token, { mode: `${plan.matchMode}-${worker}` });
          const end = s + plan.joinTimeoutMs;
          for (;;) {
            const t = await api(plan.url, "GET", `/v1/matchmaking/tickets/${String(ticketId)}`, p.token);
            if (t.status === "matched") {
              await connectGateway(p, String(t.roomCode), String(t.seatToken), s, matchJoins);
              return String(t.roomCode);
            }
            if (t.status !== "queued") throw new Error(`ticket ${String(t.status)}`);
            if (performance.now() > end) throw new Error("ticket not matched in time");
            await Bun.sleep(100);
          }
        } catch (e) {
          fail((e as Error).message);
          return undefined;
        }
      }),
    );
    // Matching is across the whole queue: record each room once with the players it got.
    for (const code of new Set(codes.filter((c): c is string => !!c))) {
      const existing = rooms.find((r) => r.code === code);
      const ids = group.filter((_, i) => codes[i] === code).map((p) => p.id);
      if (existing) existing.players.push(...ids);
      else rooms.push({ code, node: -1, players: ids });
    }
  };

  if (plan.mode === "gateway") {
    const half = Math.ceil(lobbies / 2);
    let next = 0;
    const worker = async (w: number) => {
      for (;;) {
        const i = next++;
        if (i >= lobbies) return;
        const group = players.slice(i * SIZE, i * SIZE + SIZE);
        await (i < half ? viaRooms(group) : viaMatchmaking(group, w));
      }
    };
    await Promise.all(Array.from({ length: Math.min(plan.concurrency, lobbies) }, (_, w) => worker(w)));
  } else {
    const byId = new Map(players.map((p) => [p.id, p]));
    let next = 0;
    const list = (plan.rooms ?? []).flatMap((r) => r.players.map((id) => ({ r, p: byId.get(id)! })));
    const worker = async () => {
      for (;;) {
        const i = next++;
        if (i >= list.length) return;
        const { r, p } = list[i]!;
        const s = performance.now();
        try {
          p.ws = await openWs(`${wsBase}/n${r.node}/rooms/${encodeURIComponent(r.code)}`, { headers: { "X-Player-Id": p.id, "X-Player-Name": p.id } }, plan.joinTimeoutMs);
          p.room = r.code;
          joins.add(performance.now() - s);
        } catch (e) {
          fail((e as Error).message);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(plan.concurrency * SIZE, Math.max(1, list.length)) }, worker));
    rooms.push(...(plan.rooms ?? []));
  }
  const joinSeconds = (performance.now() - t0) / 1000;

  // ---- message phase -----------------------------------------------------------------------
  const connected = players.filter((p) => p.ws && p.ws.readyState === WebSocket.OPEN);
  const roomSize = new Map<string, number>();
  for (const p of connected) roomSize.set(p.room!, (roomSize.get(p.room!) ?? 0) + 1);
  const rtt = new Histogram();
  let sent = 0;
  let expected = 0;
  let delivered = 0;
  let measuring = true;
  for (const p of connected) {
    p.ws!.onmessage = (e) => {
      const s = String(e.data);
      const at = Number(s.slice(s.lastIndexOf(",") + 1));
      delivered++;
      if (measuring && Number.isFinite(at)) rtt.add(performance.now() - at);
    };
    p.ws!.onclose = (e) => {
      if (measuring) fail(`websocket closed ${e.code} during the message phase`);
    };
  }
  console.log("MSG_START");
  // Open loop: the players are spread over 10 ms slots of one send interval; a late timer catches up
  // on every slot it missed, so a stalled event loop does not lower the offered rate.
  const SLOT_MS = 10;
  const slots = Math.max(1, Math.round(1000 / plan.rate / SLOT_MS));
  const begin = performance.now();
  const end = begin + plan.seconds * 1000;
  let tick = 0;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const now = performance.now();
      while (begin + tick * SLOT_MS <= Math.min(now, end)) {
        const slot = tick++ % slots;
        for (let i = slot; i < connected.length; i += slots) {
          const p = connected[i]!;
          if (p.ws!.readyState !== WebSocket.OPEN) continue;
          p.ws!.send(`${i},${sent},${performance.now()}`);
          sent++;
          expected += (roomSize.get(p.room!) ?? 1) - 1;
        }
      }
      if (now >= end) {
        clearInterval(timer);
        resolve();
      }
    }, SLOT_MS);
  });
  // Let the last frames arrive, then count what never did.
  const drainEnd = performance.now() + 3000;
  while (delivered < expected && performance.now() < drainEnd) await Bun.sleep(50);
  console.log("MSG_END");
  measuring = false;
  if (expected > delivered) errors["frames not delivered"] = expected - delivered;
  for (const p of players) p.ws?.close();

  const result: LobbyResult = {
    mode: plan.mode,
    players: plan.players,
    connected: connected.length,
    joinP50: joins.pct(0.5),
    joinP99: joins.pct(0.99),
    roomsJoinP50: roomJoins.pct(0.5),
    roomsJoinP99: roomJoins.pct(0.99),
    matchJoinP50: matchJoins.pct(0.5),
    matchJoinP99: matchJoins.pct(0.99),
    joinsPerSec: Math.round(joins.n / Math.max(0.001, joinSeconds)),
    rttP50: rtt.pct(0.5),
    rttP99: rtt.pct(0.99),
    rttMax: rtt.max,
    sent,
    delivered,
    expected,
    errors,
    errorCount: Object.values(errors).reduce((a, b) => a + b, 0) + (plan.players - connected.length > 0 && Object.keys(errors).length === 0 ? plan.players - connected.length : 0),
    rooms,
    fdLimit,
  };
  writeFileSync(out, JSON.stringify(result));
  await Bun.sleep(200);
  process.exit(0);
}

if (import.meta.main) await main();
