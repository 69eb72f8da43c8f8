/**
 * The relay benchmark's load generator, run as its own process (so its CPU never counts against
 * the proxy under test). Reads one phase description from argv[2] (JSON), opens the connections,
 * runs the load, prints one JSON result line on stdout and exits.
 *
 * - closed loop: every connection keeps exactly one message in flight (send, wait for the echo,
 *   send the next) — measures throughput.
 * - open loop: every connection sends at a fixed rate whatever the answers — measures latency
 *   under a steady load, and frames lost.
 * - idle: the connections open, exchange one round trip each (so every proxied upstream is up)
 *   and then stay silent through the window — measures memory per idle connection.
 * Echoes are checked byte for byte against what was sent (the node echoes in order).
 */

export interface LoadPhase {
  /** ws:// URL per connection index (`{i}` is replaced). */
  url: string;
  /** Extra headers (direct / HAProxy: X-Node-Token...). */
  headers?: Record<string, string>;
  /** Subprotocols (gateway: ["bearer", jwt]). */
  protocols?: string[];
  connections: number;
  mode: "closed" | "open" | "idle";
  /** Open loop: messages per second per connection. */
  rate?: number;
  durationMs: number;
  payloadBytes: number;
  /** How long to wait for every connection to open. */
  connectTimeoutMs: number;
}

/** Handshakes in flight at once: thousands at once overflow the proxy's accept backlog. */
const OPEN_CONCURRENCY = 500;

export interface LoadResult {
  connections: number;
  opened: number;
  sent: number;
  received: number;
  lost: number;
  corrupt: number;
  /** Echoes received inside the measured window. */
  windowMessages: number;
  msgsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: string[];
}

type BunWs = new (url: string, options: { headers?: Record<string, string>; protocols?: string[]; perMessageDeflate?: boolean }) => WebSocket;
const BunWebSocket = WebSocket as unknown as BunWs;

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

interface Conn {
  ws: WebSocket;
  inflight: { at: number; payload: string }[];
  seq: number;
  open: boolean;
}

async function run(p: LoadPhase): Promise<LoadResult> {
  const errors = new Set<string>();
  const rtts: number[] = [];
  let sent = 0;
  let received = 0;
  let corrupt = 0;
  let measuring = false;
  let sending = true;
  let stopped = false;
  const pad = "x".repeat(Math.max(0, p.payloadBytes - 24));

  const conns: Conn[] = [];
  const send = (c: Conn) => {
    const payload = `${c.seq++}|${pad}`;
    c.inflight.push({ at: performance.now(), payload });
    c.ws.send(payload);
    if (measuring) sent++;
  };

  const openOne = (i: number) =>
    new Promise<void>((resolve) => {
      const ws = new BunWebSocket(p.url.replace("{i}", String(i)), { headers: p.headers, protocols: p.protocols, perMessageDeflate: false });
      const c: Conn = { ws, inflight: [], seq: 0, open: false };
      conns.push(c);
      ws.onopen = () => {
        c.open = true;
        resolve();
      };
      ws.onerror = () => errors.add("socket error");
      ws.onclose = (ev) => {
        if (!c.open) resolve();
        c.open = false;
        if (!stopped) errors.add(`closed ${ev.code} ${ev.reason}`.trim());
      };
      ws.onmessage = (ev) => {
        const head = c.inflight.shift();
        if (!head) return;
        if (ev.data !== head.payload) corrupt++;
        if (measuring) {
          received++;
          rtts.push(performance.now() - head.at);
        }
        if (p.mode === "closed" && sending) send(c);
      };
    });
  const openAll = async () => {
    let next = 0;
    const worker = async () => {
      while (next < p.connections) await openOne(next++);
    };
    await Promise.all(Array.from({ length: Math.min(OPEN_CONCURRENCY, p.connections) }, worker));
  };
  await Promise.race([openAll(), Bun.sleep(p.connectTimeoutMs)]);
  const live = conns.filter((c) => c.open);

  // Warm-up: one round trip per connection before measuring (idle: the only one).
  measuring = false;
  if (p.mode !== "open") for (const c of live) send(c);
  await Bun.sleep(p.mode === "idle" ? 1000 : 300);
  measuring = true;
  // Markers on stdout let the orchestrator sample the proxy's CPU over exactly this window.
  console.log(JSON.stringify({ event: "start" }));
  const t0 = performance.now();
  const timers: ReturnType<typeof setInterval>[] = [];
  if (p.mode === "open") {
    const every = 1000 / (p.rate ?? 20);
    // Stagger the connections over one period so the load is smooth, not a pulse.
    live.forEach((c, i) => {
      setTimeout(() => {
        if (!sending) return;
        send(c);
        timers.push(setInterval(() => c.open && sending && send(c), every));
      }, (i / live.length) * every);
    });
  }
  await Bun.sleep(p.durationMs);
  sending = false;
  for (const t of timers) clearInterval(t);
  const elapsed = (performance.now() - t0) / 1000;
  const receivedInWindow = received;
  console.log(JSON.stringify({ event: "end" }));
  // Let the last answers arrive, then count what never came back.
  await Bun.sleep(1000);
  stopped = true;
  const lost = conns.reduce((a, c) => a + c.inflight.length, 0);
  for (const c of conns) {
    try {
      c.ws.close();
    } catch {
      /* closed */
    }
  }
  const sorted = Float64Array.from(rtts).sort();
  return {
    connections: p.connections,
    opened: live.length,
    sent,
    received,
    lost: Math.max(0, lost),
    corrupt,
    windowMessages: receivedInWindow,
    msgsPerSec: Math.round(receivedInWindow / elapsed),
    p50Ms: Math.round(percentile(sorted, 50) * 1000) / 1000,
    p99Ms: Math.round(percentile(sorted, 99) * 1000) / 1000,
    errors: [...errors].slice(0, 5),
  };
}

if (import.meta.main) {
  const phase = JSON.parse(process.argv[2] ?? "{}") as LoadPhase;
  const result = await run(phase);
  console.log(JSON.stringify(result));
  process.exit(0);
}
