/**
 * The Cloud Storage "object finalized" handler: an upload to the uploads bucket records
 * `ImageUploaded` and `EditQueued` on its job and publishes the job. Before that, the object's
 * first bytes must be a JPEG, PNG, WebP or AVIF of the type the edit was requested for (the declared
 * Content-Type alone proves nothing), so that no other decoder ever runs on a worker. An upload
 * that comes after its URL expired, or after the job ended, is refused and its object deleted.
 * Repeated notifications change nothing; a failure throws, so that Eventarc delivers the event
 * again.
 */
import { handleCommand } from "../events/handleCommand.js";
import { awaitsFirstStart, isTerminal } from "../events/jobState.js";
import type { Clock } from "../events/clock.js";
import type { EventStore } from "../events/eventStore.js";
import type { ImageStore } from "../events/imageStore.js";
import type { JobQueue } from "../events/jobQueue.js";
import type { Logger } from "../events/logger.js";
import type { FunctionsConfig } from "./config.js";
import { jobIdOfUpload } from "./uploadObject.js";
import { HEIC_REFUSAL, isAnimatedPng, isHeif, sniffImageType } from "./imageType.js";
import { uploadExpiryMs } from "./jobSweeper.js";

/** Enough of a file to tell its type, and to find a PNG's animation chunk right after its header. */
const HEAD_BYTES = 4096;

/** The fields of a `google.cloud.storage.object.v1.finalized` event's data that we use. */
export interface StorageObjectData {
  bucket: string;
  name: string;
  contentType?: string;
  size?: string | number;
  /** The object's custom metadata; uploads carry the trace headers of the request that asked for them. */
  metadata?: Record<string, string>;
}

export interface UploadDeps {
  store: EventStore;
  images: ImageStore;
  queue: JobQueue;
  clock: Clock;
  config: Pick<FunctionsConfig, "uploadsBucket" | "maxUploadBytes" | "signedUrlTtlSeconds">;
  log?: Logger;
}

export type UploadOutcome = "queued" | "republished" | "unchanged" | "ignored" | "refused";

export function createUploadFinalizedHandler(deps: UploadDeps): (data: StorageObjectData) => Promise<UploadOutcome> {
  const log = deps.log ?? (() => {});

  /** Why the upload cannot be the edit's input, or undefined when it can. */
  async function refusalOf(data: StorageObjectData, sizeBytes: number, requested: string): Promise<{ code: string; message: string } | undefined> {
    if (sizeBytes === 0) return { code: "empty_upload", message: "The upload is empty (0 bytes); upload the photo again." };
    if (sizeBytes > deps.config.maxUploadBytes) {
      return { code: "image_too_large", message: `The upload is ${sizeBytes} bytes; the limit is ${deps.config.maxUploadBytes}.` };
    }
    if (data.contentType !== requested) {
      return { code: "content_type_mismatch", message: `The upload is ${data.contentType ?? "untyped"}, but the edit was requested for ${requested}.` };
    }
    const head = await deps.images.readHead({ bucket: data.bucket, object: data.name }, HEAD_BYTES);
    const actual = sniffImageType(head);
    if (actual === undefined) {
      if (isHeif(head)) return { code: "unsupported_image", message: `${HEIC_REFUSAL}.` };
      return { code: "unsupported_image", message: `The upload is not a JPEG, PNG, WebP or AVIF image, though it was sent as ${requested}.` };
    }
    if (actual !== requested) return { code: "content_type_mismatch", message: `The upload is ${actual}, but the edit was requested for ${requested}.` };
    if (actual === "image/png" && isAnimatedPng(head)) {
      return { code: "unsupported_image", message: "The upload is an animated PNG (APNG); upload a single still image." };
    }
    return undefined;
  }

  return async (data) => {
    const jobId = data.bucket === deps.config.uploadsBucket ? jobIdOfUpload(data.name) : undefined;
    if (!jobId) {
      log({ severity: "WARNING", message: "upload ignored: not a job's upload object", bucket: data.bucket, object: data.name });
      return "ignored";
    }
    const ref = { bucket: data.bucket, object: data.name };
    const sizeBytes = Number(data.size ?? 0);
    const job = await deps.store.getProjection(jobId);
    if (!job) {
      log({ severity: "WARNING", message: "upload ignored: no such job", jobId });
      return "ignored";
    }
    if (job.status === "awaiting_upload") {
      const expired = await handleCommand(deps, jobId, { type: "ExpireUpload", expireAfterMs: uploadExpiryMs(deps.config) });
      if (expired.appended.length > 0) {
        await deps.images.delete(ref);
        log({ severity: "WARNING", message: "upload refused: it came after its upload URL expired; the edit has ended", jobId });
        return "refused";
      }
    } else if (isTerminal(job.status) && job.input.sizeBytes === undefined) {
      // Canceled or expired before any upload was recorded: nothing will ever read this object.
      await deps.images.delete(ref);
      log({ severity: "WARNING", message: `upload refused: the edit has already ${job.status}`, jobId });
      return "refused";
    }
    const refusal = job.status === "awaiting_upload" ? await refusalOf(data, sizeBytes, job.input.contentType) : undefined;
    if (refusal) {
      await handleCommand(deps, jobId, { type: "FailEdit", ...refusal });
      await deps.images.delete(ref);
      log({ severity: "WARNING", message: "upload refused", jobId, reason: refusal.code });
      return "refused";
    }
    const outcome = await handleCommand(deps, jobId, {
      type: "RecordUpload",
      bucket: data.bucket,
      object: data.name,
      contentType: data.contentType ?? job.input.contentType,
      sizeBytes,
    });
    if (outcome.rejection) {
      log({ severity: "WARNING", message: "upload ignored", jobId, reason: outcome.rejection.message });
      return "ignored";
    }
    // Nothing appended means a repeated notification. Eventarc repeats one when the handler
    // failed, perhaps after recording the upload but before publishing.
    const recorded = outcome.appended.length > 0;
    if (!recorded && !awaitsFirstStart(outcome.state)) return "unchanged";
    await deps.queue.publish({ jobId, operation: job.operation, priority: job.priority });
    log({ message: recorded ? "upload recorded; edit queued" : "repeated upload notification; edit published again", jobId });
    return recorded ? "queued" : "republished";
  };
}
