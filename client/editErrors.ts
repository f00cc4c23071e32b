/**
 * What can go wrong when talking to the edit service, as typed errors, and `describeError`, which
 * says each in words a person understands.
 */

/** The service answered with `{"error":{"code","message"}}` (or something else that was not OK). */
export class EditApiError extends Error {
  override readonly name = "EditApiError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The service could not be reached at all (no network, wrong address, connection refused). */
export class ServiceUnreachableError extends Error {
  override readonly name = "ServiceUnreachableError";
  constructor(
    readonly url: string,
    readonly reason: string,
  ) {
    super(`could not reach ${url}: ${reason}`);
  }
}

/** The upload to storage failed (an answer other than 2xx from the signed URL). */
export class UploadError extends Error {
  override readonly name = "UploadError";
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const API_WORDS: Record<string, string> = {
  unauthenticated: "You are not signed in, or your sign-in has expired. Please sign in again.",
  unsupported_media_type: "This file is not a photo the service can read. Please use a JPEG, PNG or WebP image.",
  payload_too_large: "This photo is too large to send. Please pick a smaller one.",
  unknown_operation: "That edit does not exist. Please pick one from the list.",
  operation_unavailable: "That edit is not available yet. Please pick another one.",
  not_found: "This edit could not be found. It may belong to another account.",
  unavailable: "The service is busy or briefly down. Please try again in a moment.",
  internal: "Something went wrong on our side. Please try again in a moment.",
  idempotency_key_reused: "This request clashes with an earlier one. Please start a new edit.",
};

/** One or two sentences for a person; never a stack trace or a bare code. */
export function describeError(error: unknown): string {
  if (error instanceof ServiceUnreachableError) {
    return "The edit service cannot be reached. Check your internet connection, then try again.";
  }
  if (error instanceof UploadError) {
    return error.status === 0
      ? "The photo could not be uploaded: the connection dropped. Please try again."
      : `The photo could not be uploaded (the storage service answered ${error.status}). Please try again.`;
  }
  if (error instanceof EditApiError) {
    if (error.code === "invalid_param") return `One of the edit's settings is not allowed: ${error.message}.`;
    if (error.code === "conflict") return `This cannot be done now: ${error.message}.`;
    return API_WORDS[error.code] ?? `The service refused the request: ${error.message}.`;
  }
  if (error instanceof Error && error.name === "AbortError") return "Stopped.";
  return "Something unexpected went wrong. Please try again.";
}
