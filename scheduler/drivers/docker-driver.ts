/**
 * DockerDriver: nodes as containers of the node image (dockerode), on one or several engines.
 *
 * - Containers are named `<fleet>-<nodeId>` and labelled `fleetgate.fleet`, `fleetgate.node`,
 *   `fleetgate.port`, `fleetgate.host`; every lookup goes by name or label filter, so a restarted
 *   scheduler sees what its predecessor started.
 * - Networking `host` (default; measured ~2.4× the msg/s of a published port, see DESIGN): the node
 *   binds the scheduler-assigned port on the bind address through its HOST env. `bridge`: the
 *   container port is published on bindAddress:port (127.0.0.1 by default) — the node is dialled
 *   there, never on a container-network address.
 * - New nodes go to the engine with the fewest running containers of this fleet, among the
 *   engines of the region the node is wanted in (DOCKER_HOSTS `region=url`; any engine when none
 *   is there). Containers carry `fleetgate.region`; one engine may be listed under two regions
 *   (tests on one machine): its containers then belong to the entry of their region label.
 */
import type Docker from "dockerode";
import { realClock, type Clock } from "../../core/clock.ts";
import type { DockerNetworkMode } from "../../core/config.ts";
import { silentLogger, type Logger } from "../../core/log.ts";
import { dockerFromUrl, dockerStatus } from "../../core/docker-connect.ts";
import { DriverError, type DriverNodeInfo, type NodeDriver, type NodeHandle, type NodeSpec, type NodeStats } from "./driver.ts";
import { KeyedLock } from "../../core/keyed-lock.ts";

export const LABEL_FLEET = "fleetgate.fleet";
export const LABEL_NODE = "fleetgate.node";
export const LABEL_PORT = "fleetgate.port";
export const LABEL_HOST = "fleetgate.host";
export const LABEL_REGION = "fleetgate.region";
/** Hash of the spec a container was created from: a wake with a different spec recreates it. */
export const LABEL_SPEC = "fleetgate.spec-sha256";

/** Options of {@link DockerDriver}. Nothing is read from the environment. */
export interface DockerDriverOptions {
  /** Fleet name: container name prefix and `fleetgate.fleet` label. */
  fleet: string;
  /** Node image (must exist on every engine; see node/image.ts ensureNodeImage). */
  image: string;
  /** DOCKER_HOSTS entries. Default the local unix socket. */
  dockerHosts?: readonly string[];
  /** Region of each DOCKER_HOSTS entry, same order (Config.dockerHostRegions). Default: every engine in `defaultRegion`. */
  hostRegions?: readonly string[];
  /** Region of engines without one. Default `local`. */
  defaultRegion?: string;
  /** `host` (default) or `bridge`. */
  network?: DockerNetworkMode;
  /**
   * Host mode: the address nodes of local (unix://) engines bind; bridge: where their ports are
   * published. Default 127.0.0.1. It names an address of this machine, so it does not apply to
   * remote (tcp://) engines: nodes there bind 0.0.0.0 (protected by their NODE_TOKEN) unless
   * `bindAddresses` names an address for that engine.
   */
  bindAddress?: string;
  /** Bind address per DOCKER_HOSTS entry (e.g. a remote host's private-network address). */
  bindAddresses?: Readonly<Record<string, string>>;
  /**
   * Address to dial nodes of an engine at, by DOCKER_HOSTS entry. Default: for a unix socket the
   * bind address (127.0.0.1 when binding 0.0.0.0), for tcp:// the engine's host name.
   */
  advertiseHosts?: Readonly<Record<string, string>>;
  /** Container memory limit, MB. Default 256. */
  memoryMb?: number;
  /** Container CPU limit. Default 1. */
  cpus?: number;
  /** Engines already connected, by DOCKER_HOSTS entry (tests); others are connected from their URL. */
  clients?: Readonly<Record<string, Docker>>;
  clock?: Clock;
  logger?: Logger;
}

interface Engine {
  url: string;
  region: string;
  /** Another entry lists the same engine (under another region): filter its containers by region label. */
  shared: boolean;
  docker: Docker;
  /** Address nodes on this engine bind (host mode) or are published on (bridge). */
  bind: string;
  /** Address this machine dials nodes on this engine at. */
  advertise: string;
}

interface Located {
  engine: Engine;
  container: Docker.Container;
  info: Docker.ContainerInspectInfo;
}

const NODE_ID_RE = /^[A-Za-z0-9_.-]{1,64}$/;

export class DockerDriver implements NodeDriver {
  readonly kind = "docker";
  private readonly fleet: string;
  private readonly image: string;
  private readonly engines: Engine[];
  private readonly network: DockerNetworkMode;
  private readonly memoryBytes: number;
  private readonly nanoCpus: number;
  private readonly clock: Clock;
  private readonly log: Logger;
  /** One start/stop/remove at a time per node. */
  private readonly locks = new KeyedLock();
  /** Starts this driver has under way per engine (url): counted as load, so concurrent starts spread. */
  private readonly startsUnderWay = new Map<string, number>();

  constructor(opts: DockerDriverOptions) {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(opts.fleet)) throw new DriverError(`fleet name ${JSON.stringify(opts.fleet)} must be 1-63 of [A-Za-z0-9_.-]`, false);
    this.fleet = opts.fleet;
    this.image = opts.image;
    this.network = opts.network ?? "host";
    this.memoryBytes = Math.round((opts.memoryMb ?? 256) * 1024 * 1024);
    this.nanoCpus = Math.round((opts.cpus ?? 1) * 1e9);
    this.clock = opts.clock ?? realClock;
    this.log = opts.logger ?? silentLogger;
    const urls = opts.dockerHosts?.length ? opts.dockerHosts : ["unix:///var/run/docker.sock"];
    const regionOf = (i: number) => opts.hostRegions?.[i] ?? opts.defaultRegion ?? "local";
    this.engines = urls.map((url, i) => ({
      url,
      region: regionOf(i),
      shared: urls.some((u, j) => j !== i && u === url),
      docker: opts.clients?.[url] ?? dockerFromUrl(url),
      ...engineAddresses(url, opts.bindAddress ?? "127.0.0.1", opts.bindAddresses?.[url], opts.advertiseHosts?.[url]),
    }));
  }

  /** Container name of a node. */
  containerName(nodeId: string): string {
    return `${this.fleet}-${nodeId}`;
  }

  async start(spec: NodeSpec): Promise<NodeHandle> {
    checkNodeId(spec.nodeId);
    return this.locked(spec.nodeId, async () => {
      const specHash = hashSpec(spec);
      const found = await this.locate(spec.nodeId);
      if (found) {
        if (found.info.State.Running) return this.handleOf(found);
        if (found.info.Config.Labels?.[LABEL_SPEC] === specHash) {
          // A wake: the stopped container still exists (until CLEANUP_DELETE) and starts again.
          await this.startContainer(found.engine, found.container, spec);
          return this.handleOf(await this.mustLocate(spec.nodeId));
        }
        // Same node id, different settings (token, port…): the old container cannot serve them.
        await removeContainer(found.container);
        return this.create(spec, specHash, found.engine);
      }
      // The engine is chosen and its start counted in one synchronous step after the listing, so
      // nodes started at once spread over the engines instead of all landing on the first one.
      const engine = await this.leastLoadedEngine(spec.region);
      this.startsUnderWay.set(engine.url, (this.startsUnderWay.get(engine.url) ?? 0) + 1);
      try {
        return await this.create(spec, specHash, engine);
      } finally {
        this.startsUnderWay.set(engine.url, (this.startsUnderWay.get(engine.url) ?? 1) - 1);
      }
    });
  }

  async stop(nodeId: string, graceMs: number): Promise<void> {
    checkNodeId(nodeId);
    return this.locked(nodeId, async () => {
      const found = await this.locate(nodeId);
      if (!found || !found.info.State.Running) return;
      // Docker sends the image's STOPSIGNAL (SIGTERM), waits `t` seconds, then SIGKILLs; the call
      // returns once the container has stopped.
      try {
        await found.container.stop({ t: Math.max(0, Math.ceil(graceMs / 1000)) });
      } catch (err) {
        const s = dockerStatus(err);
        if (s !== 304 && s !== 404) throw classify(err, `stop ${this.containerName(nodeId)}`);
      }
      await this.waitStopped(found.container);
    });
  }

  async remove(nodeId: string): Promise<void> {
    checkNodeId(nodeId);
    return this.locked(nodeId, async () => {
      const found = await this.locate(nodeId);
      if (found) await removeContainer(found.container);
    });
  }

  async list(): Promise<DriverNodeInfo[]> {
    const out: DriverNodeInfo[] = [];
    const perEngine = await Promise.all(
      this.engines.map(async (engine) => {
        try {
          return { engine, items: await engine.docker.listContainers({ all: true, filters: { label: this.labelFilter(engine) } }) };
        } catch (err) {
          throw classify(err, `list containers on ${engine.url}`);
        }
      }),
    );
    for (const { engine, items } of perEngine) {
      for (const c of items) {
        const nodeId = c.Labels[LABEL_NODE];
        if (!nodeId) continue;
        const running = c.State === "running";
        const exited = /Exited \((\d+)\)/.exec(c.Status);
        out.push({
          nodeId,
          driver: this.kind,
          ref: c.Id,
          host: c.Labels[LABEL_HOST] ?? engine.advertise,
          port: Number(c.Labels[LABEL_PORT] ?? 0),
          dockerHost: engine.url,
          region: c.Labels[LABEL_REGION] ?? engine.region,
          running,
          exitCode: !running && exited?.[1] !== undefined ? Number(exited[1]) : undefined,
          // The list call has no start time; `inspect` has it.
          startedAt: undefined,
        });
      }
    }
    return out.sort((a, b) => a.nodeId.localeCompare(b.nodeId));
  }

  async inspect(nodeId: string): Promise<DriverNodeInfo | undefined> {
    checkNodeId(nodeId);
    const found = await this.locate(nodeId);
    if (!found) return undefined;
    const st = found.info.State;
    const startedAt = Date.parse(st.StartedAt);
    return {
      ...this.handleOf(found),
      running: st.Running,
      // A created-but-never-started container has no exit yet.
      exitCode: st.Running || st.Status === "created" ? undefined : st.ExitCode,
      startedAt: Number.isFinite(startedAt) && startedAt > 0 ? startedAt : undefined,
    };
  }

  async logs(nodeId: string, tailLines = 200): Promise<string> {
    checkNodeId(nodeId);
    const found = await this.locate(nodeId);
    if (!found) return "";
    try {
      const buf: Buffer = await found.container.logs({ stdout: true, stderr: true, follow: false, tail: tailLines });
      return found.info.Config.Tty ? buf.toString("utf8") : demuxDockerLogs(buf);
    } catch (err) {
      throw classify(err, `logs of ${this.containerName(nodeId)}`);
    }
  }

  async stats(nodeId: string): Promise<NodeStats | undefined> {
    checkNodeId(nodeId);
    const found = await this.locate(nodeId);
    if (!found || !found.info.State?.Running) return undefined;
    try {
      // stream: false without one-shot: the engine takes two readings ~1 s apart, so precpu is set.
      const s = (await found.container.stats({ stream: false })) as unknown as DockerStatsReading;
      return dockerStats(s, Date.now());
    } catch (err) {
      throw classify(err, `stats of ${this.containerName(nodeId)}`);
    }
  }

  async close(): Promise<void> {
    // dockerode keeps no connections open between calls.
  }

  // ---- internals ------------------------------------------------------------------------------

  private async create(spec: NodeSpec, specHash: string, engine: Engine): Promise<NodeHandle> {
    const name = this.containerName(spec.nodeId);
    const host = this.network === "host";
    const env: Record<string, string> = {
      ...(spec.env ?? {}),
      NODE_ID: spec.nodeId,
      PORT: String(spec.port),
      // Host networking: bind only the configured address. Bridge: all interfaces of the container's
      // own namespace; the publish below decides what the outside sees.
      HOST: host ? engine.bind : "0.0.0.0",
      MAX_ROOMS: String(spec.maxRooms),
      MAX_PLAYERS: String(spec.maxPlayers),
      NODE_TOKEN: spec.token,
      DRAIN_SECONDS: String(spec.drainSeconds),
      ROOM_MODE: spec.roomMode,
    };
    const portKey = `${spec.port}/tcp`;
    let container: Docker.Container;
    try {
      container = await engine.docker.createContainer({
        name,
        Image: spec.image || this.image,
        Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
        Labels: {
          [LABEL_FLEET]: this.fleet,
          [LABEL_NODE]: spec.nodeId,
          [LABEL_PORT]: String(spec.port),
          [LABEL_HOST]: engine.advertise,
          [LABEL_REGION]: engine.region,
          [LABEL_SPEC]: specHash,
        },
        ...(host ? {} : { ExposedPorts: { [portKey]: {} } }),
        StopSignal: "SIGTERM",
        HostConfig: {
          NetworkMode: host ? "host" : "bridge",
          ...(host ? {} : { PortBindings: { [portKey]: [{ HostIp: engine.bind, HostPort: String(spec.port) }] } }),
          Memory: this.memoryBytes,
          NanoCpus: this.nanoCpus,
          RestartPolicy: { Name: "no" },
          // The node needs no privileges and writes nothing: least privilege costs nothing here.
          ReadonlyRootfs: true,
          CapDrop: ["ALL"],
          SecurityOpt: ["no-new-privileges"],
          PidsLimit: 256,
          LogConfig: { Type: "json-file", Config: { "max-size": "5m", "max-file": "1" } },
        },
      });
    } catch (err) {
      if (dockerStatus(err) === 409) {
        // Created meanwhile by another scheduler replica: use that one.
        const found = await this.mustLocate(spec.nodeId);
        if (!found.info.State.Running) await this.startContainer(found.engine, found.container, spec);
        return this.handleOf(await this.mustLocate(spec.nodeId));
      }
      throw classify(err, `create ${name} from ${spec.image || this.image} on ${engine.url}`);
    }
    await this.startContainer(engine, container, spec);
    this.log.info("node container started", { nodeId: spec.nodeId, engine: engine.url, port: spec.port, network: this.network });
    return this.handleOf(await this.mustLocate(spec.nodeId));
  }

  private async startContainer(engine: Engine, container: Docker.Container, spec: NodeSpec): Promise<void> {
    try {
      await container.start();
    } catch (err) {
      // 304: already started by a racing call.
      if (dockerStatus(err) === 304) return;
      throw classify(err, `start ${this.containerName(spec.nodeId)} on ${engine.url}`);
    }
  }

  /** Resolves once the container is not running (stop's HTTP call can return a beat early). */
  private async waitStopped(container: Docker.Container): Promise<void> {
    const end = this.clock.now() + 10_000;
    while (this.clock.now() < end) {
      try {
        if (!(await container.inspect()).State.Running) return;
      } catch (err) {
        if (dockerStatus(err) === 404) return;
        throw classify(err, "inspect");
      }
      await this.clock.sleep(25);
    }
    throw new DriverError(`container ${container.id} still running 10 s after stop`, true);
  }

  private async locate(nodeId: string): Promise<Located | undefined> {
    const name = this.containerName(nodeId);
    const seen = new Set<string>();
    for (const listed of this.engines) {
      // One engine listed under two regions is asked once; the container's region label says which entry it is.
      if (seen.has(listed.url)) continue;
      seen.add(listed.url);
      let engine = listed;
      const container = engine.docker.getContainer(name);
      try {
        const info = await container.inspect();
        // A same-named container that is not ours (another tool) must not be driven.
        if (info.Config.Labels?.[LABEL_FLEET] !== this.fleet || info.Config.Labels?.[LABEL_NODE] !== nodeId) {
          throw new DriverError(`container ${name} on ${engine.url} exists but is not node ${nodeId} of fleet ${this.fleet}`, false);
        }
        const labelRegion = info.Config.Labels?.[LABEL_REGION];
        if (listed.shared && labelRegion) engine = this.engines.find((e) => e.url === listed.url && e.region === labelRegion) ?? listed;
        return { engine, container, info };
      } catch (err) {
        if (err instanceof DriverError) throw err;
        if (dockerStatus(err) === 404) continue;
        throw classify(err, `inspect ${name} on ${engine.url}`);
      }
    }
    return undefined;
  }

  private async mustLocate(nodeId: string): Promise<Located> {
    const found = await this.locate(nodeId);
    if (!found) throw new DriverError(`container ${this.containerName(nodeId)} vanished while starting`, true);
    return found;
  }

  /** Label filter for this fleet's containers of one DOCKER_HOSTS entry. */
  private labelFilter(engine: Engine): string[] {
    return engine.shared ? [`${LABEL_FLEET}=${this.fleet}`, `${LABEL_REGION}=${engine.region}`] : [`${LABEL_FLEET}=${this.fleet}`];
  }

  /**
   * The reachable engine with the fewest containers of this fleet (running or being created, plus
   * this driver's starts under way on it), in `region` when it has engines.
   */
  private async leastLoadedEngine(region?: string): Promise<Engine> {
    const inRegion = this.engines.filter((e) => e.region === region);
    const engines = inRegion.length > 0 ? inRegion : this.engines;
    if (engines.length === 1 && engines[0]) return engines[0];
    const counts = await Promise.all(
      engines.map(async (engine) => {
        try {
          const listed = await engine.docker.listContainers({ filters: { label: this.labelFilter(engine), status: ["created", "restarting", "running"] } });
          return listed.length;
        } catch (err) {
          this.log.warn("docker engine unreachable; not placing nodes on it", { engine: engine.url, error: err instanceof Error ? err.message : String(err) });
          return undefined;
        }
      }),
    );
    // The starts under way are read now, after the awaits, so one that began meanwhile counts too.
    // (A start under way may already be listed as `created`: counted twice at worst, briefly.)
    const engine = engines[pickEngine(counts.map((c, i) => (c === undefined ? undefined : c + (this.startsUnderWay.get(engines[i]!.url) ?? 0))))];
    if (!engine) throw new DriverError("no docker engine is reachable", true);
    return engine;
  }

  private handleOf(l: Located): NodeHandle {
    const labels = l.info.Config.Labels ?? {};
    return {
      nodeId: labels[LABEL_NODE] ?? "",
      driver: this.kind,
      ref: l.info.Id,
      host: labels[LABEL_HOST] ?? l.engine.advertise,
      port: Number(labels[LABEL_PORT] ?? 0),
      dockerHost: l.engine.url,
      region: labels[LABEL_REGION] ?? l.engine.region,
    };
  }

  private locked<T>(nodeId: string, fn: () => Promise<T>): Promise<T> {
    return this.locks.run(nodeId, fn);
  }
}

/**
 * Index of the engine with the fewest running fleet containers (`undefined`: unreachable, never
 * chosen); ties go to the first listed. -1 when none is reachable.
 */
export function pickEngine(runningCounts: ReadonlyArray<number | undefined>): number {
  let best = -1;
  runningCounts.forEach((n, i) => {
    if (n === undefined) return;
    const b = best >= 0 ? runningCounts[best] : undefined;
    if (b === undefined || n < b) best = i;
  });
  return best;
}

/**
 * Where nodes of one engine bind and where this machine dials them. Local engines use the bind
 * address (dialled at 127.0.0.1 when it is a wildcard); remote engines bind their own wildcard
 * unless told otherwise and are dialled at the engine's host name.
 */
export function engineAddresses(url: string, bindAddress: string, bindOverride?: string, advertiseOverride?: string): { bind: string; advertise: string } {
  const local = url.startsWith("unix://");
  const bind = bindOverride ?? (local ? bindAddress : "0.0.0.0");
  const wildcard = bind === "0.0.0.0" || bind === "::";
  const dial = !wildcard ? bind : local ? "127.0.0.1" : new URL(url.replace(/^tcp:/, "http:")).hostname;
  return { bind, advertise: advertiseOverride ?? dial };
}

function checkNodeId(nodeId: string): void {
  if (!NODE_ID_RE.test(nodeId)) throw new DriverError(`node id ${JSON.stringify(nodeId)} must be 1-64 of [A-Za-z0-9_.-]`, false);
}

async function removeContainer(container: Docker.Container): Promise<void> {
  try {
    await container.remove({ force: true, v: true });
  } catch (err) {
    const s = dockerStatus(err);
    // 404: already gone; 409: a removal is already in progress.
    if (s === 404 || s === 409) return;
    throw classify(err, `remove ${container.id}`);
  }
}

/** Sorted-key JSON of the spec, hashed: what the container was made from. */
function hashSpec(spec: NodeSpec): string {
  const env = Object.fromEntries(Object.entries(spec.env ?? {}).sort(([a], [b]) => a.localeCompare(b)));
  const canonical = JSON.stringify([spec.nodeId, spec.port, spec.token, spec.maxRooms, spec.maxPlayers, spec.drainSeconds, spec.roomMode, env, ...(spec.image ? [spec.image] : [])]);
  return new Bun.CryptoHasher("sha256").update(canonical).digest("hex");
}

/**
 * Engine errors as DriverErrors: what a retry cannot fix (missing image, bad request) is not
 * retryable; engine trouble (unreachable, 5xx, port briefly taken) is.
 */
export function classify(err: unknown, what: string): DriverError {
  if (err instanceof DriverError) return err;
  const status = dockerStatus(err);
  const message = err instanceof Error ? err.message : String(err);
  const text = `${what}: ${message}`;
  if (status === 404 && /image/i.test(message)) return new DriverError(`${text} (build it with npm run node:image)`, false);
  if (status === 400 || status === 401 || status === 403) return new DriverError(text, false);
  return new DriverError(text, true);
}

/**
 * Splits Docker's multiplexed log stream (8-byte header per frame: stream type, 3 zero bytes,
 * big-endian length) into text, stdout and stderr interleaved as they were written.
 */
export function demuxDockerLogs(buf: Uint8Array): string {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const parts: Buffer[] = [];
  let i = 0;
  while (i + 8 <= b.length) {
    const type = b[i];
    if (type !== 0 && type !== 1 && type !== 2) return b.toString("utf8"); // not multiplexed
    const len = b.readUInt32BE(i + 4);
    parts.push(b.subarray(i + 8, Math.min(b.length, i + 8 + len)));
    i += 8 + len;
  }
  return Buffer.concat(parts).toString("utf8");
}

/** The fields of the engine's `/containers/{id}/stats` answer that {@link dockerStats} reads. */
export interface DockerStatsReading {
  cpu_stats?: { cpu_usage?: { total_usage?: number; percpu_usage?: number[] }; system_cpu_usage?: number; online_cpus?: number };
  precpu_stats?: { cpu_usage?: { total_usage?: number }; system_cpu_usage?: number };
  memory_stats?: { usage?: number; limit?: number; stats?: Record<string, number> };
}

/**
 * CPU percent and memory from one stats answer, as `docker stats` computes them: CPU is the
 * container's share of the host's CPU time between the two readings times the online CPUs;
 * memory is usage minus the inactive page cache (cgroup v2 `inactive_file`, v1 `cache`).
 */
export function dockerStats(s: DockerStatsReading, at: number): NodeStats {
  const cpu = (s.cpu_stats?.cpu_usage?.total_usage ?? 0) - (s.precpu_stats?.cpu_usage?.total_usage ?? 0);
  const system = (s.cpu_stats?.system_cpu_usage ?? 0) - (s.precpu_stats?.system_cpu_usage ?? 0);
  const online = s.cpu_stats?.online_cpus || s.cpu_stats?.cpu_usage?.percpu_usage?.length || 1;
  const cpuPercent = cpu > 0 && system > 0 ? (cpu / system) * online * 100 : 0;
  const usage = s.memory_stats?.usage ?? 0;
  const cache = s.memory_stats?.stats?.inactive_file ?? s.memory_stats?.stats?.cache ?? 0;
  const limit = s.memory_stats?.limit;
  return {
    at,
    cpuPercent: Math.round(cpuPercent * 10) / 10,
    memoryBytes: Math.max(0, usage - cache),
    // An unlimited container reports the host's memory (or a huge number) as its limit.
    memoryLimitBytes: limit && limit < 2 ** 60 ? limit : null,
  };
}
