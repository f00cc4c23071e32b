/**
 * Per-user quotas of the HTTP API: requests per minute, and jobs in flight (not yet ended). Both
 * are counted where every instance of the function sees the same numbers (the event store, and
 * a request counter in Firestore), so the limits hold however many instances run. Over a limit,
 * the API answers 429 with `Retry-After`.
 */
import type { Clock } from "../events/clock.js";
import type { EventStore } from "../events/eventStore.js";
import { ApiError } from "./apiError.js";
import type { FunctionsConfig } from "./config.js";

/** Counts requests per key and time window, shared by every instance. */
export interface RequestCounter {
  /** Counts one request of `key` in the window that starts at `windowStart`; resolves with the count, this one included. */
  hit(key: string, windowStart: Date): Promise<number>;
}

export interface Quota {
  /** Throws `ApiError("rate_limited")` when the user is over a limit; `createsJob` adds the in-flight check. */
  admit(userId: string, options: { createsJob: boolean }): Promise<void>;
}

const WINDOW_MS = 60_000;

export function createQuota(deps: {
  store: Pick<EventStore, "countInFlight">;
  counter: RequestCounter;
  clock: Clock;
  config: Pick<FunctionsConfig, "quotaRequestsPerMinute" | "quotaJobsInFlight">;
}): Quota {
  const { config } = deps;
  return {
    async admit(userId, { createsJob }) {
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
      if (!createsJob) return;
      const inFlight = await deps.store.countInFlight(userId);
      if (inFlight >= config.quotaJobsInFlight) {
        throw new ApiError(
          "rate_limited",
          `you have ${inFlight} edits that have not ended; the limit is ${config.quotaJobsInFlight}. Wait for one to end, or cancel one`,
          // Small edits end within seconds; a client retrying then finds a free slot.
          5,
        );
      }
    },
  };
}
