/**
 * The ports the core needs from the outside world, in the core's words. Each adapter
 * (Firestore, Cloud Storage, Pub/Sub, JWT) implements one and translates its SDK's types and
 * errors; no SDK type crosses these interfaces.
 */
import type { ObjectRef, RecordedEvent } from "./editEvents.js";
import type { JobState } from "./jobState.js";
import type { Operation } from "./operations.js";

export type { InferenceClient } from "./inferencePort.js";

/** A job's log and the projection folded from it. */
export interface EventStore {
  /** Every event of the job, in order; empty for an unknown job. */
  load(jobId: string): Promise<RecordedEvent[]>;
  /**
   * Appends `events` (numbered from `expectedVersion + 1`, where `expectedVersion` is the seq of
   * the last event the caller saw, 0 for a new job) and writes `projection` beside them,
   * atomically. Throws `ConcurrencyError` when another writer appended first; nothing is
   * written then.
   */
  append(jobId: string, expectedVersion: number, events: readonly RecordedEvent[], projection: JobState, options?: AppendOptions): Promise<void>;
  /** The stored projection, as clients see it; undefined for an unknown job. */
  getProjection(jobId: string): Promise<JobState | undefined>;
  /** Overwrites the projection, e.g. after rebuilding it from the log. */
  putProjection(state: JobState): Promise<void>;
  /** A user's jobs, newest first. */
  listByOwner(ownerId: string, limit: number): Promise<JobState[]>;
  /**
   * How many of a user's jobs have not ended (awaiting upload, queued or running): a count the
   * store keeps per owner, in the same write as each job's events (see `inFlightChange`), so
   * reading it costs the same however many jobs the owner has.
   */
  countInFlight(ownerId: string): Promise<number>;
  /** Jobs still awaiting their upload, requested before `before`. Oldest first. */
  listAwaitingUploadSince(before: Date, limit: number): Promise<JobState[]>;
  /** Running jobs whose lease lapsed before `now`: their workers stopped beating. Oldest first. */
  listLapsedLeases(now: Date, limit: number): Promise<JobState[]>;
  /** Jobs queued with no change since before `before`: their message may be lost. Oldest first. */
  listStaleQueued(before: Date, limit: number): Promise<JobState[]>;
}

export interface AppendOptions {
  /**
   * For an append that starts a job: the most jobs its owner may have in flight. When the
   * owner already has that many, the append throws `InFlightLimitError` and writes nothing; the
   * check and the count's increase are one atomic step, so parallel requests cannot overshoot.
   */
  maxInFlight?: number;
}

/** Where images live: uploads and results. */
export interface ImageStore {
  /**
   * A URL a client can PUT exactly this object to, with these headers, until `expiresAt`.
   * `metadata` is custom metadata the object must carry (the URL is signed for it, and it is among
   * the headers the client sends), such as the trace headers of the request that asked for it.
   */
  createUploadUrl(
    ref: ObjectRef,
    options: { contentType: string; maxBytes: number; expiresAt: Date; metadata?: Record<string, string> },
  ): Promise<{
    url: string;
    headers: Record<string, string>;
  }>;
  /** A URL a client can GET the object from until `expiresAt`. */
  createDownloadUrl(ref: ObjectRef, expiresAt: Date): Promise<string>;
  /** The object's bytes; throws `ImageStoreError` "not_found" or "too_large" (over `maxBytes`). */
  read(ref: ObjectRef, maxBytes: number): Promise<Buffer>;
  /** The object's first `length` bytes (fewer for a smaller object), to tell its type; throws `ImageStoreError` "not_found". */
  readHead(ref: ObjectRef, length: number): Promise<Buffer>;
  /**
   * Writes the object whole, with `metadata` as its custom metadata: from a buffer, or streamed
   * from `body`. If `body` throws, the write fails with that same error and no object is left.
   */
  write(ref: ObjectRef, body: Buffer | AsyncIterable<Uint8Array>, contentType: string, metadata?: Record<string, string>): Promise<void>;
  /** Deletes the object; absent objects are not an error. */
  delete(ref: ObjectRef): Promise<void>;
}

/** What the queue carries: just enough to find the job; the state lives in the event store. */
export interface JobMessage {
  jobId: string;
  operation: Operation;
}

/**
 * W3C Trace Context headers (`traceparent`, `tracestate`) carried across a hop, so that the
 * worker's part of a job joins the trace of the request that queued it. The core never reads
 * them; only the adapters and the observability decorators do.
 */
export type TraceHeaders = Record<string, string>;

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

export interface JobSubscription {
  /** Starts pulling; `handle` is called for each delivery, at most `maxInFlight` at a time. */
  start(handle: (delivery: JobDelivery) => Promise<void>): void;
  /** Stops pulling and waits for the deliveries in hand to settle. */
  stop(): Promise<void>;
}

/** The caller behind a request. */
export interface Caller {
  userId: string;
}

export interface TokenVerifier {
  /** Resolves the caller of a bearer token, or throws `AuthError`. */
  verify(token: string): Promise<Caller>;
}

export interface Clock {
  now(): Date;
}
