/**
 * The job's state, and `evolve`, the fold from its events to that state. The projection that
 * clients watch is this state, written beside every append.
 */
import type { Failure, ObjectRef, OutputRef, RecordedEvent } from "./editEvents.js";
import type { EditParams, Operation } from "./operations.js";
import { DEFAULT_PRIORITY, type Priority } from "./priority.js";
import type { WebhookSubscription } from "./webhookEvents.js";
import type { OutputFormat } from "./outputFormat.js";

export const JOB_STATUSES = ["awaiting_upload", "queued", "running", "succeeded", "failed", "canceled"] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export const TERMINAL_STATUSES: readonly JobStatus[] = ["succeeded", "failed", "canceled"];

export function isTerminal(status: JobStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}

/**
 * How the owner's count of jobs in flight changes when `events` are appended: +1 as a job starts
 * (EditRequested), −1 as it ends (EditSucceeded, EditFailed, EditCanceled; the rules let each job
 * end once). The event store keeps that count in the same write as the events.
 */
export function inFlightChange(events: readonly { type: string }[]): number {
  let change = 0;
  for (const event of events) {
    if (event.type === "EditRequested") change += 1;
    else if (event.type === "EditSucceeded" || event.type === "EditFailed" || event.type === "EditCanceled") change -= 1;
  }
  return change;
}

/** The reason of an `EditCanceled` that ended a job whose upload never came before its URL expired. */
export const UPLOAD_EXPIRED = "upload_expired";

/**
 * Queued and never started: the job's message may have been lost between recording the upload
 * and publishing, so publishing it again is safe (a worker takes each job once) and may be needed.
 */
export function awaitsFirstStart(state: JobState | undefined): boolean {
  return state?.status === "queued" && state.attempts === 0;
}

/** True when the job has not ended `deadlineMs` after a worker first started it. */
export function isOverdue(state: JobState | undefined, now: Date, deadlineMs: number): boolean {
  if (!state || isTerminal(state.status) || state.firstStartedAt === undefined) return false;
  return now.getTime() - Date.parse(state.firstStartedAt) >= deadlineMs;
}

/** The code and sentence of a job failed by its deadline. */
export function deadlineFailure(deadlineMs: number): Failure {
  return {
    code: DEADLINE_EXCEEDED,
    message: `The edit did not finish within ${Math.round(deadlineMs / 1000)} seconds of starting, so it was stopped; try a smaller image or try again later.`,
  };
}

export const DEADLINE_EXCEEDED = "deadline_exceeded";

/** True while the job runs under a lease that has not lapsed at `now`: its worker is alive. */
export function hasLiveLease(state: JobState | undefined, now: Date): boolean {
  return state?.status === "running" && state.leaseExpiresAt !== undefined && Date.parse(state.leaseExpiresAt) > now.getTime();
}

export interface JobState {
  jobId: string;
  ownerId: string;
  operation: Operation;
  params: EditParams;
  status: JobStatus;
  flow: "signed_upload" | "direct";
  input: ObjectRef & { contentType: string; sizeBytes?: number };
  /** The sequence number of the last event folded in; 0 before the first. */
  version: number;
  /** How many times a worker has started the edit. */
  attempts: number;
  createdAt: string;
  updatedAt: string;
  output?: OutputRef;
  error?: Failure;
  /** How far the running attempt has got, in tiles; absent until its first report. */
  progress?: { tilesDone: number; tilesTotal: number };
  /** The worker that holds the job while it runs, and until when. */
  workerId?: string;
  leaseExpiresAt?: string;
  idempotencyKey?: string;
  requestFingerprint?: string;
  /** Which queue the job waits in, and its Triton request priority. */
  priority: Priority;
  /** When a worker first started the edit; the job's deadline counts from here. */
  firstStartedAt?: string;
  /** The request's semantic digest; absent when the caller opted out of the result cache. */
  cacheDigest?: string;
  /** The result's cache key, once it succeeded with one. */
  cacheKey?: string;
  /** The earlier job whose result this job reused from the result cache. */
  cachedFrom?: string;
  /** Where the job's events are POSTed, signed, and which ones. */
  webhook?: WebhookSubscription;
  /** The result's format as asked; absent, PNG (`DEFAULT_OUTPUT_FORMAT`). */
  outputFormat?: OutputFormat;
}

/** Folds one event into the state. The first event must be EditRequested. */
export function evolve(state: JobState | undefined, event: RecordedEvent): JobState {
  if (event.type === "EditRequested") {
    if (state) throw new Error(`EditRequested at seq ${event.seq} on an existing job`);
    const data = event.data;
    return {
      jobId: data.jobId,
      ownerId: data.ownerId,
      operation: data.operation,
      params: data.params,
      status: "awaiting_upload",
      flow: data.flow,
      input: data.input,
      version: event.seq,
      attempts: 0,
      createdAt: event.at,
      updatedAt: event.at,
      ...(data.idempotencyKey === undefined ? {} : { idempotencyKey: data.idempotencyKey }),
      ...(data.requestFingerprint === undefined ? {} : { requestFingerprint: data.requestFingerprint }),
      priority: data.priority ?? DEFAULT_PRIORITY,
      ...(data.cacheDigest === undefined ? {} : { cacheDigest: data.cacheDigest }),
      ...(data.webhook === undefined ? {} : { webhook: { url: data.webhook.url, events: [...data.webhook.events] } }),
      ...(data.output === undefined ? {} : { outputFormat: data.output }),
    };
  }
  if (!state) throw new Error(`${event.type} at seq ${event.seq} before EditRequested`);
  const next: JobState = { ...state, version: event.seq, updatedAt: event.at };
  switch (event.type) {
    case "ImageUploaded":
      next.input = { ...state.input, contentType: event.data.contentType, sizeBytes: event.data.sizeBytes };
      return next;
    case "EditQueued":
      next.status = "queued";
      return next;
    case "EditStarted":
      next.status = "running";
      next.attempts = state.attempts + 1;
      next.workerId = event.data.workerId;
      next.leaseExpiresAt = event.data.leaseExpiresAt;
      next.firstStartedAt = state.firstStartedAt ?? event.at;
      delete next.progress;
      return next;
    case "EditProgressed":
      next.progress = { tilesDone: event.data.tilesDone, tilesTotal: event.data.tilesTotal };
      return next;
    case "LeaseRenewed":
      next.leaseExpiresAt = event.data.leaseExpiresAt;
      return next;
    case "EditAttemptFailed":
      next.status = "queued";
      next.error = { code: event.data.code, message: event.data.message };
      return withoutLease(next);
    case "EditSucceeded":
      next.status = "succeeded";
      next.output = event.data.output;
      if (event.data.cachedFrom !== undefined) next.cachedFrom = event.data.cachedFrom;
      if (event.data.cacheKey !== undefined) next.cacheKey = event.data.cacheKey;
      delete next.error;
      return withoutLease(next);
    case "EditFailed":
      next.status = "failed";
      next.error = { code: event.data.code, message: event.data.message };
      return withoutLease(next);
    case "EditCanceled":
      next.status = "canceled";
      if (event.data.reason === UPLOAD_EXPIRED) {
        next.error = { code: UPLOAD_EXPIRED, message: "The photo was not uploaded before its upload URL expired; request the edit again." };
      }
      return withoutLease(next);
    default:
      return assertNever(event);
  }
}

/** Folds a whole log. Undefined for an empty one. */
export function foldEvents(events: readonly RecordedEvent[]): JobState | undefined {
  return events.reduce<JobState | undefined>(evolve, undefined);
}

function withoutLease(state: JobState): JobState {
  delete state.progress;
  delete state.workerId;
  delete state.leaseExpiresAt;
  return state;
}

export function assertNever(value: never): never {
  throw new Error(`unexpected value ${JSON.stringify(value)}`);
}
