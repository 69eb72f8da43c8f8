/**
 * `npm run loadtest -- ...` arguments (issue 13). Pure: argv in, options or a list of problems out.
 */

export type Flow = "dedicated" | "rooms" | "matchmaking";
export const FLOWS: readonly Flow[] = ["dedicated", "rooms", "matchmaking"];

export interface LoadTestOptions {
  /** Gateway or HAProxy edge base URL (http/https). */
  url: string;
  /** Clients in total. */
  clients: number;
  /** New clients per second. */
  spawnRate: number;
  /** How long each client (each room, once all its players are in) exchanges messages, seconds. */
  matchDurationS: number;
  flow: Flow;
  /** Messages per second each client sends (0: connect only). */
  msgRate: number;
  /** Players per room in the rooms flow. */
  roomSize: number;
  /** Game mode for joins, rooms and tickets. */
  mode: string;
  /** Print the summary as JSON on stdout. */
  json: boolean;
  /** Exit non-zero when the share of failed clients is above this (0..1). */
  maxErrorRate: number;
  /** Hard bound on the whole run, seconds (default: spawning + match + 60 s). */
  timeoutS: number;
  /** Progress line interval, seconds (0: none). */
  progressS: number;
}

export const USAGE = `usage: npm run loadtest -- --url <gateway or edge> [options]
  --url URL               gateway or HAProxy edge, e.g. http://127.0.0.1:8080 (required)
  --clients N             clients in total (default 10)
  --spawn-rate R          new clients per second (default 10)
  --match-duration S      seconds each room exchanges messages once its players are in (default 30)
  --flow F                dedicated | rooms | matchmaking (default rooms)
  --msg-rate HZ           messages per second per client (default 2; 0 = connect only)
  --room-size N           players per room in the rooms flow (default 4)
  --mode NAME             game mode for joins, rooms and tickets (default loadtest)
  --json                  print the summary as JSON on stdout
  --max-error-rate X      exit 1 when more than this share of clients fail (default 0.01)
  --timeout S             hard bound on the whole run (default spawn time + match + 60)
  --progress S            progress line every S seconds (default 1; 0 = none)`;

export type ParseResult = { ok: true; options: LoadTestOptions } | { ok: false; problems: string[]; help: boolean };

const MODE_RE = /^[A-Za-z0-9_.-]{1,32}$/;

export function parseArgs(argv: readonly string[]): ParseResult {
  const problems: string[] = [];
  const values = new Map<string, string>();
  const flags = new Set<string>();
  const BOOLEAN = new Set(["json", "help"]);
  const KNOWN = new Set(["url", "clients", "spawn-rate", "match-duration", "flow", "msg-rate", "room-size", "mode", "json", "max-error-rate", "timeout", "progress", "help"]);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "-h") {
      flags.add("help");
      continue;
    }
    if (!a.startsWith("--")) {
      problems.push(`unexpected argument ${JSON.stringify(a)}`);
      continue;
    }
    const eq = a.indexOf("=");
    const name = a.slice(2, eq === -1 ? undefined : eq);
    if (!KNOWN.has(name)) {
      problems.push(`unknown option --${name}`);
      continue;
    }
    if (BOOLEAN.has(name)) {
      flags.add(name);
      continue;
    }
    const v = eq === -1 ? argv[++i] : a.slice(eq + 1);
    if (v === undefined || (eq === -1 && v.startsWith("--"))) {
      problems.push(`--${name} needs a value`);
      if (v?.startsWith("--")) i--;
      continue;
    }
    values.set(name, v);
  }
  if (flags.has("help")) return { ok: false, problems: [], help: true };

  const num = (name: string, def: number, min: number, max: number, integer: boolean): number => {
    const raw = values.get(name);
    if (raw === undefined) return def;
    const n = Number(raw);
    if (raw.trim() === "" || !Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min || n > max) {
      problems.push(`--${name} ${JSON.stringify(raw)}: expected ${integer ? "a whole number" : "a number"} in ${min}..${max}`);
      return def;
    }
    return n;
  };

  const url = values.get("url");
  if (url === undefined) problems.push("--url is required");
  else if (!/^https?:\/\/[^/\s]+/.test(url) || !URL.canParse(url)) problems.push(`--url ${JSON.stringify(url)}: expected http(s)://host:port`);
  const flow = (values.get("flow") ?? "rooms") as Flow;
  if (!FLOWS.includes(flow)) problems.push(`--flow ${JSON.stringify(flow)}: expected one of ${FLOWS.join(", ")}`);
  const mode = values.get("mode") ?? "loadtest";
  if (!MODE_RE.test(mode)) problems.push(`--mode ${JSON.stringify(mode)}: 1-32 of [A-Za-z0-9_.-]`);

  const clients = num("clients", 10, 1, 100_000, true);
  const spawnRate = num("spawn-rate", 10, 0.01, 10_000, false);
  const matchDurationS = num("match-duration", 30, 0, 86_400, false);
  const msgRate = num("msg-rate", 2, 0, 1000, false);
  const roomSize = num("room-size", 4, 1, 1000, true);
  const maxErrorRate = num("max-error-rate", 0.01, 0, 1, false);
  const progressS = num("progress", 1, 0, 3600, false);
  const defaultTimeout = Math.ceil(clients / spawnRate + matchDurationS + 60);
  const timeoutS = num("timeout", defaultTimeout, 1, 7 * 86_400, false);

  if (problems.length) return { ok: false, problems, help: false };
  return {
    ok: true,
    options: { url: url!.replace(/\/+$/, ""), clients, spawnRate, matchDurationS, flow, msgRate, roomSize, mode, json: flags.has("json"), maxErrorRate, timeoutS, progressS },
  };
}
