/**
 * Gateway test fixtures: a real gateway (createApp + real Redis under a random prefix) listening
 * on a random port, real reference nodes (node/server.ts) registered as ready in the same
 * registry, token helpers and a small promise-based WebSocket client.
 */
import { realClock } from "../../core/clock.ts";
import { testConfig, type Config } from "../../core/config.ts";
import { silentLogger } from "../../core/log.ts";
import type { NodeRecord } from "../../core/types.ts";
import { createApp, type GatewayApp } from "../../gateway/app.ts";
import type { Claims, Role } from "../../gateway/contracts.ts";
import type { GatewayDeps } from "../../gateway/deps.ts";
import { buildGatewayDeps } from "../../gateway/ops/build-deps.ts";
import { startNodeServer, type NodeServer } from "../../node/server.ts";
import { makeNode } from "./nodes.ts";
import { REDIS_URL } from "./services.ts";

export const TEST_JWT_SECRET = "test-secret-0123456789abcdef";

export interface TestGateway {
  app: GatewayApp;
  deps: GatewayDeps;
  port: number;
  url: string;
  wsUrl: string;
  /** Signs a token for a player (or admin) with this gateway's key. */
  token(sub?: string, roles?: Role[], ttlMs?: number): Promise<string>;
  stop(): Promise<void>;
}

/** A config for gateway tests under `prefix`, generous limits unless overridden. */
export function gatewayTestConfig(prefix: string, overrides: Partial<Config> = {}): Config {
  return testConfig({
    redisUrl: REDIS_URL,
    redisPrefix: prefix,
    jwtSecret: TEST_JWT_SECRET,
    httpRateLimit: 100_000,
    wsIpRateLimit: 100_000,
    wsRateLimit: 100_000,
    joinWaitTimeoutMs: 2000,
    reconnectDelayMs: 100,
    ...overrides,
  });
}

/** Starts a gateway on a random port against Redis under `prefix`. */
export async function startTestGateway(prefix: string, overrides: Partial<Config> = {}): Promise<TestGateway> {
  const config = gatewayTestConfig(prefix, overrides);
  const built = buildGatewayDeps(config, { jwtSecret: TEST_JWT_SECRET, clock: realClock, log: silentLogger });
  const app = createApp(built.deps);
  // A given `port` (e.g. from freePort()) makes connectUrl, built from PORT, reachable as is.
  app.listen({ hostname: "127.0.0.1", port: overrides.port ?? 0 });
  // listen() fires onStart without awaiting it: wait for the subscriptions before returning.
  await app.decorator.gateway.start();
  const port = app.server!.port!;
  let n = 0;
  return {
    app,
    deps: built.deps,
    port,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}`,
    async token(sub = `p_test${++n}_${crypto.randomUUID().slice(0, 6)}`, roles: Role[] = ["player"], ttlMs?: number) {
      const claims: Omit<Claims, "exp"> = { sub, name: `name-${sub}`, region: "local", roles };
      return (await built.deps.signer.sign(claims, Date.now(), ttlMs)).token;
    },
    async stop() {
      app.decorator.gateway.hub.closeAll();
      await app.stop(true).catch(() => {});
      await built.close();
    },
  };
}

export interface TestNode {
  server: NodeServer;
  record: NodeRecord;
  stop(): Promise<void>;
}

/** Starts a reference node in-process and registers it as ready. */
export async function startTestNode(
  deps: Pick<GatewayDeps, "nodes">,
  opts: { id?: string; roomMode?: "relay" | "echo"; capacity?: number; maxRooms?: number; region?: string; state?: NodeRecord["state"] } = {},
): Promise<TestNode> {
  const id = opts.id ?? `n-${crypto.randomUUID().slice(0, 8)}`;
  const token = `tok-${crypto.randomUUID()}`;
  const capacity = opts.capacity ?? 10_000;
  const server = startNodeServer({
    nodeId: id,
    port: 0,
    hostname: "127.0.0.1",
    maxRooms: opts.maxRooms ?? 10_000,
    maxPlayers: capacity,
    token,
    roomMode: opts.roomMode ?? "echo",
    reconnectDelayMs: 100,
    closeGraceMs: 200,
  });
  const record = makeNode({ id, port: server.port, token, capacity, maxRooms: opts.maxRooms ?? 10_000, region: opts.region ?? "local", state: opts.state ?? "ready", startedAt: Date.now(), lastSeenAt: Date.now() });
  await deps.nodes.create(record, Date.now());
  return { server, record, stop: () => server.stop() };
}

/** A WebSocket with its frames and close collected, for tests. */
export interface TestSocket {
  ws: WebSocket;
  messages: (string | ArrayBuffer)[];
  /** Resolves once open; rejects if it closes first. */
  opened: Promise<void>;
  closed: Promise<{ code: number; reason: string }>;
  /** Resolves when at least `n` frames arrived. */
  waitMessages(n: number, timeoutMs?: number): Promise<void>;
}

export function openSocket(url: string, protocols?: string[]): TestSocket {
  const ws = protocols ? new WebSocket(url, protocols) : new WebSocket(url);
  ws.binaryType = "arraybuffer";
  const messages: (string | ArrayBuffer)[] = [];
  let notify: (() => void) | undefined;
  ws.onmessage = (ev) => {
    messages.push(ev.data as string | ArrayBuffer);
    notify?.();
  };
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.onclose = (ev) => resolve({ code: ev.code, reason: ev.reason });
  });
  const opened = new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    void closed.then((c) => reject(new Error(`closed before open: ${c.code} ${c.reason}`)));
  });
  opened.catch(() => {});
  return {
    ws,
    messages,
    opened,
    closed,
    async waitMessages(n, timeoutMs = 5000) {
      const end = Date.now() + timeoutMs;
      while (messages.length < n) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${n} messages (got ${messages.length})`);
        await new Promise<void>((resolve) => {
          notify = resolve;
          setTimeout(resolve, 50);
        });
      }
    },
  };
}

/** Resolves with the close of a socket, or rejects after `ms`. */
export async function closedWithin(s: TestSocket, ms = 3000): Promise<{ code: number; reason: string }> {
  return Promise.race([s.closed, Bun.sleep(ms).then(() => Promise.reject(new Error(`socket did not close within ${ms} ms`)))]);
}
