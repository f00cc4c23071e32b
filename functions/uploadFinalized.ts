/**
 * The Cloud Storage "object finalized" handler: an upload to the uploads bucket records
 * `ImageUploaded` and `EditQueued` on its job and publishes the job. Repeated notifications change
 * nothing; a failure throws, so that Eventarc delivers the event again.
 */
import { handleCommand } from "../events/handleCommand.js";
import { awaitsFirstStart } from "../events/jobState.js";
import type { Clock } from "../events/clock.js";
import type { EventStore } from "../events/eventStore.js";
import type { ImageStore } from "../events/imageStore.js";
import type { JobQueue } from "../events/jobQueue.js";
import type { Logger } from "../events/logger.js";
import type { FunctionsConfig } from "./config.js";
import { jobIdOfUpload } from "./uploadObject.js";

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
  config: Pick<FunctionsConfig, "uploadsBucket" | "maxUploadBytes">;
  log?: Logger;
}

export type UploadOutcome = "queued" | "republished" | "unchanged" | "ignored" | "refused";

export function createUploadFinalizedHandler(deps: UploadDeps): (data: StorageObjectData) => Promise<UploadOutcome> {
  const log = deps.log ?? (() => {});
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
    const refusal =
      sizeBytes === 0
        ? { code: "empty_upload", message: "The upload is empty (0 bytes); upload the photo again." }
        : sizeBytes > deps.config.maxUploadBytes
        ? { code: "image_too_large", message: `The upload is ${sizeBytes} bytes; the limit is ${deps.config.maxUploadBytes}.` }
        : data.contentType !== job.input.contentType
          ? { code: "content_type_mismatch", message: `The upload is ${data.contentType ?? "untyped"}, but the edit was requested for ${job.input.contentType}.` }
          : undefined;
    if (refusal && job.status === "awaiting_upload") {
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
    await deps.queue.publish({ jobId, operation: job.operation });
    log({ message: recorded ? "upload recorded; edit queued" : "repeated upload notification; edit published again", jobId });
    return recorded ? "queued" : "republished";
  };
}
