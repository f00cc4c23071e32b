/**
 * The worker: pulls job messages and runs each edit, recording every step as an event. What a
 * delivery may do (start, wait, hand back, retry, fail) is decided by the delivery rules
 * (deliveryRules.ts); this file runs the edit itself. The output's name is fixed by the job, so
 * a retried or doubled run overwrites the same object and never makes two results.
 */
import { EditError, ImageStoreError } from "../events/errors.js";
import { handleCommand } from "../events/handleCommand.js";
import type { InferenceClient } from "../events/inferenceClient.js";
import type { JobState } from "../events/jobState.js";
import { OPERATION_SPECS } from "../events/operations.js";
import { DEFAULT_OUTPUT_FORMAT, FILE_EXTENSIONS, type OutputFormatName } from "../events/outputFormat.js";
import type { Clock } from "../events/clock.js";
import type { EventStore } from "../events/eventStore.js";
import type { ImageStore } from "../events/imageStore.js";
import type { JobDelivery, JobSubscription } from "../events/jobQueue.js";
import type { Logger } from "../events/logger.js";
import type { WorkerConfig } from "./config.js";
import { runEdit, type EditOutput } from "./edits/runEdit.js";
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
      return;
    }
    const job = started.state as JobState;
    log({ message: "edit started", jobId, attempt: job.attempts, operation: job.operation, deliveryAttempt: delivery.deliveryAttempt });
    const startedAt = performance.now();
    const output = { bucket: config.resultsBucket, object: resultObjectName(jobId, (job.outputFormat ?? DEFAULT_OUTPUT_FORMAT).format) };
    const watch = watchRunningJob(deps, { jobId, workerId }, { checkMs: config.cancelCheckMs, heartbeatMs: config.heartbeatSeconds * 1000, leaseMs });
    const progress = progressRecorder(jobId);
    try {
      const result = await prepareEdit(job, progress.report, watch.signal);
      let sizeBytes = 0;
      // The edit runs as the upload reads its output; a cancel aborts both, and the unfinished
      // upload leaves no object.
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
      });
      if (completed.rejection) {
        // Canceled meanwhile: the output must not outlive the job. Lost the lease: the new
        // holder writes the same object, so it stays.
        if (completed.state?.status === "canceled") await deps.images.delete(output);
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
        // Canceled: no output may outlive the job. Lost: the job ended or moved on without us.
        if (stoppedBy === "canceled") await deps.images.delete(output);
        log({ message: "edit stopped", jobId, reason: stoppedBy });
        delivery.ack();
      } else {
        await rules.settleFailure(delivery, error);
      }
    } finally {
      watch.stop();
    }
  }

  async function prepareEdit(
    job: JobState,
    onProgress: (tilesDone: number, tilesTotal: number) => void,
    signal: AbortSignal,
  ): Promise<EditOutput> {
    const spec = OPERATION_SPECS[job.operation];
    if (!spec.available) {
      throw new EditError("operation_unavailable", `${spec.title} is not available on this worker yet.`, false);
    }
    const input = await readInput(job);
    signal.throwIfAborted();
    return runEdit(input, job.operation, job.params, {
      inference: deps.inference,
      tileSize: config.tileSize,
      overlap: config.tileOverlap,
      maxInFlight: config.tritonMaxInFlight,
      timeoutMs: config.tritonTimeoutMs,
      maxInputPixels: config.maxInputPixels,
      maxOutputPixels: config.maxOutputPixels,
      output: job.outputFormat ?? DEFAULT_OUTPUT_FORMAT,
      ...(config.maxWebpOutputPixels === undefined ? {} : { maxWebpPixels: config.maxWebpOutputPixels }),
      onProgress,
      signal,
      ...(deps.timeStage === undefined ? {} : { timeStage: deps.timeStage }),
    });
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

/** Passes `body` through, telling `add` the size of every chunk. */
async function* counted(body: AsyncIterable<Buffer>, add: (bytes: number) => void): AsyncGenerator<Buffer> {
  for await (const chunk of body) {
    add(chunk.length);
    yield chunk;
  }
}
