/**
 * What every RequestCounter must do, run against the in-memory double (unit tier) and the
 * Firestore adapter on the official emulator (int tier): counts per key and window, each hit
 * counted once, parallel hits included.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { RequestCounter } from "../../events/requestCounter.js";

export function requestCounterContract(adapter: string, make: () => RequestCounter): void {
  describe(`RequestCounter contract: ${adapter}`, () => {
    const window = new Date("2026-11-29T10:00:00.000Z");

    it("counts the hits of one key in one window, this one included", async () => {
      const counter = make();
      const key = `user-${randomUUID()}`;
      expect(await counter.hit(key, window)).toBe(1);
      expect(await counter.hit(key, window)).toBe(2);
      expect(await counter.hit(key, window)).toBe(3);
    });

    it("keeps keys and windows apart", async () => {
      const counter = make();
      const [alice, bob] = [`alice-${randomUUID()}`, `bob-${randomUUID()}`];
      await counter.hit(alice, window);
      await counter.hit(alice, window);
      expect(await counter.hit(bob, window)).toBe(1);
      expect(await counter.hit(alice, new Date(window.getTime() + 60_000))).toBe(1);
    });

    it("counts every one of parallel hits", async () => {
      const counter = make();
      const key = `user-${randomUUID()}`;
      await Promise.all(Array.from({ length: 8 }, () => counter.hit(key, window)));
      expect(await counter.hit(key, window)).toBe(9);
    });
  });
}
