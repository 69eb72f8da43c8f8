/**
 * JSON request bodies, checked before a route's `t` schema sees them. Elysia, given an optional
 * body schema, lets `null`, arrays, numbers and unparsable text through (measured on 1.4.30:
 * `[]` and `5` arrive as `{}`), and its default parser answers content types other than JSON
 * with text. This parse hook makes every body route strict and the same: at most `maxBytes`
 * (413), empty only where the body is optional, valid JSON (400 BAD_JSON), a JSON object (400
 * VALIDATION) — then the route's schema validates the fields (400 VALIDATION), and the same
 * schema is what the OpenAPI document shows.
 */
import { badRequest, tooLarge } from "../../core/errors.ts";

/** Largest JSON body a player-facing route accepts. */
export const MAX_JSON_BODY_BYTES = 32 * 1024;

export interface JsonBodyOptions {
  /** An empty body is accepted (as `{}`). */
  optional?: boolean;
  maxBytes?: number;
  /** Field names allowed; any other is a 400 naming it (Elysia would strip it silently). */
  fields?: readonly string[];
  /** Fields that must be JSON objects when present (Elysia's schema check turns an array into `{}`). */
  objects?: readonly string[];
}

/**
 * The `parse` option of a JSON body route: our strict parser, then the name "json" — never reached
 * (ours returns or throws) but it tells @elysiajs/openapi the body is application/json.
 */
export function strictJson(opts: JsonBodyOptions = {}): [ReturnType<typeof jsonObjectBody>, "json"] {
  return [jsonObjectBody(opts), "json"];
}

/** An Elysia `parse` hook: returns the body as a plain object or throws the contract's error. */
export function jsonObjectBody(opts: JsonBodyOptions = {}) {
  const max = opts.maxBytes ?? MAX_JSON_BODY_BYTES;
  return async ({ request }: { request: Request }): Promise<Record<string, unknown>> => {
    const declared = Number(request.headers.get("content-length") ?? 0);
    if (declared > max) throw tooLarge("BODY_TOO_LARGE", `request body over ${max} bytes`);
    const text = await request.text();
    if (text.length > max) throw tooLarge("BODY_TOO_LARGE", `request body over ${max} bytes`);
    if (text.trim() === "") {
      if (opts.optional) return {};
      throw badRequest("VALIDATION", "a JSON object body is required");
    }
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      throw badRequest("BAD_JSON", "request body is not valid JSON");
    }
    if (v === null || typeof v !== "object" || Array.isArray(v)) throw badRequest("VALIDATION", "request body must be a JSON object");
    const o = v as Record<string, unknown>;
    if (opts.fields) {
      const extra = Object.keys(o).find((k) => !opts.fields!.includes(k));
      if (extra !== undefined) throw badRequest("VALIDATION", `unknown field ${JSON.stringify(extra)}; allowed: ${opts.fields.join(", ")}`, { field: extra });
    }
    for (const k of opts.objects ?? []) {
      const f = o[k];
      if (f !== undefined && (f === null || typeof f !== "object" || Array.isArray(f))) throw badRequest("VALIDATION", `${k} must be a JSON object`, { field: k });
    }
    return o;
  };
}
