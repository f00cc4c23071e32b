/**
 * The job queue port: publishing a job for a worker, and a worker's subscription to the jobs.
 * Adapter: Pub/Sub (adapters/pubsub/pubsubJobQueue.ts); the unit tests' double is
 * test/doubles/memoryJobQueue.ts. Both pass test/support/jobQueueContract.ts.
 */
import type { Operation } from "./operations.js";
import type { Priority } from "./priority.js";

/** What the queue carries: just enough to find the job; the state lives in the event store. */
export interface JobMessage {
  jobId: string;
  operation: Operation;
  /** Which of the queue's lanes the message goes to; absent, interactive. */
  priority?: Priority;
}

/**
 * W3C Trace Context headers (`traceparent`, `tracestate`) carried across a hop, so that the
 * worker's part of a job joins the trace of the request that queued it. The core never reads
 * them; only the adapters and the observability decorators do.
 */
export type TraceHeaders = Record<string, string>;

/** The publishing side: the functions queue jobs through it. */
export interface JobQueue {
  /**
   * Publishes the job for a worker; resolves with the message id once the queue has it. `trace`
   * travels beside the message (Pub/Sub: as message attributes) and comes back as
   * `JobDelivery.trace`.
   */
  publish(message: JobMessage, trace?: TraceHeaders): Promise<string>;
}

/** One delivery of a job message, to be settled exactly once. */
export interface JobDelivery {
  message: JobMessage;
  /** 1 on the first delivery, counting up on redeliveries. */
  deliveryAttempt: number;
  publishedAt: Date;
  /** The trace headers the publisher sent with the message, if any. */
  trace?: TraceHeaders;
  ack(): void;
  /** Hands the message back for redelivery (after the subscription's backoff). */
  nack(): void;
}

/** The pulling side: a worker takes its deliveries through it. */
export interface JobSubscription {
  /** Starts pulling; `handle` is called for each delivery, at most `maxInFlight` at a time. */
  start(handle: (delivery: JobDelivery) => Promise<void>): void;
  /** Stops pulling and waits for the deliveries in hand to settle. */
  stop(): Promise<void>;
}
