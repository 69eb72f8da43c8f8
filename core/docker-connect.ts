/**
 * Docker engine connections from DOCKER_HOSTS entries (`unix:///var/run/docker.sock`,
 * `tcp://host:2375`, `http://…`, `https://…`), and line-by-line parsing of the engine's JSON streams.
 */
import Docker from "dockerode";
import { DriverError } from "./errors.ts";

/** A dockerode client for one DOCKER_HOSTS entry. */
export function dockerFromUrl(url: string): Docker {
  if (url.startsWith("unix://")) {
    const socketPath = url.slice("unix://".length);
    if (!socketPath.startsWith("/")) throw new DriverError(`docker host ${JSON.stringify(url)}: unix socket path must be absolute`, false);
    return new Docker({ socketPath });
  }
  let parsed: URL;
  try {
    parsed = new URL(url.replace(/^tcp:\/\//, "http://"));
  } catch {
    throw new DriverError(`docker host ${JSON.stringify(url)} is not a URL`, false);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new DriverError(`docker host ${JSON.stringify(url)} must be unix://, tcp://, http:// or https://`, false);
  const protocol = parsed.protocol === "https:" ? "https" : "http";
  const port = parsed.port ? Number(parsed.port) : protocol === "https" ? 2376 : 2375;
  return new Docker({ host: parsed.hostname, port, protocol });
}

/** One message of a build/pull progress stream. */
export interface DockerStreamMessage {
  stream?: string;
  status?: string;
  error?: string;
  errorDetail?: { message?: string };
  aux?: { ID?: string };
}

/**
 * Reads a newline-delimited JSON stream (build, pull, events) line by line, calling `onMessage`
 * for each complete line; resolves at the end of the stream. Chunks may split lines anywhere.
 */
export function readJsonLines(stream: NodeJS.ReadableStream, onMessage: (msg: DockerStreamMessage) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let buf = "";
    const flush = (final: boolean) => {
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        emit(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
      if (final && buf.trim() !== "") emit(buf);
    };
    const emit = (line: string) => {
      const t = line.trim();
      if (t === "") return;
      try {
        onMessage(JSON.parse(t) as DockerStreamMessage);
      } catch {
        onMessage({ stream: t });
      }
    };
    stream.on("data", (chunk: Buffer | string) => {
      buf += typeof chunk === "string" ? chunk : chunk.toString("utf8");
      flush(false);
    });
    stream.on("end", () => {
      flush(true);
      resolve();
    });
    stream.on("error", reject);
  });
}

/** The HTTP status of a dockerode error (404 for "no such container"), if it has one. */
export function dockerStatus(err: unknown): number | undefined {
  if (typeof err === "object" && err !== null && "statusCode" in err) {
    const s = (err as { statusCode?: unknown }).statusCode;
    return typeof s === "number" ? s : undefined;
  }
  return undefined;
}
