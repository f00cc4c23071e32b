/**
 * What clients see of a job: the projection and the event log as the API answers them, without
 * the fields that are the server's business (docs/security.md).
 */
import type { RecordedEvent } from "../events/editEvents.js";
import type { JobState } from "../events/jobState.js";
import type { EditParams, Operation } from "../events/operations.js";
import type { Priority } from "../events/priority.js";
import { DEFAULT_OUTPUT_FORMAT, type OutputFormat } from "../events/outputFormat.js";
import type { Clock } from "../events/clock.js";
import type { ImageStore } from "../events/imageStore.js";
import type { FunctionsConfig } from "./config.js";

/** The job as the API and the Firestore projection show it. */
export interface JobView {
  jobId: string;
  status: JobState["status"];
  operation: Operation;
  params: EditParams;
  ownerId: string;
  version: number;
  attempts: number;
  createdAt: string;
  updatedAt: string;
  output?: { url: string; width: number; height: number; contentType: string; sizeBytes: number };
  error?: { code: string; message: string };
  /** While running: tiles done over tiles total, updated at most once a second. */
  progress?: { tilesDone: number; tilesTotal: number };
  /** `interactive` or `batch`: which queue the job waits in. */
  priority: Priority;
  /** The earlier job of the same user whose result this one reused from the result cache. */
  cachedFrom?: string;
  /** Where the job's events are POSTed, and which ones (docs/webhooks.md). */
  webhook?: { url: string; events: string[] };
  /** The result's format as asked (PNG when the request named none); `output.contentType` is what was written. */
  outputFormat: OutputFormat;
}

/** An event of a job's log as a client sees it. */
export interface EventView {
  seq: number;
  type: RecordedEvent["type"];
  at: string;
  data: unknown;
}

export interface JobViewDeps {
  images: ImageStore;
  clock: Clock;
  config: Pick<FunctionsConfig, "resultUrlTtlSeconds">;
}

/** The job's view, with a download URL for its output that expires `resultUrlTtlSeconds` from now. */
export async function toJobView(job: JobState, deps: JobViewDeps): Promise<JobView> {
  const result: JobView = {
    jobId: job.jobId,
    status: job.status,
    operation: job.operation,
    params: job.params,
    ownerId: job.ownerId,
    version: job.version,
    attempts: job.attempts,
    createdAt: job.createdAt,
    updatedAt: job.updatedAt,
    // Projections written before priorities have none: they were interactive.
    priority: job.priority ?? "interactive",
    outputFormat: job.outputFormat ?? DEFAULT_OUTPUT_FORMAT,
  };
  if (job.cachedFrom !== undefined) result.cachedFrom = job.cachedFrom;
  if (job.output) {
    const expiresAt = new Date(deps.clock.now().getTime() + deps.config.resultUrlTtlSeconds * 1000);
    result.output = {
      url: await deps.images.createDownloadUrl(job.output, expiresAt),
      width: job.output.width,
      height: job.output.height,
      contentType: job.output.contentType,
      sizeBytes: job.output.sizeBytes,
    };
  }
  if (job.error && job.status !== "succeeded") result.error = job.error;
  if (job.progress) result.progress = job.progress;
  if (job.webhook) result.webhook = { url: job.webhook.url, events: [...job.webhook.events] };
  return result;
}

/** The job's log as a client sees it. */
export function toEventViews(events: readonly RecordedEvent[]): EventView[] {
  return events.map(({ seq, type, at, data }) => ({ seq, type, at, data: withoutServerFields(data) }));
}

/** Fields of an event's data that are the server's business: which worker, which bucket and object, the idempotency key, the request and cache digests. */
const SERVER_FIELDS = new Set(["workerId", "bucket", "object", "idempotencyKey", "requestFingerprint", "cacheDigest", "cacheKey"]);

/** An event's data as a client sees it: the same, without the server's fields, at any depth. */
function withoutServerFields(value: unknown): unknown {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return value;
  return Object.fromEntries(Object.entries(value).filter(([name]) => !SERVER_FIELDS.has(name)).map(([name, inner]) => [name, withoutServerFields(inner)]));
}
