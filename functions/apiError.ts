/**
 * Errors the HTTP API answers with, and the one place that maps every error to a status and the
 * JSON body `{"error":{"code","message"}}`.
 */
import { AuthError, ImageStoreError, InFlightLimitError, QueueUnavailableError, StoreUnavailableError } from "../events/errors.js";

export type ApiErrorCode =
  | "bad_request"
  | "invalid_json"
  | "unknown_operation"
  | "operation_unavailable"
  | "invalid_param"
  | "invalid_webhook"
  | "unsupported_media_type"
  | "payload_too_large"
  | "invalid_idempotency_key"
  | "idempotency_key_reused"
  | "unauthenticated"
  | "not_found"
  | "method_not_allowed"
  | "conflict"
  | "rate_limited"
  | "unavailable"
  | "internal";

const STATUS: Record<ApiErrorCode, number> = {
  bad_request: 400,
  invalid_json: 400,
  unknown_operation: 400,
  operation_unavailable: 400,
  invalid_param: 400,
  invalid_webhook: 400,
  unsupported_media_type: 415,
  payload_too_large: 413,
  invalid_idempotency_key: 400,
  idempotency_key_reused: 422,
  unauthenticated: 401,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  rate_limited: 429,
  unavailable: 503,
  internal: 500,
};

export class ApiError extends Error {
  override readonly name = "ApiError";
  constructor(
    readonly code: ApiErrorCode,
    message: string,
    /** For `rate_limited` and `unavailable`: seconds after which a retry may succeed, sent as `Retry-After`. */
    readonly retryAfterSeconds?: number,
    /** Headers the answer carries besides `Retry-After`, such as a 405's `Allow`. */
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }

  get status(): number {
    return STATUS[this.code];
  }
}

export interface ErrorResponse {
  status: number;
  headers?: Record<string, string>;
  body: { error: { code: ApiErrorCode; message: string } };
}

/** What a 503 tells a client to wait before it tries again: a store outage is seconds to a minute. */
const STORE_RETRY_AFTER_SECONDS = 5;

/** Maps any error to its answer. Unknown errors say nothing of their insides. */
export function toErrorResponse(error: unknown): ErrorResponse {
  const apiError =
    error instanceof ApiError
      ? error
      : error instanceof InFlightLimitError
        ? new ApiError(
            "rate_limited",
            `you have ${error.inFlight} edits that have not ended; the limit is ${error.limit}. Wait for one to end, or cancel one`,
            // Small edits end within seconds; a client retrying then finds a free slot.
            5,
          )
      : error instanceof AuthError
        ? new ApiError("unauthenticated", error.message)
        : error instanceof ImageStoreError && error.code === "unavailable"
          ? new ApiError("unavailable", "storage is unavailable; try again shortly", STORE_RETRY_AFTER_SECONDS)
          : error instanceof StoreUnavailableError || error instanceof QueueUnavailableError
            ? new ApiError("unavailable", "the job store is unavailable; try again shortly", STORE_RETRY_AFTER_SECONDS)
          : new ApiError("internal", "something went wrong on our side; try again shortly");
  const body = { error: { code: apiError.code, message: apiError.message } };
  const headers = {
    ...apiError.headers,
    ...(apiError.retryAfterSeconds === undefined ? {} : { "Retry-After": String(apiError.retryAfterSeconds) }),
  };
  return Object.keys(headers).length === 0 ? { status: apiError.status, body } : { status: apiError.status, headers, body };
}
