/**
 * The clock port: time comes into the core, never from inside it. The entry files pass
 * `{ now: () => new Date() }`; the unit tests' double is test/doubles/manualClock.ts.
 */
export interface Clock {
  now(): Date;
}
