/** A clock the test moves by hand: the `Clock` port's double (events/clock.ts). */
import type { Clock } from "../../events/clock.js";

export interface ManualClock extends Clock {
  /** Moves time on by `ms`. */
  advance(ms: number): void;
}

export function createManualClock(start = new Date("2026-11-22T10:00:00.000Z")): ManualClock {
  let now = start.getTime();
  return {
    now: () => new Date(now),
    advance(ms) {
      now += ms;
    },
  };
}
