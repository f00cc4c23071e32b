/**
 * The worker: pulls job messages and runs each edit, recording every step as an event. What a
 * delivery may do (start, wait, hand back, retry, fail) is decided by the delivery rules
 * (deliveryRules.ts); this file runs the edit itself. The output's name is fixed by the job, so
 * a retried or doubled run overwrites the same object and never makes two results. Before running
 * a model it looks in the owner's result cache (events/resultCache.ts); while the edit runs, its
 * job watch enforces the job's deadline (JOB_DEADLINE_SECONDS) as it notices a cancel. Each job's
 * inference calls carry its priority to Triton.
 */
import { EditError, ImageStoreError } from "../events/errors.js";
import { handleCommand } from "../events/handleCommand.js";
import type { InferenceClient } from "../events/inferenceClient.js";
import { isOverdue, type JobState } from "../events/jobState.js";
import type { Priority } from "../events/priority.js";
import { resultCacheKey, sha256Hex } from "../events/resultCache.js";
import type { OutputRef } from "../events/editEvents.js";
import { OPERATION_SPECS } from "../events/operations.js";
import { DEFAULT_OUTPUT_FORMAT, FILE_EXTENSIONS, type OutputFormatName } from "../events/outputFormat.js";
import type { Clock } from "../events/clock.js";
import type { EventStore } from "../events/eventStore.js";
import type { ImageStore } from "../events/imageStore.js";
import type { JobDelivery, JobSubscription } from "../events/jobQueue.js";
import type { Logger } from "../events/logger.js";
import type { WorkerConfig } from "./config.js";
import { runEdit } from "./edits/runEdit.js";
import { createDeliveryRules } from "./deliveryRules.js";
import { createReadinessGate, watchRunningJob } from "./liveness.js";
import type { StageTimer } from "../events/stageTimer.js";

export interface WorkerDeps {
  store: EventStore;
  images: ImageStore;
  subscription: JobSubscription;
  inference: InferenceClient;
  clock: Clock;
  config: Pick<
    WorkerConfig,
    | "workerId"
    | "resultsBucket"
    | "leaseSeconds"
    | "heartbeatSeconds"
    | "cancelCheckMs"
    | "tritonReadyPollMs"
    | "maxAttempts"
    | "maxInputBytes"
    | "maxInputPixels"
    | "maxOutputPixels"
    | "tileSize"
    | "tileOverlap"
    | "tritonMaxInFlight"
    | "tritonTimeoutMs"
    | "progressIntervalMs"
    | "jobDeadlineSeconds"
    | "resultsLifecycleDays"
  > &
    Partial<Pick<WorkerConfig, "maxWebpOutputPixels">>;
  log: Logger;
  /** Times the stages inside an edit (decode, inference, encode) for metrics and traces. */
  timeStage?: StageTimer;
  /** How often a delivery waiting on another live worker looks at the job again (default 1000). */
  holderPollMs?: number;
}

export interface Worker {
  start(): void;
  /** Stops pulling and lets the jobs in hand finish. */
  stop(): Promise<void>;
  /** Runs one delivery to its end; exposed for tests that hand-deliver messages. */
  process(delivery: JobDelivery): Promise<void>;
}

/** Where a job's result lands: one name per job and format, so a retry overwrites its own result. */
export function resultObjectName(jobId: string, format: OutputFormatName = "png"): string {
  return `results/${jobId}/output.${FILE_EXTENSIONS[format]}`;
}

/** Triton's request priority for each of ours; 1 is served first (the models' configs declare two levels). */
export const TRITON_PRIORITY: Record<Priority, number> = { interactive: 1, batch: 2 };

export function createWorker(deps: WorkerDeps): Worker {
  const { config, log } = deps;
  const workerId = config.workerId;

  const leaseMs = config.leaseSeconds * 1000;
  const gate = createReadinessGate(deps.inference, config.tritonReadyPollMs, log);
  const rules = createDeliveryRules({
    store: deps.store,
    clock: deps.clock,
    log,
    workerId,
    leaseMs,
    maxAttempts: config.maxAttempts,
    onInferenceUnavailable: () => gate.reportUnavailable(),
    ...(deps.holderPollMs === undefined ? {} : { holderPollMs: deps.holderPollMs }),
  });

  async function process(delivery: JobDelivery): Promise<void> {
    try {
      await processDelivery(delivery);
    } catch (error) {
      // The log could not be read or written: a passing fault; the message comes again.
      log({ severity: "ERROR", message: "delivery failed; handed back", jobId: delivery.message.jobId, error: String(error) });
      delivery.nack();
    }
  }

  async function processDelivery(delivery: JobDelivery): Promise<void> {
    const { jobId } = delivery.message;
    await gate.whenReady();
    const started = await rules.startOrWait(jobId);
    if (started.rejection) {
      rules.settleNotStarted(delivery, started.rejection);
      await dropOutputOfUnsuccessful(started.state);
      return;
    }
    const job = started.state as JobState;
    log({ message: "edit started", jobId, attempt: job.attempts, operation: job.operation, deliveryAttempt: delivery.deliveryAttempt });
    const deadlineMs = config.jobDeadlineSeconds * 1000;
    if (isOverdue(job, deps.clock.now(), deadlineMs)) {
      // Back from the queue after its deadline passed: it fails without running again.
      const expired = await handleCommand(deps, jobId, { type: "ExpireDeadline", deadlineMs });
      log({ severity: "WARNING", message: "edit failed: its deadline passed", jobId, firstStartedAt: job.firstStartedAt });
      delivery.ack();
      await dropOutputOfUnsuccessful(expired.state);
      return;
    }
    const startedAt = performance.now();
    const output = { bucket: config.resultsBucket, object: resultObjectName(jobId, (job.outputFormat ?? DEFAULT_OUTPUT_FORMAT).format) };
    const watch = watchRunningJob(deps, { jobId, workerId }, {
      checkMs: config.cancelCheckMs,
      heartbeatMs: config.heartbeatSeconds * 1000,
      leaseMs,
      deadline: { at: Date.parse(job.firstStartedAt ?? deps.clock.now().toISOString()) + deadlineMs, ms: deadlineMs },
    });
    const progress = progressRecorder(jobId);
    try {
      const spec = OPERATION_SPECS[job.operation];
      if (!spec.available) {
        throw new EditError("operation_unavailable", `${spec.title} is not available on this worker yet.`, false);
      }
      const input = await readInput(job);
      watch.signal.throwIfAborted();
      const cache = await lookUpCache(job, input);
      watch.signal.throwIfAborted();
      if (cache.hit) {
        watch.stop();
        const completed = await handleCommand(deps, jobId, {
          type: "CompleteEdit",
          workerId,
          output: cache.hit.output,
          processingMs: Math.round(performance.now() - startedAt),
          inferenceMs: 0,
          cachedFrom: cache.hit.jobId,
        });
        log(completed.rejection
          ? { message: "result not recorded", jobId, reason: completed.rejection.message }
          : { message: "edit succeeded from the result cache", jobId, cachedFrom: cache.hit.jobId });
        delivery.ack();
        return;
      }
      const result = await runEdit(input, job.operation, job.params, {
        inference: withPriority(deps.inference, TRITON_PRIORITY[job.priority]),
        tileSize: config.tileSize,
        overlap: config.tileOverlap,
        maxInFlight: config.tritonMaxInFlight,
        timeoutMs: config.tritonTimeoutMs,
        maxInputPixels: config.maxInputPixels,
        maxOutputPixels: config.maxOutputPixels,
        output: job.outputFormat ?? DEFAULT_OUTPUT_FORMAT,
        ...(config.maxWebpOutputPixels === undefined ? {} : { maxWebpPixels: config.maxWebpOutputPixels }),
        onProgress: progress.report,
        signal: watch.signal,
        ...(deps.timeStage === undefined ? {} : { timeStage: deps.timeStage }),
      });
      let sizeBytes = 0;
      // The edit runs as the image store reads (spools) its output; a cancel aborts the edit
      // before any upload, so no object appears.
      await deps.images.write(output, counted(result.body, (n) => (sizeBytes += n)), result.contentType);
      watch.signal.throwIfAborted();
      // From here the outcome is settled by the log: CompleteEdit wins, or the cancel did.
      watch.stop();
      await progress.settled();
      const completed = await handleCommand(deps, jobId, {
        type: "CompleteEdit",
        workerId,
        output: { ...output, contentType: result.contentType, width: result.width, height: result.height, sizeBytes },
        processingMs: Math.round(performance.now() - startedAt),
        inferenceMs: result.inferenceMs(),
        ...(cache.key === undefined ? {} : { cacheKey: cache.key }),
      });
      if (completed.rejection) {
        // Canceled or failed meanwhile: the output must not outlive the job. Lost the lease: the
        // new holder writes the same object, so it stays.
        await dropOutputOfUnsuccessful(completed.state);
        log({ message: "result not recorded", jobId, reason: completed.rejection.message });
      } else {
        log({
          message: "edit succeeded",
          jobId,
          width: result.width,
          height: result.height,
          tiles: result.tiles,
          inferenceMs: result.inferenceMs(),
          ...(result.conversions.length > 0 ? { conversions: result.conversions } : {}),
        });
      }
      delivery.ack();
    } catch (error) {
      watch.stop();
      await progress.settled();
      const stoppedBy = watch.reason();
      if (stoppedBy) {
        // Canceled or past its deadline: no output may outlive the job. Lost: the job ended or
        // moved on without us.
        if (stoppedBy === "canceled" || stoppedBy === "deadline") await deps.images.delete(output);
        log({ message: "edit stopped", jobId, reason: stoppedBy });
        delivery.ack();
      } else {
        // This attempt may have written the output before it failed (its success not recorded
        // in time): if that failure ended the job, the output goes.
        await dropOutputOfUnsuccessful(await rules.settleFailure(delivery, error));
      }
    } finally {
      watch.stop();
    }
  }

  /**
   * A job that ended without succeeding keeps no output. An attempt writes the output before it
   * records the success; when that record misses its deadline (a store that is slow or away) and
   * the job then fails (its attempts used up, or its deadline passed) or is canceled, the object
   * is left behind. Whoever sees such a job here deletes it (deleting is idempotent); a failure
   * to delete is logged, and the next delivery of the job tries again.
   */
  async function dropOutputOfUnsuccessful(state: JobState | undefined): Promise<void> {
    if (state?.status !== "failed" && state?.status !== "canceled") return;
    const output = { bucket: config.resultsBucket, object: resultObjectName(state.jobId, (state.outputFormat ?? DEFAULT_OUTPUT_FORMAT).format) };
    try {
      await deps.images.delete(output);
    } catch (error) {
      log({ severity: "ERROR", message: "could not delete the output of an unsuccessful job", jobId: state.jobId, error: String(error) });
    }
  }

  const modelVersions = new Map<string, { versions: string; at: number }>();
  /** The versions the server serves of `model`, asked at most once per MODEL_VERSION_TTL_MS, so a cache hit usually makes no call at all. */
  async function modelVersionOf(model: string): Promise<string> {
    const now = deps.clock.now().getTime();
    const known = modelVersions.get(model);
    if (known && now - known.at < MODEL_VERSION_TTL_MS) return known.versions;
    const versions = (await deps.inference.describeModel(model)).versions.join(",");
    modelVersions.set(model, { versions, at: now });
    return versions;
  }

  /**
   * The job's result cache key, and an earlier job of the same owner whose result it may reuse:
   * one that succeeded under that key within the results' lifetime, and whose output is still
   * there. No key when the caller opted out (no request digest).
   */
  async function lookUpCache(job: JobState, input: Buffer): Promise<{ key?: string; hit?: { jobId: string; output: OutputRef } }> {
    if (job.cacheDigest === undefined) return {};
    const modelVersion = await modelVersionOf(OPERATION_SPECS[job.operation].model);
    const key = resultCacheKey({ ownerId: job.ownerId, requestDigest: job.cacheDigest, inputSha256: sha256Hex(input), modelVersion });
    const entry = await deps.store.findCachedResult(job.ownerId, key);
    if (!entry || entry.jobId === job.jobId) return { key };
    const lifetimeMs = config.resultsLifecycleDays * 86_400_000;
    // The bucket deletes the result this long after it was written; leave an hour's margin for the URL.
    if (deps.clock.now().getTime() - Date.parse(entry.succeededAt) > lifetimeMs - 3_600_000) return { key };
    const source = await deps.store.getProjection(entry.jobId);
    if (source?.status !== "succeeded" || source.ownerId !== job.ownerId || !source.output) return { key };
    try {
      await deps.images.readHead(source.output, 1);
    } catch (error) {
      if (error instanceof ImageStoreError && error.code === "not_found") return { key };
      throw error;
    }
    return { key, hit: { jobId: source.jobId, output: source.output } };
  }

  /**
   * Records tile progress in the job's log at most once per `progressIntervalMs`, one append at
   * a time, dropping reports that arrive while one is being written. A failed append is only
   * logged: progress is a courtesy, the result is what counts.
   */
  function progressRecorder(jobId: string) {
    let lastAt = -Infinity;
    let writing: Promise<void> = Promise.resolve();
    let busy = false;
    return {
      report(tilesDone: number, tilesTotal: number) {
        const now = deps.clock.now().getTime();
        if (busy || tilesDone >= tilesTotal || now - lastAt < config.progressIntervalMs) return;
        lastAt = now;
        busy = true;
        writing = handleCommand(deps, jobId, { type: "RecordProgress", workerId, tilesDone, tilesTotal })
          .then((outcome) => {
            if (outcome.rejection) log({ message: "progress not recorded", jobId, reason: outcome.rejection.message });
          })
          .catch((error: unknown) => log({ severity: "WARNING", message: "progress not recorded", jobId, error: String(error) }))
          .finally(() => {
            // The event was stamped somewhere between the report and now: count the interval from
            // now, so that two recorded events are never closer than the interval, however slow
            // the append was.
            lastAt = deps.clock.now().getTime();
            busy = false;
          });
      },
      settled: () => writing,
    };
  }

  async function readInput(job: JobState): Promise<Buffer> {
    try {
      return await deps.images.read(job.input, config.maxInputBytes);
    } catch (error) {
      if (error instanceof ImageStoreError && error.code === "not_found") throw new EditError("input_missing", "The uploaded image is gone; upload it again.", false);
      if (error instanceof ImageStoreError && error.code === "too_large") throw new EditError("image_too_large", error.message, false);
      throw new EditError("storage_unavailable", "Storage is unavailable; the edit will be retried.", true);
    }
  }

  return {
    process,
    start() {
      gate.start();
      deps.subscription.start(process);
      log({ message: "worker pulling jobs", workerId });
    },
    async stop() {
      gate.stop();
      await deps.subscription.stop();
      log({ message: "worker stopped", workerId });
    },
  };
}

/** The client, with every inference call at `priority` on the server. */
function withPriority(inference: InferenceClient, priority: number): InferenceClient {
  return {
    isLive: () => inference.isLive(),
    isReady: () => inference.isReady(),
    isModelReady: (model, version) => inference.isModelReady(model, version),
    describeModel: (model, version) => inference.describeModel(model, version),
    infer: (request) => inference.infer({ ...request, priority }),
    close: () => inference.close(),
  };
}

/** How long a model's served versions are trusted before the server is asked again. */
export const MODEL_VERSION_TTL_MS = 60_000;

/** Passes `body` through, telling `add` the size of every chunk. */
async function* counted(body: AsyncIterable<Buffer>, add: (bytes: number) => void): AsyncGenerator<Buffer> {
  for await (const chunk of body) {
    add(chunk.length);
    yield chunk;
  }
}
