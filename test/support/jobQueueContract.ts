/**
 * The contract every JobQueue and JobSubscription adapter keeps, as one suite run against each of
 * them (Pub/Sub on its official emulator in the int tier, the in-memory double in the unit tier):
 * a published job reaches a subscriber with its trace headers, a nacked delivery comes again with
 * its attempt counted, and `stop` waits for the deliveries in hand.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { JobDelivery, JobQueue, JobSubscription } from "../../events/jobQueue.js";

/** A queue with one subscription of its own; `subscribe` gives a subscriber to it. */
export interface QueueUnderTest {
  queue: JobQueue;
  subscribe(): JobSubscription;
}

/** Collects deliveries as they come, for the test to take one at a time. */
function inbox(handle: (delivery: JobDelivery) => Promise<void> = async () => {}) {
  const arrived: JobDelivery[] = [];
  let wake: (() => void) | undefined;
  return {
    async handle(delivery: JobDelivery) {
      arrived.push(delivery);
      wake?.();
      await handle(delivery);
    },
    async next(timeoutMs = 30_000): Promise<JobDelivery> {
      const deadline = Date.now() + timeoutMs;
      while (arrived.length === 0) {
        if (Date.now() > deadline) throw new Error(`no delivery within ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 100);
        });
      }
      return arrived.shift() as JobDelivery;
    },
  };
}

export function jobQueueContract(adapter: string, make: () => Promise<QueueUnderTest>): void {
  describe(`JobQueue contract: ${adapter}`, () => {
    const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    it("delivers a published job to a subscriber, with its trace headers", async () => {
      const { queue, subscribe } = await make();
      const jobId = randomUUID();
      const id = await queue.publish({ jobId, operation: "enhance" }, { traceparent });
      expect(id).toMatch(/\S/);
      const subscription = subscribe();
      const box = inbox();
      subscription.start((delivery) => box.handle(delivery));
      try {
        const delivery = await box.next();
        expect(delivery.message).toEqual({ jobId, operation: "enhance" });
        expect(delivery.trace).toEqual({ traceparent });
        expect(delivery.deliveryAttempt).toBe(1);
        expect(delivery.publishedAt).toBeInstanceOf(Date);
        delivery.ack();
      } finally {
        await subscription.stop();
      }
    });

    it("hands a nacked delivery back, counting the attempt, and not an acked one", async () => {
      const { queue, subscribe } = await make();
      const jobId = randomUUID();
      await queue.publish({ jobId, operation: "upscale" });
      const subscription = subscribe();
      const box = inbox();
      subscription.start((delivery) => box.handle(delivery));
      try {
        const first = await box.next();
        first.nack();
        const second = await box.next();
        expect(second.message.jobId).toBe(jobId);
        expect(second.deliveryAttempt).toBeGreaterThan(first.deliveryAttempt);
        second.ack();
        const after = await box.next(1_500).catch(() => undefined);
        expect(after?.message.jobId).toBeUndefined();
      } finally {
        await subscription.stop();
      }
    });

    it("waits, on stop, for the deliveries in hand to settle", async () => {
      const { queue, subscribe } = await make();
      await queue.publish({ jobId: randomUUID(), operation: "comic" });
      let finished = false;
      const subscription = subscribe();
      const box = inbox(async (delivery) => {
        await new Promise((resolve) => setTimeout(resolve, 500));
        finished = true;
        delivery.ack();
      });
      subscription.start((delivery) => box.handle(delivery));
      await box.next();
      await subscription.stop();
      expect(finished).toBe(true);
    });
  });
}
