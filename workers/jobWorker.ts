/**
 * The worker: pulls job messages and runs each edit, recording every step as an event.
 *
 * Pub/Sub delivers at least once, so every step checks the job's log first: a delivery of an
 * ended job is acked with no change; one of a job another live worker holds is handed back;
 * one of a job whose worker's lease has lapsed takes it over. The output's name is fixed by
 * the job, so a retried or doubled run overwrites the same object and never makes two results.
 */
import { EditError } from "../events/errors.js";
import { handleCommand } from "../events/handleCommand.js";
import { InferenceError, type InferenceClient } from "../events/inferencePort.js";
import { hasLiveLease, isTerminal, type JobState } from "../events/jobState.js";
import { OPERATION_SPECS } from "../events/operations.js";
import type { Clock, EventStore, ImageStore, JobDelivery, JobSubscription } from "../events/ports.js";
import type { Logger } from "../adapters/logging/jsonLogger.js";
import type { WorkerConfig } from "./config.js";
import { runEdit, type EditOutput } from "./edits/runEdit.js";
import { createReadinessGate, watchRunningJob } from "./liveness.js";
import type { StageTimer } from "./stageTimer.js";

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
  >;
  log: Logger;
  /** Times the stages inside an edit (decode, inference, encode) for metrics and traces. */
  timeStage?: StageTimer;
}

export interface Worker {
  start(): void;
  /** Stops pulling and lets the jobs in hand finish. */
  stop(): Promise<void>;
  /** Runs one delivery to its end; exposed for tests that hand-deliver messages. */
  process(delivery: JobDelivery): Promise<void>;
}

export function resultObjectName(jobId: string): string {
  return `results/${jobId}/output.png`;
}

export function createWorker(deps: WorkerDeps): Worker {
  const { config, log } = deps;
  const workerId = config.workerId;

  const leaseMs = config.leaseSeconds * 1000;
  // --- faults: Triton readiness gate, waiting on a live holder, heartbeat and cancel watch ---
  const gate = createReadinessGate(deps.inference, config.tritonReadyPollMs, log);

  async function process(delivery: JobDelivery): Promise<void> {
    try {
      await processDelivery(delivery);
    } catch (error) {
      // The log could not be read or written: a passing fault; the message comes again.
      log({ severity: "ERROR", message: "delivery failed; handed back", jobId: delivery.message.jobId, error: String(error) });
      delivery.nack();
    }
  }

  /**
   * Takes the job, or, while another live worker holds it, waits for that worker (holding this
   * copy, not handing it back: each hand-back spends one of the message's deliveries) until the
   * job ends or the holder's lease lapses and the job can be taken over.
   */
  async function startOrWait(jobId: string) {
    const giveUpAt = deps.clock.now().getTime() + leaseMs;
    for (;;) {
      const started = await handleCommand(deps, jobId, { type: "StartEdit", workerId, leaseMs });
      if (started.rejection?.code !== "lease_held" || deps.clock.now().getTime() > giveUpAt) return started;
      for (;;) {
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        const state = await deps.store.getProjection(jobId);
        if (!state || isTerminal(state.status) || !hasLiveLease(state, deps.clock.now()) || deps.clock.now().getTime() > giveUpAt) break;
      }
    }
  }
  // --- end faults ---

  async function processDelivery(delivery: JobDelivery): Promise<void> {
    const { jobId } = delivery.message;
    await gate.whenReady();
    const started = await startOrWait(jobId);
    if (started.rejection) {
      const code = started.rejection.code;
      if (code === "lease_held") {
        // Held past a whole lease by a worker that still beats: a long job; this copy comes back later.
        log({ message: "job held by another worker; handed back", jobId, reason: started.rejection.message });
        delivery.nack();
      } else {
        log({ message: "delivery needs no work", jobId, reason: started.rejection.message });
        delivery.ack();
      }
      return;
    }
    const job = started.state as JobState;
    log({ message: "edit started", jobId, attempt: job.attempts, operation: job.operation, deliveryAttempt: delivery.deliveryAttempt });
    const startedAt = performance.now();
    const output = { bucket: config.resultsBucket, object: resultObjectName(jobId) };
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
        await settleFailure(delivery, jobId, error);
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
      const code = (error as { code?: string }).code;
      if (code === "not_found") throw new EditError("input_missing", "The uploaded image is gone; upload it again.", false);
      if (code === "too_large") throw new EditError("image_too_large", (error as Error).message, false);
      throw new EditError("storage_unavailable", "Storage is unavailable; the edit will be retried.", true);
    }
  }

  async function settleFailure(delivery: JobDelivery, jobId: string, error: unknown): Promise<void> {
    const failure = classify(error);
    // Hold the next jobs (this one's redelivery among them) until Triton answers again.
    if (failure.code === "inference_unavailable") gate.reportUnavailable();
    try {
      if (failure.retryable) {
        const outcome = await handleCommand(deps, jobId, {
          type: "FailAttempt",
          workerId,
          code: failure.code,
          message: failure.message,
          maxAttempts: config.maxAttempts,
        });
        const final = outcome.appended.some((event) => event.type === "EditFailed");
        log({ severity: "WARNING", message: final ? "edit failed after its last attempt" : "attempt failed; will retry", jobId, code: failure.code, detail: String(error) });
        if (final || outcome.rejection) delivery.ack();
        else delivery.nack();
      } else {
        await handleCommand(deps, jobId, { type: "FailEdit", workerId, code: failure.code, message: failure.message });
        log({ severity: "WARNING", message: "edit failed", jobId, code: failure.code, detail: String(error) });
        delivery.ack();
      }
    } catch (recordError) {
      // Not even the failure could be recorded: hand the message back and let it come again.
      log({ severity: "ERROR", message: "could not record a failure", jobId, error: String(recordError) });
      delivery.nack();
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

/** Every failure is either retryable (back to the queue) or permanent (the job fails). */
export function classify(error: unknown): { code: string; message: string; retryable: boolean } {
  if (error instanceof EditError) return { code: error.code, message: error.message, retryable: error.retryable };
  if (error instanceof InferenceError) {
    return error.retryable
      ? { code: "inference_unavailable", message: "The model server is unavailable; the edit will be retried.", retryable: true }
      : { code: "inference_failed", message: `The model could not process the image (${error.code}).`, retryable: false };
  }
  // Unknown errors are treated as passing faults: the attempt limit keeps them from looping.
  return { code: "internal", message: "The edit failed unexpectedly; it will be retried.", retryable: true };
}
