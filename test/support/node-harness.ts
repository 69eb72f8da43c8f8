/**
 * Helpers for talking to game-server nodes in tests: a player WebSocket with a message queue, a raw
 * upgrade attempt that reports the HTTP status a refused upgrade got, and a /health poll.
 */
/** Where a node listens. NodeHandle fits. */
export interface NodeAddress {
  host: string;
  port: number;
}

/** The gateway headers of a player connection; an absent field is not sent. */
export interface PlayerHeaders {
  token?: string;
  playerId?: string;
  playerName?: string;
}

/** A received frame: text as a string, binary as bytes. */
export type Frame = string | Uint8Array;

/** A connected player socket with a queue of received frames. */
export interface TestPlayer {
  ws: WebSocket;
  /** Next frame not yet taken (waits up to `timeoutMs`). */
  next(timeoutMs?: number): Promise<Frame>;
  /** Frames received and not yet taken. */
  readonly pending: Frame[];
  /** Resolves with the close event's code and reason. */
  closed: Promise<{ code: number; reason: string }>;
  close(): void;
}

/** Bun's WebSocket takes an options object (headers, perMessageDeflate); lib.dom's constructor type does not. */
const BunWebSocket = WebSocket as unknown as new (url: string, options: Bun.WebSocketOptions) => WebSocket;

function headersOf(h: PlayerHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  if (h.token !== undefined) out["X-Node-Token"] = h.token;
  if (h.playerId !== undefined) out["X-Player-Id"] = h.playerId;
  if (h.playerName !== undefined) out["X-Player-Name"] = h.playerName;
  return out;
}

/** Opens a player connection to `/rooms/:room`; rejects if the socket does not open within `timeoutMs`. */
export async function connectPlayer(node: NodeAddress, room: string, h: PlayerHeaders, timeoutMs = 3000): Promise<TestPlayer> {
  const ws = new BunWebSocket(`ws://${node.host}:${node.port}/rooms/${room}`, { headers: headersOf(h), perMessageDeflate: false });
  ws.binaryType = "arraybuffer";
  const pending: Frame[] = [];
  let waiter: ((f: Frame) => void) | undefined;
  ws.onmessage = (e: MessageEvent) => {
    const f: Frame = typeof e.data === "string" ? e.data : new Uint8Array(e.data as ArrayBuffer);
    if (waiter) {
      const w = waiter;
      waiter = undefined;
      w(f);
    } else pending.push(f);
  };
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.addEventListener("close", (e) => resolve({ code: e.code, reason: e.reason }));
  });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`player ${h.playerId ?? "?"} did not connect to room ${room} within ${timeoutMs} ms`)), timeoutMs);
    ws.addEventListener("open", () => {
      clearTimeout(t);
      resolve();
    });
    ws.addEventListener("close", (e) => {
      clearTimeout(t);
      reject(new Error(`player ${h.playerId ?? "?"} refused: close ${e.code}`));
    });
  });
  return {
    ws,
    pending,
    closed,
    close: () => ws.close(),
    next(timeoutMs = 2000) {
      const f = pending.shift();
      if (f !== undefined) return Promise.resolve(f);
      return new Promise<Frame>((resolve, reject) => {
        const t = setTimeout(() => {
          waiter = undefined;
          reject(new Error(`no frame within ${timeoutMs} ms`));
        }, timeoutMs);
        waiter = (frame) => {
          clearTimeout(t);
          resolve(frame);
        };
      });
    },
  };
}

/**
 * Sends a raw WebSocket upgrade request and returns the HTTP status of the answer (101 when
 * accepted; the socket is then closed). Shows what a refused upgrade answered, which a WebSocket
 * client hides.
 */
export async function upgradeStatus(node: NodeAddress, path: string, h: PlayerHeaders, timeoutMs = 3000): Promise<number> {
  const lines = [
    `GET ${path} HTTP/1.1`,
    `Host: ${node.host}:${node.port}`,
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Version: 13",
    `Sec-WebSocket-Key: ${Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64")}`,
    ...Object.entries(headersOf(h)).map(([k, v]) => `${k}: ${v}`),
    "",
    "",
  ];
  return new Promise<number>((resolve, reject) => {
    let buf = "";
    let done = false;
    const t = setTimeout(() => finish(new Error(`no upgrade answer within ${timeoutMs} ms`)), timeoutMs);
    const finish = (r: number | Error, sock?: { end(): void }) => {
      if (done) return;
      done = true;
      clearTimeout(t);
      sock?.end();
      if (r instanceof Error) reject(r);
      else resolve(r);
    };
    Bun.connect({
      hostname: node.host,
      port: node.port,
      socket: {
        open(sock) {
          sock.write(lines.join("\r\n"));
        },
        data(sock, data) {
          buf += data.toString("latin1");
          const m = /^HTTP\/1\.[01] (\d{3})/.exec(buf);
          if (m) finish(Number(m[1]), sock);
        },
        close() {
          finish(new Error("connection closed before an answer"));
        },
        error(_sock, err) {
          finish(err);
        },
      },
    }).catch((err: unknown) => finish(err instanceof Error ? err : new Error(String(err))));
  });
}

/** The node contract's `/health` body. */
export interface HealthBody {
  state: string;
  rooms: number;
  players: number;
}

/** GET /health once; undefined when the node does not answer 200. */
export async function getHealth(node: NodeAddress, timeoutMs = 1000): Promise<HealthBody | undefined> {
  try {
    const res = await fetch(`http://${node.host}:${node.port}/health`, { signal: AbortSignal.timeout(timeoutMs) });
    if (res.status !== 200) return undefined;
    return (await res.json()) as HealthBody;
  } catch {
    return undefined;
  }
}

/** Polls /health until it says `state` (default ready); returns the body and how long it took. */
export async function waitHealth(node: NodeAddress, timeoutMs: number, state = "ready"): Promise<{ body: HealthBody; ms: number }> {
  const t0 = performance.now();
  const end = t0 + timeoutMs;
  for (;;) {
    const body = await getHealth(node, Math.min(1000, Math.max(50, end - performance.now())));
    if (body?.state === state) return { body, ms: performance.now() - t0 };
    if (performance.now() > end) throw new Error(`node ${node.host}:${node.port} not ${state} within ${timeoutMs} ms (last: ${JSON.stringify(body)})`);
    await Bun.sleep(15);
  }
}

/** Bytes of a frame, for byte-exact comparisons. */
export function frameBytes(f: Frame): Uint8Array {
  return typeof f === "string" ? new TextEncoder().encode(f) : f;
}

/** A free TCP port on 127.0.0.1 (bound and released; same as services.ts freePort, without its probes). */
export function freeLoopbackPort(): number {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const p = s.port;
  s.stop(true);
  return p;
}
