/**
 * Per-user quotas of the HTTP API: requests per minute, and jobs in flight (not yet ended). Both
 * are counted where every instance of the function sees the same numbers (a request counter in
 * Firestore, and the event store's per-owner count of jobs in flight), so the limits hold however
 * many instances run. Over a limit, the API answers 429 with `Retry-After`. The in-flight limit
 * is enforced by the event store itself, in the atomic write that creates the job
 * (`AppendOptions.maxInFlight`), so parallel creates cannot overshoot it.
 *
 * In front of the shared counter, each instance remembers the highest count the counter has
 * answered it for each user in the current minute. A count only grows within its minute, so once
 * a user has reached the limit every further request of theirs would be refused: the instance
 * refuses it itself, with no store call. An over-quota user therefore costs no Firestore work,
 * and is answered 429 even while the store is slow or down. The shared count stays the
 * authority: the instance never refuses a request the counter would have admitted.
 */
import type { Clock } from "../events/clock.js";
import type { RequestCounter } from "../events/requestCounter.js";
import { ApiError } from "./apiError.js";
import type { FunctionsConfig } from "./config.js";

export interface Quota {
  /** Throws `ApiError("rate_limited")` when this instance already knows the user is over the requests per minute; no store call. */
  check(userId: string): void;
  /** Counts the request in the shared counter, after `check`; throws `ApiError("rate_limited")` when the user is over the requests per minute. */
  admit(userId: string): Promise<void>;
  /** The most jobs one user may have in flight, checked when a job is created. */
  readonly jobsInFlight: number;
}

const WINDOW_MS = 60_000;

export function createQuota(deps: {
  counter: RequestCounter;
  clock: Clock;
  config: Pick<FunctionsConfig, "quotaRequestsPerMinute" | "quotaJobsInFlight">;
}): Quota {
  const { config } = deps;
  const limit = config.quotaRequestsPerMinute;
  /** The highest shared count seen per user in `knownWindow`; cleared when the minute turns. */
  let known = new Map<string, number>();
  let knownWindow = 0;

  function window(): { start: number; retryAfterSeconds: number } {
    const now = deps.clock.now().getTime();
    const start = now - (now % WINDOW_MS);
    if (start !== knownWindow) {
      known = new Map();
      knownWindow = start;
    }
    return { start, retryAfterSeconds: Math.max(1, Math.ceil((start + WINDOW_MS - now) / 1000)) };
  }

  const refusal = (retryAfterSeconds: number) =>
    new ApiError("rate_limited", `more than ${limit} requests in a minute; try again shortly`, retryAfterSeconds);

  function check(userId: string): void {
    const { retryAfterSeconds } = window();
    // At the limit, the next count is over it.
    if ((known.get(userId) ?? 0) >= limit) throw refusal(retryAfterSeconds);
  }

  return {
    jobsInFlight: config.quotaJobsInFlight,
    check,
    async admit(userId) {
      check(userId);
      const { start } = window();
      const count = await deps.counter.hit(userId, new Date(start));
      // The minute may have turned during the call: a count of the old one says nothing of the new.
      const after = window();
      if (after.start === start) known.set(userId, Math.max(known.get(userId) ?? 0, count));
      if (count > limit) throw refusal(after.retryAfterSeconds);
    },
  };
}
