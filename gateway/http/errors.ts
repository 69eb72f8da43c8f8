/**
 * The one error renderer of the HTTP API: everything a route throws becomes the contract's
 * `{"error": {"code", "message"}}` with a fitting status — AppError as it says, Redis unreachable
 * 503, Elysia's parse/validation errors 400, unknown routes 404, anything else 500 (logged, no
 * stack in the answer). gateway/app.ts installs it globally; feature plugins that are also mounted
 * alone in tests (rooms, matchmaking) install the same function locally.
 */
import { AppError, badRequest, errorBody } from "../../core/errors.ts";
import type { Logger } from "../../core/log.ts";
import { isRedisUnavailable, redisUnavailable } from "../../core/redis-outage.ts";

/** Elysia's error codes we map (others are treated as unexpected). */
type ElysiaErrorCode = "PARSE" | "VALIDATION" | "NOT_FOUND" | string | number;

export function renderError(code: ElysiaErrorCode, error: unknown, log?: Pick<Logger, "error">): Response {
  // Elysia wraps what a `parse` hook throws in a ParseError whose `cause` is our AppError.
  const cause = error instanceof Error ? error.cause : undefined;
  let err: AppError;
  if (error instanceof AppError) err = error;
  else if (cause instanceof AppError) err = cause;
  else if (isRedisUnavailable(error)) err = redisUnavailable();
  else if (code === "PARSE") err = badRequest("BAD_JSON", "request body is not valid JSON");
  else if (code === "VALIDATION") err = badRequest("VALIDATION", `request does not match the schema: ${validationSummary(error)}`);
  else if (code === "NOT_FOUND") err = new AppError(404, "NOT_FOUND", "no such route");
  else {
    log?.error("unhandled error", { err: error });
    err = new AppError(500, "INTERNAL", "internal error");
  }
  const { status, body } = errorBody(err);
  return Response.json(body, { status });
}

/** The first problem of an Elysia validation error, without echoing the whole schema. */
export function validationSummary(error: unknown): string {
  const e = error as { all?: { path?: string; message?: string; summary?: string }[] };
  const first = Array.isArray(e.all) ? e.all[0] : undefined;
  if (first) return `${first.path || "(body)"}: ${first.summary ?? first.message ?? "invalid"}`.slice(0, 200);
  return "invalid input";
}
