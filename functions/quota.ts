/**
 * Per-user quotas of the HTTP API: requests per minute, and jobs in flight (not yet ended). Both
 * are counted where every instance of the function sees the same numbers (a request counter in
 * Firestore, and the event store's per-owner count of jobs in flight), so the limits hold however
 * many instances run. Over a limit, the API answers 429 with `Retry-After`. The in-flight limit
 * is enforced by the event store itself, in the atomic write that creates the job
 * (`AppendOptions.maxInFlight`), so parallel creates cannot overshoot it.
 */
import type { Clock } from "../events/clock.js";
import type { RequestCounter } from "../events/requestCounter.js";
import { ApiError } from "./apiError.js";
import type { FunctionsConfig } from "./config.js";

export interface Quota {
  /** Throws `ApiError("rate_limited")` when the user is over the requests per minute. */
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
  return {
    jobsInFlight: config.quotaJobsInFlight,
    async admit(userId) {
      const now = deps.clock.now().getTime();
      const windowStart = now - (now % WINDOW_MS);
      const count = await deps.counter.hit(userId, new Date(windowStart));
      if (count > config.quotaRequestsPerMinute) {
        throw new ApiError(
          "rate_limited",
          `more than ${config.quotaRequestsPerMinute} requests in a minute; try again shortly`,
          Math.max(1, Math.ceil((windowStart + WINDOW_MS - now) / 1000)),
        );
      }
    },
  };
}
