/**
 * One worker's two lanes of jobs, interactive and batch, drained in that order into one set of
 * slots. A delivery waits for a free slot; when one frees, a waiting interactive delivery always
 * goes first, and a batch delivery goes only when no interactive one waits. Batch work may hold
 * at most `batchSlots` of the `slots` (fewer than all of them when there are two or more), so a
 * backlog of long batch jobs never leaves an interactive job waiting for a slot, while batch work
 * still moves whenever interactive work is idle.
 *
 * Each lane is its own subscription (Pub/Sub: one per priority topic); its flow control should
 * be `slots` for the interactive lane and `batchSlots` for the batch lane, so that neither holds
 * messages that other workers could run.
 */
import type { JobDelivery, JobSubscription } from "../events/jobQueue.js";
import type { Priority } from "../events/priority.js";

export interface PrioritySlots {
  /** Deliveries run at once, both lanes together. */
  slots: number;
  /** Of those, the most batch deliveries run at once. */
  batchSlots: number;
}

/** The default share of batch work: all slots but one, so an interactive job always finds one. */
export function defaultBatchSlots(slots: number): number {
  return Math.max(1, slots - 1);
}

export function createPrioritySubscription(lanes: Record<Priority, JobSubscription>, limits: PrioritySlots): JobSubscription {
  const waiting: Record<Priority, Array<() => void>> = { interactive: [], batch: [] };
  let running = 0;
  let batchRunning = 0;

  const pump = () => {
    while (running < limits.slots) {
      let next = waiting.interactive.shift();
      if (!next && batchRunning < limits.batchSlots) next = waiting.batch.shift();
      if (!next) return;
      next();
    }
  };

  const admit = (lane: Priority, handle: (delivery: JobDelivery) => Promise<void>) => (delivery: JobDelivery) =>
    new Promise<void>((resolve) => {
      waiting[lane].push(() => {
        running += 1;
        if (lane === "batch") batchRunning += 1;
        void handle(delivery)
          .catch(() => delivery.nack())
          .finally(() => {
            running -= 1;
            if (lane === "batch") batchRunning -= 1;
            resolve();
            pump();
          });
      });
      pump();
    });

  return {
    start(handle) {
      lanes.interactive.start(admit("interactive", handle));
      lanes.batch.start(admit("batch", handle));
    },
    async stop() {
      await Promise.all([lanes.interactive.stop(), lanes.batch.stop()]);
    },
  };
}
