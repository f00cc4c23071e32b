/**
 * Admission control of one API instance: at most `maxRequestsInProgress` requests do store work at
 * once, and at most `maxRequestsInProgressPerUser` of them for one user. Past the instance's
 * limit, a request is answered at once with 503 and `Retry-After` (RFC 9110 §15.6.4: the server
 * is overloaded for a while), instead of queueing behind the others until its caller gives up.
 * Past a user's own limit, it is answered 429 with `Retry-After` (RFC 6585: this caller sends too
 * many requests): one client's burst cannot take every place, nor pile its creates onto the one
 * in-flight count document its jobs share, which Firestore writes about once a second. The
 * limits sit after the token and the per-user quota's local check, so that a caller over their
 * quota is still told 429, and before any store call.
 */
import { ApiError } from "./apiError.js";
import type { FunctionsConfig } from "./config.js";

export interface Admission {
  /**
   * Takes a place for `userId`: throws `ApiError("rate_limited")` when the user holds all of
   * theirs, `ApiError("unavailable")` when every place of the instance is taken. The function
   * returned gives the place back (once).
   */
  enter(userId: string): () => void;
  /** Requests holding a place now. */
  readonly inProgress: number;
}

/** What a 503 or 429 for requests in progress tells a client to wait: the requests ahead of it take well under a second each. */
export const IN_PROGRESS_RETRY_AFTER_SECONDS = 1;

export function createAdmission(config: Pick<FunctionsConfig, "maxRequestsInProgress" | "maxRequestsInProgressPerUser">): Admission {
  let inProgress = 0;
  const byUser = new Map<string, number>();
  return {
    get inProgress() {
      return inProgress;
    },
    enter(userId) {
      const mine = byUser.get(userId) ?? 0;
      if (mine >= config.maxRequestsInProgressPerUser) {
        throw new ApiError(
          "rate_limited",
          `you have ${mine} requests in progress, the most one caller may have at once; wait for one to finish`,
          IN_PROGRESS_RETRY_AFTER_SECONDS,
        );
      }
      if (inProgress >= config.maxRequestsInProgress) {
        throw new ApiError(
          "unavailable",
          `this instance is at its limit of ${config.maxRequestsInProgress} requests in progress; try again shortly`,
          IN_PROGRESS_RETRY_AFTER_SECONDS,
        );
      }
      inProgress += 1;
      byUser.set(userId, mine + 1);
      let left = false;
      return () => {
        if (left) return;
        left = true;
        inProgress -= 1;
        const now = (byUser.get(userId) ?? 1) - 1;
        if (now === 0) byUser.delete(userId);
        else byUser.set(userId, now);
      };
    },
  };
}
