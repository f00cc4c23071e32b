import type { RequestCounter } from "../../events/requestCounter.js";

/** Counts hits per key and window in memory, as the Firestore request counter does. */
export function createMemoryRequestCounter(): RequestCounter {
  const hits = new Map<string, number>();
  return {
    async hit(key, windowStart) {
      const name = `${key}\n${windowStart.toISOString()}`;
      hits.set(name, (hits.get(name) ?? 0) + 1);
      return hits.get(name) as number;
    },
  };
}
