/**
 * Typed errors and the close-code table (CONTRACT "WebSocket" and the error shape
 * `{"error": {"code", "message"}}`).
 */

/**
 * Error codes the gateway answers with (CONTRACT error shape), plus the SDK's own client-side ones
 * (status 0): `NETWORK_ERROR`, `TIMEOUT`, `ABORTED`, `TICKET_CANCELLED`, `TICKET_EXPIRED`,
 * `NO_REFRESH_TOKEN`, `NO_REGIONS`, `HTTP_ERROR` (an answer without the contract's error body).
 * The union stays open (`string & {}`): a newer gateway may send codes this SDK does not list.
 */
export type ErrorCode =
  | "VALIDATION"
  | "BAD_JSON"
  | "TOKEN_MISSING"
  | "TOKEN_INVALID"
  | "REFRESH_TOKEN_INVALID"
  | "GUEST_AUTH_DISABLED"
  | "NOT_ADMIN"
  | "SESSION_NOT_FOUND"
  | "NO_CAPACITY"
  | "INVALID_ROOM_CODE"
  | "ROOM_NOT_FOUND"
  | "ROOM_FULL"
  | "ROOM_CLOSED"
  | "ROOM_NOT_JOINABLE"
  | "WRONG_PASSWORD"
  | "NOT_INVITED"
  | "KICKED"
  | "NOT_HOST"
  | "NOT_IN_ROOM"
  | "PLAYER_NOT_IN_ROOM"
  | "CANNOT_KICK_SELF"
  | "NOT_ENOUGH_PLAYERS"
  | "INVALID_STATE"
  | "ALREADY_QUEUED"
  | "TICKET_NOT_FOUND"
  | "TICKET_NOT_QUEUED"
  | "NOT_TICKET_OWNER"
  | "RATE_LIMITED"
  | "PAYLOAD_TOO_LARGE"
  | "NOT_FOUND"
  | "NETWORK_ERROR"
  | "TIMEOUT"
  | "ABORTED"
  | "TICKET_CANCELLED"
  | "TICKET_EXPIRED"
  | "NO_REFRESH_TOKEN"
  | "NO_REGIONS"
  | "HTTP_ERROR"
  | (string & {});

/** An error answer of the API, or a client-side failure (status 0). Check with `instanceof`. */
export class FleetgateError extends Error {
  constructor(
    /** HTTP status; 0 for client-side errors (network, timeout, abort, ticket ended). */
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    /** The error body's `details`, when the gateway sent any (e.g. `{ticketId}` with ALREADY_QUEUED). */
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = "FleetgateError";
  }

  /** True for failures a later retry may fix: network errors, timeouts, 429, 503 and other 5xx. */
  get retryable(): boolean {
    return this.status === 0 ? this.code === "NETWORK_ERROR" || this.code === "TIMEOUT" : this.status === 429 || this.status >= 500;
  }
}

/** The gateway's close codes (CONTRACT "WebSocket"). */
export const CloseCodes = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  ABNORMAL: 1006,
  TOO_LARGE: 1009,
  UPSTREAM_ERROR: 1011,
  SERVICE_RESTART: 1012,
  BAD_TOKEN: 4001,
  NOT_SEATED: 4003,
  UNKNOWN_ROOM: 4004,
  ROOM_FULL: 4008,
  RECONNECT: 4009,
  NO_CAPACITY: 4013,
  RATE_LIMITED: 4029,
} as const;

/** What a client does after a close (the contract's third column). */
export type CloseAction = "done" | "refresh-token" | "stop" | "try-another-room" | "reconnect" | "retry-with-backoff" | "slow-down" | "fix-client";

/** The contract's advice for a close code. Pure. */
export function closeAction(code: number): CloseAction {
  switch (code) {
    case 1000:
      return "done";
    case 4001:
      return "refresh-token";
    case 4003:
    case 4004:
      return "stop";
    case 4008:
      return "try-another-room";
    case 4009:
      return "reconnect";
    case 4013:
    case 1011:
    case 1006:
    case 1001:
    case 1012:
      return "retry-with-backoff";
    case 4029:
      return "slow-down";
    case 1009:
      return "fix-client";
    default:
      return code >= 4000 && code < 5000 ? "stop" : "retry-with-backoff";
  }
}

export function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
