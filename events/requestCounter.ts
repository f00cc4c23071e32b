/** Counts requests per key and time window, shared by every instance of the API. */
export interface RequestCounter {
  /** Counts one request of `key` in the window that starts at `windowStart`; resolves with the count, this one included. */
  hit(key: string, windowStart: Date): Promise<number>;
}
