/**
 * Structured logs on pino: one JSON object a line by default when stdout is not a terminal
 * (`{"level":"info","time":"…","component":"gateway:relay","msg":"…","room":"ABCD"}`), or
 * pino-pretty's human lines on a terminal or with LOG_FORMAT=pretty. The component and every id a
 * caller passes (`{ room, node, player }`) are top-level fields, so log tools filter on them.
 */
import pino from "pino";
import { prettyFactory } from "pino-pretty";

export type LogLevel = "debug" | "info" | "warn" | "error";
/** `auto`: JSON unless the destination is a terminal. */
export type LogFormat = "json" | "pretty" | "auto";

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  /** A logger for a part of this component: its lines carry `component: "<parent>:<name>"`. */
  child(component: string): Logger;
}

export interface LoggerOptions {
  /** Default auto (JSON when `tty` is false). */
  format?: LogFormat;
  /** Where lines go (each without its trailing newline). Default: stdout, written synchronously. */
  sink?: (line: string) => void;
  /** Whether the destination is a terminal, for `auto`. Default: stdout's isTTY. */
  tty?: boolean;
  /** Colours in pretty mode. Default: `tty`. */
  colorize?: boolean;
  /** Fields on every line (e.g. `{ gateway: id }`). */
  base?: Record<string, unknown>;
}

/** Resolves `auto` for a destination. */
export function resolveLogFormat(format: LogFormat, tty: boolean): "json" | "pretty" {
  return format === "auto" ? (tty ? "pretty" : "json") : format;
}

/**
 * Errors at the top level of `fields` under keys other than `err` become `{ type, message, stack,
 * code }` (pino serialises only `err` by itself, and JSON.stringify of an Error is `{}`).
 */
function serialiseFields(fields: Record<string, unknown>): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  for (const k in fields) {
    const v = fields[k];
    // `err` goes through pino's own error serialiser (type, message, stack, own props).
    if (v instanceof Error && k !== "err") {
      out ??= { ...fields };
      const code = (v as { code?: unknown }).code;
      out[k] = { type: v.name, message: v.message, stack: v.stack, ...(code !== undefined ? { code } : {}) };
    }
  }
  return out ?? fields;
}

/**
 * A logger for one process component. The third argument may be a bare sink function (the form
 * the hand-written logger took) or options.
 */
export function createLogger(component: string, level: LogLevel = "info", opts: LoggerOptions | ((line: string) => void) = {}): Logger {
  const o: LoggerOptions = typeof opts === "function" ? { sink: opts } : opts;
  const tty = o.tty ?? (o.sink ? false : process.stdout.isTTY === true);
  const format = resolveLogFormat(o.format ?? "auto", tty);
  const sink = o.sink;
  // Synchronous writes: a line is out before the call returns (tests, crashes, exits).
  const out: (s: string) => void = sink
    ? (s) => {
        for (const line of s.split("\n")) if (line) sink(line);
      }
    : ((d) => (s: string) => void d.write(s))(pino.destination({ dest: 1, sync: true }));
  let stream: { write(s: string): void };
  if (format === "pretty") {
    // pino-pretty's formatter without its stream pipeline (which writes on a later tick).
    const prettify = prettyFactory({
      colorize: o.colorize ?? tty,
      translateTime: "SYS:HH:MM:ss.l",
      ignore: "pid,hostname,component",
      messageFormat: "[{component}] {msg}",
    });
    stream = { write: (s) => out(prettify(s)) };
  } else {
    stream = { write: out };
  }
  const root = pino(
    {
      level,
      base: o.base ?? null,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    stream,
  );
  return wrap(root, component);
}

function wrap(root: pino.Logger, component: string): Logger {
  const p = root.child({ component });
  const emit = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (!p.isLevelEnabled(lvl)) return;
    if (fields) p[lvl](serialiseFields(fields), msg);
    else p[lvl](msg);
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (c) => wrap(root, `${component}:${c}`),
  };
}

export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child: () => silentLogger,
};
