/**
 * Players of relay rooms for the session-resume e2e tests and `npm run bench:resume`: raw
 * WebSockets (with `?notices=1`, so the gateway's paused/resumed frames are counted apart) that
 * send numbered frames at a fixed rate, and check what they receive — per sender in order, the
 * longest silence, the first frame after a moment (a node's kill), closes.
 */

export interface RoomPlayer {
  readonly id: string;
  readonly room: string;
  readonly ws: WebSocket;
  readonly opened: Promise<void>;
  /** Next sequence number this player sends. */
  sent: number;
  /** Game frames received (not notices), with their arrival times. */
  received: number;
  arrivals: number[];
  /** Last sequence seen per sender; a frame not above it is out of order (or a duplicate). */
  lastSeq: Map<string, number>;
  outOfOrder: number;
  /** Sequence numbers skipped per sender (frames lost in flight to a killed node). */
  gaps: number;
  closes: { code: number; reason: string; at: number }[];
  notices: { fleetgate: string; pausedMs?: number; at: number }[];
}

export function openRoomPlayer(wsUrl: string, room: string, id: string, token: string): RoomPlayer {
  const ws = new WebSocket(`${wsUrl}/v1/connect?room=${encodeURIComponent(room)}&notices=1`, ["bearer", token]);
  const p: RoomPlayer = {
    id,
    room,
    ws,
    opened: new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onerror = () => reject(new Error(`${id}: socket error before open`));
    }),
    sent: 0,
    received: 0,
    arrivals: [],
    lastSeq: new Map(),
    outOfOrder: 0,
    gaps: 0,
    closes: [],
    notices: [],
  };
  p.opened.catch(() => {});
  ws.onmessage = (ev) => {
    const now = performance.now();
    const data = ev.data;
    if (typeof data !== "string") return;
    if (data.startsWith('{"fleetgate"')) {
      p.notices.push({ ...(JSON.parse(data) as { fleetgate: string; pausedMs?: number }), at: now });
      return;
    }
    const i = data.lastIndexOf(":");
    const sender = data.slice(0, i);
    const seq = Number(data.slice(i + 1));
    // Frames of the node's own (e.g. the reference node's drain notice) are not the players'.
    if (i < 0 || !Number.isInteger(seq)) return;
    const last = p.lastSeq.get(sender) ?? -1;
    if (seq <= last) p.outOfOrder++;
    else {
      p.gaps += seq - last - 1;
      p.lastSeq.set(sender, seq);
    }
    p.received++;
    p.arrivals.push(now);
  };
  ws.onclose = (ev) => p.closes.push({ code: ev.code, reason: ev.reason, at: performance.now() });
  return p;
}

/** Every player sends `<id>:<seq>` at `hz` per second until stopped (bounded by `maxFrames` each). */
export function startTraffic(players: readonly RoomPlayer[], hz: number, maxFrames: number): () => void {
  const timers = players.map((p, i) =>
    setTimeout(() => {
      const t = setInterval(() => {
        if (p.sent >= maxFrames || p.ws.readyState !== WebSocket.OPEN) return;
        p.ws.send(`${p.id}:${p.sent++}`);
      }, 1000 / hz);
      timers[i] = t;
    }, (i * (1000 / hz)) / players.length),
  );
  return () => {
    for (const t of timers) {
      clearTimeout(t);
      clearInterval(t);
    }
  };
}

/** The longest silence a player heard in [from, to] (ms): from `from` to its first frame, between frames, or to `to`. */
export function longestSilence(p: RoomPlayer, from: number, to: number): number {
  let prev = from;
  let worst = 0;
  for (const t of p.arrivals) {
    if (t < from) continue;
    if (t > to) break;
    worst = Math.max(worst, t - prev);
    prev = t;
  }
  return Math.max(worst, to - prev);
}

/** Time from `at` to the player's first game frame after it, or undefined. */
export function firstFrameAfter(p: RoomPlayer, at: number): number | undefined {
  const t = p.arrivals.find((x) => x > at);
  return t === undefined ? undefined : t - at;
}

export function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}
