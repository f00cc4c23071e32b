/**
 * Admission control of one API instance: at most `maxInProgress` requests do store work at once.
 * Past that, a request is answered at once with 503 and `Retry-After` (RFC 9110 §15.6.4: the
 * server is overloaded for a while), instead of queueing behind the others until its caller gives
 * up. The limit sits after the token and the per-user quota's local check, so that a caller over
 * their quota is still told 429, and before any store call.
 */
import { ApiError } from "./apiError.js";
import type { FunctionsConfig } from "./config.js";

export interface Admission {
  /** Takes a place, or throws `ApiError("unavailable")` when every place is taken; the function returned gives it back (once). */
  enter(): () => void;
  /** Requests holding a place now. */
  readonly inProgress: number;
}

/** What a 503 for overload tells a client to wait: the requests ahead of it take well under a second each. */
export const OVERLOAD_RETRY_AFTER_SECONDS = 1;

export function createAdmission(config: Pick<FunctionsConfig, "maxRequestsInProgress">): Admission {
  let inProgress = 0;
  return {
    get inProgress() {
      return inProgress;
    },
    enter() {
      if (inProgress >= config.maxRequestsInProgress) {
        throw new ApiError(
          "unavailable",
          `this instance is at its limit of ${config.maxRequestsInProgress} requests in progress; try again shortly`,
          OVERLOAD_RETRY_AFTER_SECONDS,
        );
      }
      inProgress += 1;
      let left = false;
      return () => {
        if (left) return;
        left = true;
        inProgress -= 1;
      };
    },
  };
}
