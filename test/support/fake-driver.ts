/**
 * FakeDriver: the NodeDriver for unit tests. By default every node is a real in-process node
 * server (`startNodeServer`), so `/health` and WebSockets work without spawning anything; with
 * `servers: false` nodes are plain records (no sockets at all) and `healthOf` stands in for /health.
 * Knobs inject the failures a scheduler must survive: a start that throws, a node that never becomes
 * ready, a node that dies.
 */
import { realClock, type Clock } from "../../core/clock.ts";
import { startNodeServer, type NodeHealthBody, type NodeServer } from "../../node/server.ts";
import { DriverError, type DriverNodeInfo, type NodeDriver, type NodeHandle, type NodeSpec } from "../../scheduler/drivers/driver.ts";

/** Options of {@link FakeDriver}. */
export interface FakeDriverOptions {
  /** Run a real node server per node. Default true. */
  servers?: boolean;
  /** Bind each node on its spec's port instead of a free one (servers only). Default false. */
  useSpecPort?: boolean;
  /** Reported driver kind. Default `fake`. */
  kind?: string;
  /** Close grace of the node servers after 4009 (ms). Default 200 (keeps tests fast). */
  closeGraceMs?: number;
  clock?: Clock;
}

/** One driver call, recorded for assertions. */
export interface FakeDriverCall {
  op: "start" | "stop" | "remove";
  nodeId: string;
  at: number;
}

interface FakeNode {
  spec: NodeSpec;
  ref: string;
  port: number;
  running: boolean;
  exitCode: number | undefined;
  startedAt: number | undefined;
  server: NodeServer | undefined;
  /** Never-ready nodes run but answer nothing on their port. */
  neverReady: boolean;
  logs: string[];
}

export class FakeDriver implements NodeDriver {
  readonly kind: string;
  /** Every start/stop/remove call, in order. */
  readonly calls: FakeDriverCall[] = [];
  private readonly nodes = new Map<string, FakeNode>();
  private readonly servers: boolean;
  private readonly useSpecPort: boolean;
  private readonly closeGraceMs: number;
  private readonly clock: Clock;
  private startFailures: Error[] = [];
  private neverReadyNext = 0;
  private readonly neverReadyIds = new Set<string>();
  private seq = 0;

  constructor(opts: FakeDriverOptions = {}) {
    this.kind = opts.kind ?? "fake";
    this.servers = opts.servers ?? true;
    this.useSpecPort = opts.useSpecPort ?? false;
    this.closeGraceMs = opts.closeGraceMs ?? 200;
    this.clock = opts.clock ?? realClock;
  }

  // ---- failure knobs -------------------------------------------------------------------------

  /** The next start throws `err` (default: a retryable DriverError). Calls queue up. */
  failNextStart(err: Error = new DriverError("injected start failure", true)): void {
    this.startFailures.push(err);
  }

  /**
   * The next `count` started nodes (or, with `nodeId`, that node whenever started) run but never
   * answer /health: their port has nothing listening, and `healthOf` returns undefined.
   */
  neverReady(opts: { count?: number; nodeId?: string } = {}): void {
    if (opts.nodeId !== undefined) this.neverReadyIds.add(opts.nodeId);
    else this.neverReadyNext += opts.count ?? 1;
  }

  /** The node dies at once (players see an abnormal close), exiting with `exitCode`. */
  async crash(nodeId: string, exitCode = 137): Promise<void> {
    const n = this.nodes.get(nodeId);
    if (!n || !n.running) return;
    await n.server?.stop();
    n.server = undefined;
    n.running = false;
    n.exitCode = exitCode;
    n.logs.push(`crashed with exit code ${exitCode}`);
  }

  /** What the node's /health would answer, or undefined when it would not answer. */
  healthOf(nodeId: string): NodeHealthBody | undefined {
    const n = this.nodes.get(nodeId);
    if (!n || !n.running || n.neverReady) return undefined;
    if (n.server) return n.server.health();
    return { state: "ready", rooms: 0, players: 0, nodeId };
  }

  /** The in-process server of a node (servers mode), e.g. to drive a drain directly. */
  serverOf(nodeId: string): NodeServer | undefined {
    return this.nodes.get(nodeId)?.server;
  }

  /** The spec a node was last started with. */
  specOf(nodeId: string): NodeSpec | undefined {
    return this.nodes.get(nodeId)?.spec;
  }

  // ---- NodeDriver ----------------------------------------------------------------------------

  async start(spec: NodeSpec): Promise<NodeHandle> {
    this.calls.push({ op: "start", nodeId: spec.nodeId, at: this.clock.now() });
    const failure = this.startFailures.shift();
    if (failure) throw failure;
    const existing = this.nodes.get(spec.nodeId);
    if (existing?.running) return this.handleOf(existing);

    let neverReady = this.neverReadyIds.has(spec.nodeId);
    if (!neverReady && this.neverReadyNext > 0) {
      this.neverReadyNext--;
      neverReady = true;
    }
    let server: NodeServer | undefined;
    let port = spec.port;
    if (this.servers && !neverReady) {
      try {
        server = startNodeServer({
          nodeId: spec.nodeId,
          port: this.useSpecPort ? spec.port : 0,
          hostname: "127.0.0.1",
          maxRooms: spec.maxRooms,
          maxPlayers: spec.maxPlayers,
          token: spec.token,
          roomMode: spec.roomMode,
          closeGraceMs: this.closeGraceMs,
          // One clock for the driver's grace and the node's drain, so a FakeClock moves both.
          clock: this.clock,
        });
      } catch (err) {
        throw new DriverError(`fake node ${spec.nodeId} cannot listen: ${err instanceof Error ? err.message : String(err)}`, true);
      }
      port = server.port;
    } else if (this.servers && neverReady) {
      port = unusedPort();
    }
    const node: FakeNode = {
      spec,
      ref: `fake-${++this.seq}`,
      port,
      running: true,
      exitCode: undefined,
      startedAt: this.clock.now(),
      server,
      neverReady,
      logs: [...(existing?.logs ?? []), `started on port ${port}${neverReady ? " (never ready)" : ""}`],
    };
    this.nodes.set(spec.nodeId, node);
    return this.handleOf(node);
  }

  async stop(nodeId: string, graceMs: number): Promise<void> {
    this.calls.push({ op: "stop", nodeId, at: this.clock.now() });
    const n = this.nodes.get(nodeId);
    if (!n || !n.running) return;
    let exitCode = 0;
    if (n.server) {
      // SIGTERM: the node drains for up to DRAIN_SECONDS; past the grace the driver "SIGKILLs" it.
      const server = n.server;
      const drained = server.drain(n.spec.drainSeconds * 1000).then(() => true);
      let timer: { cancel(): void } | undefined;
      const killed = new Promise<false>((res) => (timer = this.clock.setTimeout(() => res(false), graceMs)));
      const inTime = await Promise.race([drained, killed]);
      timer?.cancel();
      if (!inTime) exitCode = 137;
      await server.stop();
    }
    n.server = undefined;
    n.running = false;
    n.exitCode = exitCode;
    n.logs.push(`stopped with exit code ${exitCode}`);
  }

  async remove(nodeId: string): Promise<void> {
    this.calls.push({ op: "remove", nodeId, at: this.clock.now() });
    const n = this.nodes.get(nodeId);
    if (!n) return;
    if (n.running) await this.crash(nodeId, 137);
    this.nodes.delete(nodeId);
  }

  async list(): Promise<DriverNodeInfo[]> {
    return [...this.nodes.values()].map((n) => this.infoOf(n));
  }

  async inspect(nodeId: string): Promise<DriverNodeInfo | undefined> {
    const n = this.nodes.get(nodeId);
    return n ? this.infoOf(n) : undefined;
  }

  async logs(nodeId: string, tailLines = 200): Promise<string> {
    return (this.nodes.get(nodeId)?.logs ?? []).slice(-tailLines).join("\n");
  }

  /** Stops every server at once (tests' afterAll). */
  async close(): Promise<void> {
    await Promise.all([...this.nodes.values()].map((n) => n.server?.stop()));
    for (const n of this.nodes.values()) {
      n.server = undefined;
      if (n.running) {
        n.running = false;
        n.exitCode = 137;
      }
    }
  }

  private handleOf(n: FakeNode): NodeHandle {
    return { nodeId: n.spec.nodeId, driver: this.kind, ref: n.ref, host: "127.0.0.1", port: n.port, dockerHost: "" };
  }

  private infoOf(n: FakeNode): DriverNodeInfo {
    return { ...this.handleOf(n), running: n.running, exitCode: n.running ? undefined : n.exitCode, startedAt: n.startedAt };
  }
}

/** A port nothing listens on (bound and released at once). */
function unusedPort(): number {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const p = s.port;
  s.stop(true);
  return p;
}
