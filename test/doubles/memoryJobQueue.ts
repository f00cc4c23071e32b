/**
 * An in-memory job queue: the `JobQueue` and `JobSubscription` ports' double
 * (events/jobQueue.ts). Like a Pub/Sub topic with one subscription shared by every worker: each
 * message goes to one subscriber at a time, a nacked one comes again with its attempt counted,
 * an acked one is gone. It passes the same contract suite as the Pub/Sub adapter
 * (test/support/jobQueueContract.ts).
 */
import type { JobDelivery, JobMessage, JobQueue, JobSubscription, TraceHeaders } from "../../events/jobQueue.js";

interface Pending {
  id: string;
  message: JobMessage;
  trace: TraceHeaders;
  publishedAt: Date;
  attempt: number;
}

export interface MemoryJobQueue extends JobQueue {
  /** Every message published so far, in order. */
  published: JobMessage[];
  /** A subscriber to the queue's one subscription, taking at most `maxInFlight` messages at once. */
  subscription(maxInFlight?: number): JobSubscription;
  /** Resolves once no message waits and none is in a subscriber's hands. */
  drained(): Promise<void>;
}

/** `redeliveryMs`: how long a nacked message waits before it comes again (Pub/Sub's backoff). */
export function createMemoryJobQueue(options: { redeliveryMs?: number } = {}): MemoryJobQueue {
  const redeliveryMs = options.redeliveryMs ?? 20;
  const waiting: Pending[] = [];
  let backingOff = 0;
  const subscribers = new Set<() => void>();
  const published: JobMessage[] = [];
  let inHand = 0;
  let nextId = 1;
  let idle: Array<() => void> = [];
  const wake = () => {
    for (const pull of subscribers) pull();
    if (waiting.length === 0 && inHand === 0 && backingOff === 0) {
      const resolve = idle;
      idle = [];
      for (const done of resolve) done();
    }
  };

  return {
    published,
    async publish(message, trace = {}) {
      const id = String(nextId++);
      const picked: TraceHeaders = {};
      for (const name of ["traceparent", "tracestate"]) if (trace[name]) picked[name] = trace[name] as string;
      published.push({ ...message });
      const carried: JobMessage = { jobId: message.jobId, operation: message.operation, ...(message.priority === undefined ? {} : { priority: message.priority }) };
      waiting.push({ id, message: carried, trace: picked, publishedAt: new Date(), attempt: 1 });
      setImmediate(wake);
      return id;
    },

    subscription(maxInFlight = 2) {
      let handle: ((delivery: JobDelivery) => Promise<void>) | undefined;
      const mine = new Set<Promise<void>>();
      const pull = () => {
        while (handle && mine.size < maxInFlight && waiting.length > 0) {
          const item = waiting.shift() as Pending;
          inHand += 1;
          let settled = false;
          const settle = (requeue: boolean) => {
            if (settled) return;
            settled = true;
            inHand -= 1;
            if (!requeue) return void setImmediate(wake);
            backingOff += 1;
            setTimeout(() => {
              backingOff -= 1;
              waiting.push({ ...item, attempt: item.attempt + 1 });
              wake();
            }, redeliveryMs);
          };
          const delivery: JobDelivery = {
            message: { ...item.message },
            deliveryAttempt: item.attempt,
            publishedAt: item.publishedAt,
            ...(Object.keys(item.trace).length > 0 ? { trace: { ...item.trace } } : {}),
            ack: () => settle(false),
            nack: () => settle(true),
          };
          const work: Promise<void> = handle(delivery)
            .catch(() => settle(true))
            .finally(() => {
              mine.delete(work);
              setImmediate(wake);
            });
          mine.add(work);
        }
      };
      return {
        start(next) {
          handle = next;
          subscribers.add(pull);
          setImmediate(pull);
        },
        async stop() {
          handle = undefined;
          subscribers.delete(pull);
          await Promise.allSettled([...mine]);
        },
      };
    },

    drained() {
      if (waiting.length === 0 && inHand === 0 && backingOff === 0) return Promise.resolve();
      return new Promise<void>((resolve) => idle.push(resolve));
    },
  };
}
