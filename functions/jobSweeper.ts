/**
 * The sweeper, run on a schedule: a job that is `running` past its lease, with no heartbeat
 * since, lost its worker. It goes back to the queue (and its message is published again, since
 * the dead worker's message may be gone), or fails once its attempts are used up. A job whose
 * worker still beats is never touched: the lease decides, as it does for a second delivery.
 * A job left `queued` for QUEUED_REPUBLISH_SECONDS with nothing happening (its message lost, say
 * with the worker that held it) is queued and published again. A job still awaiting its upload
 * once its upload URL has expired (SIGNED_URL_TTL_SECONDS, plus `UPLOAD_GRACE_MS` for an upload
 * that started in time) ends, canceled with the reason `upload_expired`, which frees its owner's
 * in-flight slot. A job not ended JOB_DEADLINE_SECONDS after it first started fails with
 * `deadline_exceeded`: its worker, if it still runs it, enforces the deadline itself, so the sweeper
 * mostly finds orphans (a dead worker's job, or one back in the queue); a worker still on it sees
 * the job end and stops its tile work.
 */
import { handleCommand } from "../events/handleCommand.js";
import type { Clock } from "../events/clock.js";
import type { EventStore } from "../events/eventStore.js";
import type { JobQueue } from "../events/jobQueue.js";
import type { Logger } from "../events/logger.js";
import type { FunctionsConfig } from "./config.js";

/**
 * How long after its URL expired an upload may still arrive: Cloud Storage checks the signature
 * when the upload starts, and a large one on a slow link finishes minutes later.
 */
export const UPLOAD_GRACE_MS = 5 * 60_000;

/** How long after it was requested a job awaiting its upload is given up. */
export function uploadExpiryMs(config: Pick<FunctionsConfig, "signedUrlTtlSeconds">): number {
  return config.signedUrlTtlSeconds * 1000 + UPLOAD_GRACE_MS;
}

export interface SweepResult {
  /** Jobs failed with `deadline_exceeded`. */
  overdue: string[];
  requeued: string[];
  failed: string[];
  /** Queued jobs whose message may have been lost, published again. */
  republished: string[];
  /** Jobs whose upload never came before its URL expired, ended. */
  expired: string[];
}

/** Jobs looked at per run; the next run takes the rest. */
const BATCH = 200;

export function createJobSweeper(deps: {
  store: EventStore;
  queue: JobQueue;
  clock: Clock;
  config: Pick<FunctionsConfig, "maxAttempts" | "queuedRepublishSeconds" | "signedUrlTtlSeconds" | "jobDeadlineSeconds">;
  log?: Logger;
}): () => Promise<SweepResult> {
  const log = deps.log ?? (() => {});
  return async () => {
    const result: SweepResult = { overdue: [], requeued: [], failed: [], republished: [], expired: [] };
    // Deadlines first, so that an overdue ghost fails rather than going back to the queue.
    const deadlineMs = deps.config.jobDeadlineSeconds * 1000;
    const overdue = await deps.store.listStartedBefore(new Date(deps.clock.now().getTime() - deadlineMs), BATCH);
    for (const job of overdue) {
      const outcome = await handleCommand(deps, job.jobId, { type: "ExpireDeadline", deadlineMs });
      if (outcome.rejection) continue;
      result.overdue.push(job.jobId);
      log({ severity: "WARNING", message: "edit failed: its deadline passed", jobId: job.jobId, firstStartedAt: job.firstStartedAt, status: job.status });
    }
    const lapsed = await deps.store.listLapsedLeases(deps.clock.now(), BATCH);
    for (const job of lapsed) {
      const outcome = await handleCommand(deps, job.jobId, { type: "ReclaimJob", maxAttempts: deps.config.maxAttempts });
      // Rejected: its worker beat meanwhile, or the job ended; either way it is not a ghost.
      if (outcome.rejection) continue;
      if (outcome.appended.some((event) => event.type === "EditFailed")) {
        result.failed.push(job.jobId);
        log({ severity: "WARNING", message: "ghost job failed: its worker died and no attempts are left", jobId: job.jobId, workerId: job.workerId });
      } else {
        await deps.queue.publish({ jobId: job.jobId, operation: job.operation, priority: job.priority });
        result.requeued.push(job.jobId);
        log({ severity: "WARNING", message: "ghost job requeued: its worker stopped beating", jobId: job.jobId, workerId: job.workerId });
      }
    }
    const staleMs = deps.config.queuedRepublishSeconds * 1000;
    const stale = await deps.store.listStaleQueued(new Date(deps.clock.now().getTime() - staleMs), BATCH);
    for (const job of stale) {
      const outcome = await handleCommand(deps, job.jobId, { type: "RequeueStale", staleMs });
      if (outcome.rejection) continue;
      await deps.queue.publish({ jobId: job.jobId, operation: job.operation, priority: job.priority });
      result.republished.push(job.jobId);
      log({ severity: "WARNING", message: "stale queued job published again: its message may have been lost", jobId: job.jobId, queuedSince: job.updatedAt });
    }
    const expireAfterMs = uploadExpiryMs(deps.config);
    const abandoned = await deps.store.listAwaitingUploadSince(new Date(deps.clock.now().getTime() - expireAfterMs), BATCH);
    for (const job of abandoned) {
      const outcome = await handleCommand(deps, job.jobId, { type: "ExpireUpload", expireAfterMs });
      if (outcome.rejection) continue;
      result.expired.push(job.jobId);
      log({ severity: "WARNING", message: "edit ended: its upload never came before the upload URL expired", jobId: job.jobId, requestedAt: job.createdAt });
    }
    return result;
  };
}
