/**
 * The event store port: each job's append-only log of events and the projection folded from it.
 * Adapters: Firestore (adapters/firestore/firestoreEventStore.ts); the unit tests' double is
 * test/doubles/memoryEventStore.ts. Both pass test/support/eventStoreContract.ts.
 */
import type { RecordedEvent } from "./editEvents.js";
import type { JobState } from "./jobState.js";

export interface AppendOptions {
  /**
   * For an append that starts a job: the most jobs its owner may have in flight. When the
   * owner already has that many, the append throws `InFlightLimitError` and writes nothing; the
   * check and the count's increase are one atomic step, so parallel requests cannot overshoot.
   */
  maxInFlight?: number;
}

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
  /** Jobs not ended (queued or running) that a worker first started before `before`. Oldest first. */
  listStartedBefore(before: Date, limit: number): Promise<JobState[]>;
  /**
   * The job whose result was recorded under `cacheKey` for `ownerId`, and when it succeeded; the
   * store keeps this index itself, in the same write as the `EditSucceeded` that carries the key
   * (the projection's `cacheKey`). Undefined when none, or when the key is another owner's.
   */
  findCachedResult(ownerId: string, cacheKey: string): Promise<CachedResult | undefined>;
}

/** An entry of the result cache's index. */
export interface CachedResult {
  jobId: string;
  /** When that job succeeded. */
  succeededAt: string;
}

/** The cache entry an append writes: for a job that succeeds with a cache key of its own. */
export function cacheEntryOf(events: readonly RecordedEvent[], projection: JobState): (CachedResult & { ownerId: string; cacheKey: string }) | undefined {
  const succeeded = events.find((event) => event.type === "EditSucceeded");
  if (!succeeded || succeeded.type !== "EditSucceeded" || succeeded.data.cacheKey === undefined) return undefined;
  return { ownerId: projection.ownerId, cacheKey: succeeded.data.cacheKey, jobId: projection.jobId, succeededAt: succeeded.at };
}
