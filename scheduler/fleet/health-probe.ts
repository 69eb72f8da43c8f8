/** One `GET /health` against a node, bounded by a timeout; never throws. */
import { parseHealthBody, type ProbeResult } from "../policy/liveness.ts";

/** Probes a node's health endpoint. Injected, so unit tests need no sockets. */
export type HealthProbe = (target: { nodeId: string; host: string; port: number }, timeoutMs: number) => Promise<ProbeResult>;

export const httpHealthProbe: HealthProbe = async (target, timeoutMs) => {
  const host = target.host.includes(":") ? `[${target.host}]` : target.host;
  try {
    const res = await fetch(`http://${host}:${target.port}/health`, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) {
      await res.body?.cancel().catch(() => {});
      return { ok: false, error: `HTTP ${res.status}` };
    }
    return parseHealthBody(await res.json());
  } catch (e) {
    const name = e instanceof Error ? e.name : "";
    if (name === "TimeoutError" || name === "AbortError") return { ok: false, error: `no answer within ${timeoutMs} ms` };
    return { ok: false, error: e instanceof Error ? e.message : String(e) };
  }
};
