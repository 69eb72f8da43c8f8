/**
 * Errors with a stable code and an HTTP status, rendered as
 * `{"error": {"code": "SNAKE_CASE", "message": "..."}}`. Check them with `instanceof`, never by
 * message text.
 */
export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = "AppError";
  }

  toBody(): { error: { code: string; message: string; details?: Record<string, unknown> } } {
    return { error: { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) } };
  }
}

export const badRequest = (code: string, message: string, details?: Record<string, unknown>) => new AppError(400, code, message, details);
export const unauthorized = (code: string, message: string) => new AppError(401, code, message);
export const forbidden = (code: string, message: string) => new AppError(403, code, message);
export const notFound = (code: string, message: string) => new AppError(404, code, message);
export const conflict = (code: string, message: string) => new AppError(409, code, message);
export const tooLarge = (code: string, message: string) => new AppError(413, code, message);
export const rateLimited = (message = "too many requests") => new AppError(429, "RATE_LIMITED", message);
export const noCapacity = (message = "no game-server capacity available") => new AppError(503, "NO_CAPACITY", message);

/** Renders any thrown value as a contract error body; unknown errors become a bare 500 with no stack. */
export function errorBody(err: unknown): { status: number; body: { error: { code: string; message: string } } } {
  if (err instanceof AppError) return { status: err.status, body: err.toBody() };
  return { status: 500, body: { error: { code: "INTERNAL", message: "internal error" } } };
}

/** WebSocket close codes the gateway uses (CONTRACT). */
export const CloseCode = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  TOO_LARGE: 1009,
  UPSTREAM_ERROR: 1011,
  BAD_TOKEN: 4001,
  NOT_SEATED: 4003,
  UNKNOWN_ROOM: 4004,
  ROOM_FULL: 4008,
  RECONNECT: 4009,
  NO_CAPACITY: 4013,
  RATE_LIMITED: 4029,
} as const);
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** A node driver failed (Docker engine, process spawn). */
export class DriverError extends Error {
  constructor(
    message: string,
    /** false: retrying cannot help (bad image, bad config). */
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = "DriverError";
  }
}
