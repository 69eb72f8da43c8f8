/** What the templater tells everyone about each config swap (Redis channel + last-event key). */

/** Published on keys.templaterEventsChannel and kept at keys.templaterLast. */
export interface TemplaterEvent {
  type: "templater";
  /** ok | invalid (haproxy -c refused it) | failed (reload did not load it) | render_error (template broke). */
  outcome: "ok" | "invalid" | "failed" | "render_error";
  /** When the attempt finished (ms since the epoch). */
  at: number;
  durationMs: number;
  /** What asked for it (node/gateway changes, resync, start). */
  reasons: string[];
  gateways: number;
  nodes: number;
  /** Registry entries left out because an id, host or port was unsafe. */
  skipped: number;
  /** HAProxy's words when it refused. */
  error?: string;
  /** The master's reload counter after the swap. */
  reloads?: number;
  workerPid?: number;
}

/** Parses a templater event from the channel or key; undefined for anything else. */
export function parseTemplaterEvent(raw: string | null | undefined): TemplaterEvent | undefined {
  if (!raw) return undefined;
  try {
    const v = JSON.parse(raw) as Partial<TemplaterEvent> | null;
    if (!v || v.type !== "templater" || typeof v.outcome !== "string" || typeof v.at !== "number") return undefined;
    return v as TemplaterEvent;
  } catch {
    return undefined;
  }
}
