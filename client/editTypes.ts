/**
 * The wire types of the edit service, as a web or mobile app sees them: the job (from the API
 * or from its Firestore projection `jobs/{jobId}`), its events, and the model catalogue. These
 * types are the contract that `functions/openApiDocument.ts` describes; the client imports
 * nothing from the server's code.
 */

export const JOB_STATUSES = ["awaiting_upload", "queued", "running", "succeeded", "failed", "canceled"] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export const ENDED_STATUSES: readonly JobStatus[] = ["succeeded", "failed", "canceled"];

/** Tiles done so far, on a running job (updated at most once a second). */
export interface TileProgress {
  tilesDone: number;
  tilesTotal: number;
}

export interface JobFailure {
  code: string;
  /** A sentence a person can read. */
  message: string;
}

export interface JobOutput {
  /**
   * Where the result is: a signed `https` URL when read from the API, the `gs://` address when
   * read from the Firestore projection.
   */
  url: string;
  width: number;
  height: number;
  contentType: string;
  sizeBytes: number;
}

/** `interactive` (the default) is taken ahead of `batch` at every queue. */
export const PRIORITIES = ["interactive", "batch"] as const;
export type Priority = (typeof PRIORITIES)[number];
export const OUTPUT_FORMATS = ["png", "jpeg", "webp"] as const;

/** The result's file format, as asked: PNG (default, keeps transparency), JPEG (none) or WebP (keeps it). */
export interface OutputFormat {
  format: (typeof OUTPUT_FORMATS)[number];
  /** 1 to 100, for jpeg and webp (default 90). */
  quality?: number;
  /** `#rrggbb`: transparency is laid on this colour. JPEG of a background removal needs it. */
  background?: string;
}

interface JobCommon {
  jobId: string;
  operation: string;
  params: Record<string, number | string | boolean>;
  ownerId: string;
  /** The seq of the last event folded in; grows by one with every event. */
  version: number;
  /** How many times a worker has started the edit. */
  attempts: number;
  createdAt: string;
  updatedAt: string;
  /** Which queue the job waits in; `interactive` for jobs made before priorities. */
  priority: Priority;
  /** The format asked for (absent on jobs from before formats: PNG); `output.contentType` is what was written. */
  outputFormat?: OutputFormat;
}

/** The job, typed by its status: each state carries exactly what it can have. */
export type Job =
  | (JobCommon & { status: "awaiting_upload" })
  /** `lastError` is set when an attempt failed and the job went back to the queue. */
  | (JobCommon & { status: "queued"; lastError?: JobFailure })
  | (JobCommon & { status: "running"; progress?: TileProgress; lastError?: JobFailure })
  /** `cachedFrom`: the earlier job of the same user whose result this is, from the result cache (no model ran). */
  | (JobCommon & { status: "succeeded"; output: JobOutput; cachedFrom?: string })
  | (JobCommon & { status: "failed"; error: JobFailure })
  | (JobCommon & { status: "canceled" });

export type EndedJob = Extract<Job, { status: "succeeded" | "failed" | "canceled" }>;

export function isEnded(job: Job): job is EndedJob {
  return ENDED_STATUSES.includes(job.status);
}

export interface JobEvent {
  seq: number;
  type: string;
  at: string;
  data: Record<string, unknown>;
}

/** One parameter of an edit, as GET /v1/models describes it. Unknown shapes are kept as they are. */
export interface ParamInfo {
  kind?: string;
  description?: string;
  default?: number | string | boolean;
  allowed?: ReadonlyArray<number | string>;
  min?: number;
  max?: number;
  [more: string]: unknown;
}

export interface ModelInfo {
  operation: string;
  title: string;
  method: string;
  available: boolean;
  params: Record<string, ParamInfo>;
  [more: string]: unknown;
}

/** The job events a webhook can tell. */
export const WEBHOOK_EVENTS = ["running", "progress", "succeeded", "failed", "canceled"] as const;
export type WebhookEventName = (typeof WEBHOOK_EVENTS)[number];

/** A webhook asked for with an edit: `url` must be https to a public address. */
export interface WebhookRequest {
  url: string;
  /** Default: `succeeded`, `failed`, `canceled`. */
  events?: WebhookEventName[];
}

/** One try at delivering a webhook message. */
export interface WebhookAttempt {
  at: string;
  durationMs: number;
  status?: number;
  error?: string;
}

/** A webhook message of a job (`GET /v1/edits/{jobId}/webhooks`), with every attempt. */
export interface WebhookDelivery {
  /** The `webhook-id` every attempt carries. */
  id: string;
  /** `edit.<event>`. */
  type: string;
  url: string;
  state: "pending" | "delivered" | "failed";
  createdAt: string;
  nextAttemptAt?: string;
  attempts: WebhookAttempt[];
}
