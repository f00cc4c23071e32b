/**
 * Typed errors that cross the ports. Each has a `code` from a closed union; the edges map them
 * to HTTP statuses or to retry decisions in one place each.
 */

/** Another writer appended to the job first. Re-read and decide again. */
export class ConcurrencyError extends Error {
  override readonly name = "ConcurrencyError";
  readonly code = "conflict";
  constructor(
    readonly jobId: string,
    readonly expectedVersion: number,
  ) {
    super(`job ${jobId} moved past version ${expectedVersion}`);
  }
}

/** Starting one more job would take its owner past the most jobs they may have in flight. */
export class InFlightLimitError extends Error {
  override readonly name = "InFlightLimitError";
  readonly code = "in_flight_limit";
  constructor(
    readonly inFlight: number,
    readonly limit: number,
  ) {
    super(`${inFlight} jobs in flight; the limit is ${limit}`);
  }
}

/**
 * The event store (or the request counter beside it) did not answer within its deadline, or
 * answered that it is unavailable: a passing fault. Nothing is known of a write's fate; the log
 * settles it on the next read.
 */
export class StoreUnavailableError extends Error {
  override readonly name = "StoreUnavailableError";
  readonly code = "unavailable";
}

/** The job queue did not take a message within its deadline: a passing fault. */
export class QueueUnavailableError extends Error {
  override readonly name = "QueueUnavailableError";
  readonly code = "unavailable";
}

export type ImageStoreErrorCode = "not_found" | "too_large" | "unavailable";

export class ImageStoreError extends Error {
  override readonly name = "ImageStoreError";
  constructor(
    readonly code: ImageStoreErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export type AuthErrorCode = "missing_token" | "invalid_token" | "expired_token" | "revoked_token";

export class AuthError extends Error {
  override readonly name = "AuthError";
  constructor(
    readonly code: AuthErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export type EditErrorCode =
  | "unsupported_image"
  | "image_too_large"
  | "input_missing"
  | "operation_unavailable"
  | "inference_failed"
  | "inference_unavailable"
  | "storage_unavailable"
  | "store_unavailable"
  | "internal";

/**
 * A failure while running an edit. `retryable` decides its fate: true hands the message back to
 * the queue; false ends the job with `EditFailed` and this message, which a person will read.
 */
export class EditError extends Error {
  override readonly name = "EditError";
  constructor(
    readonly code: EditErrorCode,
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}
