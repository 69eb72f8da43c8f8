/**
 * The HAProxy config, rendered from the live registry. Pure: the same registry and settings give
 * the same text, byte for byte (the templater compares texts to skip needless reloads, and the
 * golden tests pin it). The templates are imported as text, so rendering does no I/O.
 *
 * Every value that reaches the config is checked here: ids and hosts from the registry against
 * strict patterns (an entry that fails is left out and reported in `skipped`, never mangled into
 * something that could collide or inject a line), and operator-given strings (paths, password)
 * escaped as one HAProxy word.
 */
import { dirname, join } from "node:path";
import Handlebars from "handlebars";
import type { Config } from "../core/config.ts";
import type { GatewayRecord, NodeRecord, NodeState } from "../core/types.ts";
import mainTemplate from "../templates/haproxy.cfg.hbs" with { type: "text" };
import globalPartial from "../templates/partials/global.hbs" with { type: "text" };
import defaultsPartial from "../templates/partials/defaults.hbs" with { type: "text" };
import frontendPublicPartial from "../templates/partials/frontend-public.hbs" with { type: "text" };
import frontendStatsPartial from "../templates/partials/frontend-stats.hbs" with { type: "text" };
import backendGatewaysPartial from "../templates/partials/backend-gateways.hbs" with { type: "text" };
import backendNodesPartial from "../templates/partials/backend-nodes.hbs" with { type: "text" };

/** The template sources: the main template and its partials by name. */
export interface EdgeTemplates {
  readonly main: string;
  readonly partials: Readonly<Record<string, string>>;
}

/** The templates shipped in templates/. */
export const DEFAULT_TEMPLATES: EdgeTemplates = Object.freeze({
  main: mainTemplate,
  partials: Object.freeze({
    global: globalPartial,
    defaults: defaultsPartial,
    "frontend-public": frontendPublicPartial,
    "frontend-stats": frontendStatsPartial,
    "backend-gateways": backendGatewaysPartial,
    "backend-nodes": backendNodesPartial,
  }),
});

/** Where the running HAProxy's files live: all beside HAPROXY_CONFIG. */
export interface EdgePaths {
  /** The live config file (HAPROXY_CONFIG). */
  readonly config: string;
  readonly dir: string;
  /** Master CLI socket (`-S`): reload, show proc, and `@1 <cmd>` to reach the current worker. */
  readonly masterSocket: string;
  /** Worker runtime API socket (`stats socket`, admin level). */
  readonly statsSocket: string;
  /** `server-state-file`: server states dumped before each reload, loaded by the new worker. */
  readonly serverStateFile: string;
  /** The master's pid file. */
  readonly pidFile: string;
}

export function edgePaths(haproxyConfig: string): EdgePaths {
  const dir = dirname(haproxyConfig);
  return Object.freeze({
    config: haproxyConfig,
    dir,
    masterSocket: join(dir, "master.sock"),
    statsSocket: join(dir, "runtime.sock"),
    serverStateFile: join(dir, "server-state"),
    pidFile: join(dir, "haproxy.pid"),
  });
}

/** Everything besides the registry that the config needs; built once from Config by `edgeSettings`. */
export interface EdgeSettings {
  readonly paths: EdgePaths;
  readonly bind: string;
  readonly port: number;
  readonly statsBind: string;
  readonly statsPort: number;
  readonly statsUser: string;
  readonly statsPassword: string;
  /** TLS on the public frontend, when HAPROXY_TLS_CERT is set. */
  readonly tls: { readonly cert: string; readonly port: number } | undefined;
  /** New connections per IP per 10 s before refusal. */
  readonly connRate: number;
  readonly gatewayCheckInterMs: number;
  readonly nodeCheckInterMs: number;
  readonly nodeCheckFall: number;
  /**
   * Route `/rooms/...` on the public frontend straight to `backend nodes`. Off in production (the
   * gateways are the only way in); for edge tests that run without a gateway.
   */
  readonly roomsToNodes: boolean;
}

export class EdgeSettingsError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid HAProxy settings:\n  - ${problems.join("\n  - ")}`);
    this.name = "EdgeSettingsError";
  }
}

/** Builds EdgeSettings from Config; throws EdgeSettingsError listing every problem. */
export function edgeSettings(config: Config, opts: { statsPassword: string; roomsToNodes?: boolean }): EdgeSettings {
  const problems: string[] = [];
  if (!isBindAddress(config.haproxyBind)) problems.push(`HAPROXY_BIND=${JSON.stringify(config.haproxyBind)} is not an IP address or host name`);
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(config.haproxyStatsUser)) problems.push("HAPROXY_STATS_USER must be 1-64 of [A-Za-z0-9_.-]");
  if (!isWordSafe(opts.statsPassword) || opts.statsPassword.length === 0) problems.push("HAPROXY_STATS_PASSWORD must be printable characters without control characters");
  for (const [name, v] of [
    ["HAPROXY_CONFIG", config.haproxyConfig],
    ["HAPROXY_TLS_CERT", config.haproxyTlsCert ?? ""],
  ] as const) {
    if (!isWordSafe(v)) problems.push(`${name} must not contain control characters`);
  }
  if (config.haproxyPort === 0) problems.push("HAPROXY_PORT must not be 0");
  if (config.haproxyStatsPort === 0) problems.push("HAPROXY_STATS_PORT must not be 0");
  if (problems.length > 0) throw new EdgeSettingsError(problems);
  return Object.freeze({
    paths: edgePaths(config.haproxyConfig),
    bind: config.haproxyBind,
    port: config.haproxyPort,
    statsBind: config.haproxyBind,
    statsPort: config.haproxyStatsPort,
    statsUser: config.haproxyStatsUser,
    statsPassword: opts.statsPassword,
    tls: config.haproxyTlsCert ? Object.freeze({ cert: config.haproxyTlsCert, port: config.haproxyTlsPort }) : undefined,
    connRate: config.haproxyConnRate,
    gatewayCheckInterMs: Math.max(100, config.gatewayHeartbeatMs),
    nodeCheckInterMs: Math.max(100, config.healthCheckIntervalMs),
    nodeCheckFall: config.healthCheckFailures,
    roomsToNodes: opts.roomsToNodes ?? false,
  });
}

/** The live sets the config lists. */
export interface EdgeRegistry {
  readonly gateways: readonly GatewayRecord[];
  readonly nodes: readonly NodeRecord[];
}

/** HAProxy admin state of a node's server, from the node's registry state. */
export type ServerAdminState = "ready" | "drain" | "maint";

/**
 * Draining nodes take no new players (weight 0 / drain) but keep their sessions; stopping and
 * stopped nodes are in maintenance (no checks, no traffic); the rest are ready and their health
 * checks decide UP or DOWN.
 */
export function nodeAdminState(state: NodeState): ServerAdminState {
  switch (state) {
    case "draining":
      return "drain";
    case "stopping":
    case "stopped":
      return "maint";
    case "starting":
    case "ready":
    case "unhealthy":
      return "ready";
  }
}

/** A registry entry left out of the config, and why. */
export interface SkippedEntry {
  kind: "gateway" | "node";
  /** The offending id, JSON-quoted and cut short (it may be anything). */
  id: string;
  reason: string;
}

/** A server line's name, stable numeric id and address. */
export interface ServerEntry {
  name: string;
  /** HAProxy server `id`: derived from the name, so it does not shift when others come or go. */
  id: number;
  address: string;
}

export interface NodeServer extends ServerEntry {
  state: NodeState;
  admin: ServerAdminState;
  weight: number;
  disabled: boolean;
}

export interface RenderResult {
  /** The config file's text. */
  text: string;
  gateways: ServerEntry[];
  nodes: NodeServer[];
  skipped: SkippedEntry[];
}

const SERVER_NAME_RE = /^[A-Za-z0-9_.:-]{1,100}$/;
const HOSTNAME_RE = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const IPV6_RE = /^[0-9A-Fa-f:.]{2,45}$/;

function isIpv6(host: string): boolean {
  return IPV6_RE.test(host) && host.includes(":");
}

/** An address HAProxy may bind or dial: IPv4, IPv6 or a DNS name — nothing that could carry a space or newline. */
export function isHost(host: string): boolean {
  return IPV4_RE.test(host) || isIpv6(host) || HOSTNAME_RE.test(host);
}

function isBindAddress(host: string): boolean {
  return host === "*" || isHost(host);
}

/** `host:port` as HAProxy reads it (for IPv6 the port follows the last colon). */
function hostPort(host: string, port: number): string {
  return `${host}:${port}`;
}

function isPort(port: number): boolean {
  return Number.isInteger(port) && port >= 1 && port <= 65535;
}

function quoteId(id: unknown): string {
  return JSON.stringify(String(id)).slice(0, 80);
}

/** No control characters (a newline would start a new config line). */
function isWordSafe(s: string): boolean {
  // eslint-disable-next-line no-control-regex
  return !/[\x00-\x1f\x7f]/.test(s);
}

/**
 * One HAProxy config word: the characters HAProxy's parser treats specially outside quotes
 * (space, #, quotes, backslash) are backslash-escaped. `$` is literal outside double quotes
 * (environment variables expand only inside them) and `\$` is not an escape, so it stays as is
 * (checked against HAProxy 2.6). Control characters (tab, newline...) are refused.
 */
export function configWord(s: string): string {
  if (!isWordSafe(s)) throw new Error("control character in a config value");
  return s.replace(/[ #'"\\]/g, (c) => `\\${c}`);
}

interface View {
  counts: { gateways: number; nodes: number };
  paths: { statsSocket: string; serverStateFile: string };
  public: { bind: string; port: number; connRate: number; tls: { port: number; cert: string } | false; roomsToNodes: boolean };
  stats: { bind: string; port: number; auth: string };
  checks: { gatewayInterMs: number; nodeInterMs: number; nodeFall: number };
  gateways: ServerEntry[];
  nodes: NodeServer[];
}

type CompiledTemplates = (view: View) => string;
const compiled = new WeakMap<EdgeTemplates, CompiledTemplates>();

function compile(templates: EdgeTemplates): CompiledTemplates {
  const hit = compiled.get(templates);
  if (hit) return hit;
  // An isolated Handlebars environment: partials of one template set never leak into another.
  // noEscape: HTML escaping is wrong for a config file; values are checked/escaped above instead.
  // strict: a template that names a missing field throws, so a broken template is refused.
  const hb = Handlebars.create();
  for (const [name, src] of Object.entries(templates.partials)) hb.registerPartial(name, hb.compile(src, { noEscape: true, strict: true }));
  const main = hb.compile(templates.main, { noEscape: true, strict: true });
  const fn: CompiledTemplates = (view) => main(view);
  compiled.set(templates, fn);
  return fn;
}

/**
 * Renders the config for these live gateways and nodes. Throws only for a broken template
 * (Handlebars syntax error or a missing field); bad registry entries are skipped and reported.
 */
export function render(registry: EdgeRegistry, settings: EdgeSettings, templates: EdgeTemplates = DEFAULT_TEMPLATES): RenderResult {
  const skipped: SkippedEntry[] = [];
  const seen = new Set<string>();

  const gatewayIds = new ServerIds();
  const gateways: ServerEntry[] = [];
  for (const g of [...registry.gateways].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
    const problem = entryProblem(g.id, g.host, g.port, seen);
    if (problem) {
      skipped.push({ kind: "gateway", id: quoteId(g.id), reason: problem });
      continue;
    }
    gateways.push({ name: g.id, id: gatewayIds.take(g.id), address: hostPort(g.host, g.port) });
  }

  seen.clear();
  const nodeIds = new ServerIds();
  const nodes: NodeServer[] = [];
  for (const n of [...registry.nodes].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
    const problem = entryProblem(n.id, n.host, n.port, seen);
    if (problem) {
      skipped.push({ kind: "node", id: quoteId(n.id), reason: problem });
      continue;
    }
    const admin = nodeAdminState(n.state);
    nodes.push({
      name: n.id,
      id: nodeIds.take(n.id),
      address: hostPort(n.host, n.port),
      state: n.state,
      admin,
      weight: admin === "drain" ? 0 : 100,
      disabled: admin === "maint",
    });
  }

  const view: View = {
    counts: { gateways: gateways.length, nodes: nodes.length },
    paths: { statsSocket: configWord(settings.paths.statsSocket), serverStateFile: configWord(settings.paths.serverStateFile) },
    public: {
      bind: settings.bind === "*" ? "" : settings.bind,
      port: settings.port,
      connRate: settings.connRate,
      tls: settings.tls ? { port: settings.tls.port, cert: configWord(settings.tls.cert) } : false,
      roomsToNodes: settings.roomsToNodes,
    },
    stats: {
      bind: settings.statsBind === "*" ? "" : settings.statsBind,
      port: settings.statsPort,
      auth: configWord(`${settings.statsUser}:${settings.statsPassword}`),
    },
    checks: { gatewayInterMs: settings.gatewayCheckInterMs, nodeInterMs: settings.nodeCheckInterMs, nodeFall: settings.nodeCheckFall },
    gateways,
    nodes,
  };
  return { text: compile(templates)(view), gateways, nodes, skipped };
}

/**
 * Stable server ids. HAProxy places a server on the consistent-hash ring by its numeric id, and
 * numbers servers by their order in the file unless told: then removing one replica would shift
 * the ids of the ones after it and move their rooms too. Deriving the id from the name (FNV-1a,
 * 31 bits) keeps every other replica's rooms where they are. A collision (rare) takes the next
 * free id, in name order, so the result is still deterministic.
 */
export function serverIdFor(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return (h & 0x7fffffff) || 1;
}

/** Hands out the ids of one backend's servers (collisions probe to the next free id). */
export class ServerIds {
  private readonly used = new Set<number>();
  constructor(private readonly idFor: (name: string) => number = serverIdFor) {}
  take(name: string): number {
    let id = this.idFor(name);
    while (this.used.has(id)) id = id >= 0x7fffffff ? 1 : id + 1;
    this.used.add(id);
    return id;
  }
}

/** Why an entry cannot be listed, or undefined. `seen` catches duplicate ids. */
function entryProblem(id: unknown, host: unknown, port: unknown, seen: Set<string>): string | undefined {
  if (typeof id !== "string" || !SERVER_NAME_RE.test(id)) return "id is not 1-100 of [A-Za-z0-9_.:-]";
  if (seen.has(id)) return "duplicate id";
  if (typeof host !== "string" || !isHost(host)) return "host is not an IP address or host name";
  if (typeof port !== "number" || !isPort(port)) return "port is not 1-65535";
  seen.add(id);
  return undefined;
}
