/**
 * The command rules: given a command, the job's current state and the time, the events to
 * append, or a typed rejection. Pure; time and ids come in.
 */
import type { EditEvent, OutputRef } from "./editEvents.js";
import { assertNever, deadlineFailure, hasLiveLease, isOverdue, isTerminal, UPLOAD_EXPIRED, type JobState } from "./jobState.js";
import type { EditParams, Operation } from "./operations.js";
import type { Priority } from "./priority.js";
import type { WebhookSubscription } from "./webhookEvents.js";
import type { OutputFormat } from "./outputFormat.js";

export type EditCommand =
  | {
      type: "RequestEdit";
      jobId: string;
      ownerId: string;
      operation: Operation;
      params: EditParams;
      flow: "signed_upload" | "direct";
      input: { bucket: string; object: string; contentType: string };
      idempotencyKey?: string;
      requestFingerprint?: string;
      priority?: Priority;
      /** The request's semantic digest (events/resultCache.ts); absent: no result cache. */
      cacheDigest?: string;
      webhook?: WebhookSubscription;
      /** The result's format; absent, PNG. */
      output?: OutputFormat;
    }
  | { type: "RecordUpload"; bucket: string; object: string; contentType: string; sizeBytes: number }
  | { type: "StartEdit"; workerId: string; leaseMs: number }
  /** Tiles done so far by the worker holding the job. */
  | { type: "RecordProgress"; workerId: string; tilesDone: number; tilesTotal: number }
  /**
   * The holder's result. `cacheKey`: the key later requests may find it under; `cachedFrom`: the
   * earlier job whose result it reuses, with no model run.
   */
  | {
      type: "CompleteEdit";
      workerId: string;
      output: OutputRef;
      processingMs: number;
      inferenceMs: number;
      cacheKey?: string;
      cachedFrom?: string;
    }
  /** A failure worth another attempt; after `maxAttempts` it becomes final. */
  | { type: "FailAttempt"; workerId: string; code: string; message: string; maxAttempts: number }
  /** A failure no retry can mend. `workerId` absent: recorded from outside a worker. */
  | { type: "FailEdit"; workerId?: string; code: string; message: string }
  | { type: "CancelEdit"; by: string; reason?: string }
  /** The holder's heartbeat: extend its lease to `leaseMs` from now. */
  | { type: "RenewLease"; workerId: string; leaseMs: number }
  /**
   * The sweeper's order for a job whose worker stopped beating: back to the queue, or failed
   * for good once `maxAttempts` attempts have started.
   */
  | { type: "ReclaimJob"; maxAttempts: number }
  /**
   * The dead-letter handler's order: Pub/Sub gave up on the job's message after
   * `deliveryAttempts` deliveries. Only a job no live worker holds fails.
   */
  | { type: "FailDeadLettered"; deliveryAttempts: number }
  /**
   * The sweeper's order for a job queued for `staleMs` with nothing happening: its message may
   * be lost, so it is queued (and published) again. Workers take each job once, so a message
   * that was not lost after all costs nothing but a needless delivery.
   */
  | { type: "RequeueStale"; staleMs: number }
  /**
   * The order for a job still awaiting its upload `expireAfterMs` after it was requested (its
   * upload URL has expired by then): it ends, canceled with the reason `upload_expired`, which
   * frees its owner's in-flight slot. Given by the sweeper, and by the upload trigger when a late
   * upload arrives.
   */
  | { type: "ExpireUpload"; expireAfterMs: number }
  /**
   * The order for a job not ended `deadlineMs` after a worker first started it: it fails with
   * `deadline_exceeded`. Given by the worker running it, and by the sweeper for one no worker
   * runs. A live lease does not protect it: its worker sees the job end and stops its work.
   */
  | { type: "ExpireDeadline"; deadlineMs: number };

export type RejectionCode =
  | "not_found"
  | "already_exists"
  | "already_ended"
  | "not_uploaded"
  | "upload_mismatch"
  | "lease_held"
  | "not_lease_holder"
  | "not_running"
  | "not_stale"
  | "not_expired"
  | "not_overdue";

export interface Rejection {
  code: RejectionCode;
  message: string;
}

export type Decision = { ok: true; events: EditEvent[] } | { ok: false; rejection: Rejection };

const accept = (...events: EditEvent[]): Decision => ({ ok: true, events });
const reject = (code: RejectionCode, message: string): Decision => ({ ok: false, rejection: { code, message } });

export function decide(command: EditCommand, state: JobState | undefined, now: Date): Decision {
  if (command.type === "RequestEdit") {
    if (state) return reject("already_exists", `job ${state.jobId} already exists`);
    const { type: _type, ...data } = command;
    return accept({ type: "EditRequested", data });
  }
  if (!state) return reject("not_found", "no such job");
  switch (command.type) {
    case "RecordUpload":
      return recordUpload(command, state);
    case "StartEdit":
      return startEdit(command, state, now);
    case "RecordProgress":
      if (isTerminal(state.status)) return reject("already_ended", `the job has already ${state.status}`);
      if (!holdsLease(state, command.workerId)) return reject("not_lease_holder", "another worker holds this job");
      return accept({
        type: "EditProgressed",
        data: { workerId: command.workerId, tilesDone: command.tilesDone, tilesTotal: command.tilesTotal },
      });
    case "CompleteEdit":
      if (isTerminal(state.status)) return reject("already_ended", `the job has already ${state.status}`);
      if (!holdsLease(state, command.workerId)) return reject("not_lease_holder", "another worker holds this job");
      return accept({
        type: "EditSucceeded",
        data: {
          workerId: command.workerId,
          output: command.output,
          processingMs: command.processingMs,
          inferenceMs: command.inferenceMs,
          ...(command.cachedFrom === undefined ? {} : { cachedFrom: command.cachedFrom }),
          ...(command.cacheKey === undefined ? {} : { cacheKey: command.cacheKey }),
        },
      });
    case "FailAttempt": {
      if (isTerminal(state.status)) return reject("already_ended", `the job has already ${state.status}`);
      if (!holdsLease(state, command.workerId)) return reject("not_lease_holder", "another worker holds this job");
      const failure = { code: command.code, message: command.message, attempt: state.attempts };
      return state.attempts >= command.maxAttempts
        ? accept({ type: "EditFailed", data: failure })
        : accept({ type: "EditAttemptFailed", data: { ...failure, workerId: command.workerId } });
    }
    case "FailEdit":
      if (isTerminal(state.status)) return reject("already_ended", `the job has already ${state.status}`);
      if (command.workerId !== undefined && !holdsLease(state, command.workerId)) {
        return reject("not_lease_holder", "another worker holds this job");
      }
      return accept({ type: "EditFailed", data: { code: command.code, message: command.message, attempt: state.attempts } });
    case "CancelEdit":
      if (isTerminal(state.status)) return reject("already_ended", `the job has already ${state.status}`);
      return accept({
        type: "EditCanceled",
        data: command.reason === undefined ? { by: command.by } : { by: command.by, reason: command.reason },
      });
    case "RenewLease":
      if (isTerminal(state.status)) return reject("already_ended", `the job has already ${state.status}`);
      if (!holdsLease(state, command.workerId)) return reject("not_lease_holder", "another worker holds this job");
      return accept({
        type: "LeaseRenewed",
        data: { workerId: command.workerId, leaseExpiresAt: new Date(now.getTime() + command.leaseMs).toISOString() },
      });
    case "ReclaimJob":
      return reclaimJob(command, state, now);
    case "FailDeadLettered":
      return failDeadLettered(command, state, now);
    case "RequeueStale":
      if (state.status !== "queued") return reject("not_stale", `the job is ${state.status}, not queued`);
      if (now.getTime() - Date.parse(state.updatedAt) < command.staleMs) return reject("not_stale", `the job was queued at ${state.updatedAt}`);
      return accept({ type: "EditQueued", data: { attempt: state.attempts + 1 } });
    case "ExpireUpload":
      if (state.status !== "awaiting_upload") return reject("not_expired", `the job is ${state.status}, not awaiting its upload`);
      if (now.getTime() - Date.parse(state.createdAt) < command.expireAfterMs) {
        return reject("not_expired", `the job was requested at ${state.createdAt}; its upload URL is still valid`);
      }
      return accept({ type: "EditCanceled", data: { by: "system", reason: UPLOAD_EXPIRED } });
    case "ExpireDeadline":
      if (isTerminal(state.status)) return reject("already_ended", `the job has already ${state.status}`);
      if (!isOverdue(state, now, command.deadlineMs)) {
        return reject("not_overdue", state.firstStartedAt === undefined ? "the job has not started" : `the job started at ${state.firstStartedAt}`);
      }
      return accept({ type: "EditFailed", data: { ...deadlineFailure(command.deadlineMs), attempt: state.attempts } });
    default:
      return assertNever(command);
  }
}

function reclaimJob(command: Extract<EditCommand, { type: "ReclaimJob" }>, state: JobState, now: Date): Decision {
  if (isTerminal(state.status)) return reject("already_ended", `the job has already ${state.status}`);
  if (state.status !== "running") return reject("not_running", `the job is ${state.status}, not running`);
  if (hasLiveLease(state, now)) return reject("lease_held", `worker ${state.workerId} holds the job until ${state.leaseExpiresAt}`);
  const failure = {
    code: "worker_lost",
    message: `The worker running the edit stopped responding (attempt ${state.attempts}).`,
    attempt: state.attempts,
  };
  if (state.attempts >= command.maxAttempts) {
    return accept({ type: "EditFailed", data: { ...failure, message: `${failure.message} No attempts are left.` } });
  }
  return accept({ type: "EditAttemptFailed", data: { ...failure, ...(state.workerId === undefined ? {} : { workerId: state.workerId }) } });
}

function failDeadLettered(command: Extract<EditCommand, { type: "FailDeadLettered" }>, state: JobState, now: Date): Decision {
  if (isTerminal(state.status)) return reject("already_ended", `the job has already ${state.status}`);
  if (state.status === "awaiting_upload") return reject("not_uploaded", "the image has not been uploaded yet");
  // A duplicate of a long job can run out of deliveries while the job itself runs fine.
  if (hasLiveLease(state, now)) return reject("lease_held", `worker ${state.workerId} holds the job until ${state.leaseExpiresAt}`);
  const last = state.error ? ` The last error was: ${state.error.message}` : "";
  return accept({
    type: "EditFailed",
    data: {
      code: "dead_lettered",
      message: `The edit was given up after ${command.deliveryAttempts} deliveries without a result.${last}`,
      attempt: state.attempts,
    },
  });
}

function recordUpload(command: Extract<EditCommand, { type: "RecordUpload" }>, state: JobState): Decision {
  if (command.bucket !== state.input.bucket || command.object !== state.input.object) {
    return reject("upload_mismatch", `the upload ${command.object} is not this job's input`);
  }
  // A repeated notification, or an upload after cancellation: nothing changes.
  if (state.status !== "awaiting_upload") return accept();
  return accept(
    {
      type: "ImageUploaded",
      data: { bucket: command.bucket, object: command.object, contentType: command.contentType, sizeBytes: command.sizeBytes },
    },
    { type: "EditQueued", data: { attempt: state.attempts + 1 } },
  );
}

function startEdit(command: Extract<EditCommand, { type: "StartEdit" }>, state: JobState, now: Date): Decision {
  const lease = { workerId: command.workerId, leaseExpiresAt: new Date(now.getTime() + command.leaseMs).toISOString() };
  switch (state.status) {
    case "awaiting_upload":
      return reject("not_uploaded", "the image has not been uploaded yet");
    case "queued":
      return accept({ type: "EditStarted", data: { attempt: state.attempts + 1, ...lease } });
    case "running":
      // A live lease means a worker is on it; a lapsed one means that worker died.
      if (state.leaseExpiresAt !== undefined && Date.parse(state.leaseExpiresAt) > now.getTime()) {
        return reject("lease_held", `worker ${state.workerId} holds the job until ${state.leaseExpiresAt}`);
      }
      return accept({ type: "EditStarted", data: { attempt: state.attempts + 1, ...lease } });
    case "succeeded":
    case "failed":
    case "canceled":
      return reject("already_ended", `the job has already ${state.status}`);
    default:
      return assertNever(state.status);
  }
}

function holdsLease(state: JobState, workerId: string): boolean {
  return state.status === "running" && state.workerId === workerId;
}
