/**
 * Admission control of one API instance: at most `maxRequestsInProgress` requests do store work at
 * once, and at most `maxRequestsInProgressPerUser` of them for one user.
 * - Past the instance's limit, a request is answered at once with 503 and `Retry-After`
 *   (RFC 9110 §15.6.4: the server is overloaded for a while), instead of queueing behind the
 *   others until its caller gives up.
 * - Past a user's own limit, the request waits its turn behind that user's others, in order,
 *   for up to `maxTurnWaitMs` and behind at most `maxWaitingPerUser`; beyond either it is answered
 *   429 with `Retry-After` (RFC 6585: this caller sends too many requests at once). A client that
 *   sends a handful of requests together (the web app, the CLI's smoke run) is served, in turn;
 *   one client's burst cannot take every place of the instance, nor pile its creates onto the one
 *   in-flight count document its jobs share, which Firestore writes about once a second.
 * The limits sit after the token and the per-user quota's local check, so that a caller over
 * their quota is still told 429 at once, and before any store call.
 */
import { ApiError } from "./apiError.js";
import type { FunctionsConfig } from "./config.js";

export interface Admission {
  /**
   * Takes a place for `userId`, after the user's earlier requests if they hold all of theirs.
   * Rejects with `ApiError("unavailable")` when every place of the instance is taken, and with
   * `ApiError("rate_limited")` when the user's turn does not come in time or too many of theirs
   * wait. The function it resolves with gives the place back (once).
   */
  enter(userId: string): Promise<() => void>;
  /** Requests holding a place now. */
  readonly inProgress: number;
}

/** What a 503 or 429 for requests in progress tells a client to wait: the requests ahead of it take well under a second each. */
export const IN_PROGRESS_RETRY_AFTER_SECONDS = 1;

/** How long a user's request waits for one of their places, and behind how many of theirs. */
export interface UserTurns {
  maxTurnWaitMs: number;
  maxWaitingPerUser: number;
}

export const DEFAULT_USER_TURNS: UserTurns = { maxTurnWaitMs: 5_000, maxWaitingPerUser: 32 };

interface UserPlaces {
  running: number;
  /** Requests waiting for a place, first come first: each is handed the place of one that ends. */
  waiting: Array<(leave: () => void) => void>;
}

export function createAdmission(
  config: Pick<FunctionsConfig, "maxRequestsInProgress" | "maxRequestsInProgressPerUser">,
  turns: UserTurns = DEFAULT_USER_TURNS,
): Admission {
  let inProgress = 0;
  const users = new Map<string, UserPlaces>();

  const tooMany = (user: UserPlaces) =>
    new ApiError(
      "rate_limited",
      `you have ${user.running} requests in progress and ${user.waiting.length} waiting, the most one caller may have at once; wait for them to finish`,
      IN_PROGRESS_RETRY_AFTER_SECONDS,
    );

  /** The function that gives `user`'s place back: to their next waiting request, or to the instance. */
  const placeOf = (userId: string, user: UserPlaces) => {
    let left = false;
    return () => {
      if (left) return;
      left = true;
      const next = user.waiting.shift();
      if (next) return next(placeOf(userId, user));
      user.running -= 1;
      inProgress -= 1;
      if (user.running === 0) users.delete(userId);
    };
  };

  return {
    get inProgress() {
      return inProgress;
    },
    async enter(userId) {
      const user = users.get(userId) ?? { running: 0, waiting: [] };
      if (user.running >= config.maxRequestsInProgressPerUser) {
        if (user.waiting.length >= turns.maxWaitingPerUser) throw tooMany(user);
        return new Promise<() => void>((resolve, reject) => {
          const turn = (leave: () => void) => {
            clearTimeout(timer);
            resolve(leave);
          };
          const timer = setTimeout(() => {
            user.waiting.splice(user.waiting.indexOf(turn), 1);
            reject(tooMany(user));
          }, turns.maxTurnWaitMs);
          user.waiting.push(turn);
        });
      }
      if (inProgress >= config.maxRequestsInProgress) {
        throw new ApiError(
          "unavailable",
          `this instance is at its limit of ${config.maxRequestsInProgress} requests in progress; try again shortly`,
          IN_PROGRESS_RETRY_AFTER_SECONDS,
        );
      }
      inProgress += 1;
      user.running += 1;
      users.set(userId, user);
      return placeOf(userId, user);
    },
  };
}
