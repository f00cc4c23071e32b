/**
 * Turns a job as it arrives (a Firestore projection document, or the API's JSON) into the typed
 * `Job`. Pure, so that the web app, the command line and the tests share one reading.
 */
import { JOB_STATUSES, OUTPUT_FORMATS, type Job, type JobFailure, type JobOutput, type JobStatus, type OutputFormat, type TileProgress } from "./editTypes.js";

export class MalformedJobError extends Error {
  override readonly name = "MalformedJobError";
}

/** Reads a job; throws `MalformedJobError` naming the first field that is missing or wrong. */
export function parseJob(raw: unknown): Job {
  const data = record(raw, "job");
  const status = data.status;
  if (typeof status !== "string" || !(JOB_STATUSES as readonly string[]).includes(status)) {
    throw new MalformedJobError(`job.status is ${JSON.stringify(status)}, not one of ${JOB_STATUSES.join(", ")}`);
  }
  const common = {
    jobId: text(data, "jobId"),
    operation: text(data, "operation"),
    params: (data.params === undefined ? {} : record(data.params, "job.params")) as Job["params"],
    ownerId: text(data, "ownerId"),
    version: count(data, "version"),
    attempts: count(data, "attempts"),
    createdAt: text(data, "createdAt"),
    updatedAt: text(data, "updatedAt"),
    priority: data.priority === "batch" ? ("batch" as const) : ("interactive" as const),
    ...(data.outputFormat === undefined ? {} : { outputFormat: outputFormat(data.outputFormat) }),
  };
  const error = data.error === undefined ? undefined : failure(data.error);
  switch (status as JobStatus) {
    case "awaiting_upload":
      return { ...common, status: "awaiting_upload" };
    case "queued":
      return { ...common, status: "queued", ...(error ? { lastError: error } : {}) };
    case "running": {
      const progress = tileProgress(data.progress);
      return { ...common, status: "running", ...(progress ? { progress } : {}), ...(error ? { lastError: error } : {}) };
    }
    case "succeeded":
      return {
        ...common,
        status: "succeeded",
        output: output(data.output),
        ...(typeof data.cachedFrom === "string" ? { cachedFrom: data.cachedFrom } : {}),
      };
    case "failed":
      return { ...common, status: "failed", error: error ?? { code: "unknown", message: "The edit failed for a reason the service did not give." } };
    case "canceled":
      return { ...common, status: "canceled" };
  }
  throw new MalformedJobError(`job.status ${status}`);
}

/** Progress is optional and advisory: anything not shaped like it is ignored, never fatal. */
function tileProgress(raw: unknown): TileProgress | undefined {
  if (typeof raw !== "object" || raw === null) return undefined;
  const { tilesDone, tilesTotal } = raw as Record<string, unknown>;
  if (!isCount(tilesDone) || !isCount(tilesTotal) || tilesTotal === 0 || tilesDone > tilesTotal) return undefined;
  return { tilesDone, tilesTotal };
}

function output(raw: unknown): JobOutput {
  const data = record(raw, "job.output");
  return {
    url: text(data, "url", "job.output"),
    width: count(data, "width", "job.output"),
    height: count(data, "height", "job.output"),
    contentType: text(data, "contentType", "job.output"),
    sizeBytes: count(data, "sizeBytes", "job.output"),
  };
}

function outputFormat(raw: unknown): OutputFormat {
  const data = record(raw, "job.outputFormat");
  const format = data.format;
  if (typeof format !== "string" || !(OUTPUT_FORMATS as readonly string[]).includes(format)) {
    throw new MalformedJobError(`job.outputFormat.format is ${JSON.stringify(format)}, not one of ${OUTPUT_FORMATS.join(", ")}`);
  }
  return {
    format: format as OutputFormat["format"],
    ...(data.quality === undefined ? {} : { quality: count(data, "quality", "job.outputFormat") }),
    ...(data.background === undefined ? {} : { background: text(data, "background", "job.outputFormat") }),
  };
}

function failure(raw: unknown): JobFailure {
  const data = record(raw, "job.error");
  return { code: text(data, "code", "job.error"), message: text(data, "message", "job.error") };
}

function record(raw: unknown, name: string): Record<string, unknown> {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new MalformedJobError(`${name} is not an object`);
  return raw as Record<string, unknown>;
}

function text(data: Record<string, unknown>, field: string, parent = "job"): string {
  const value = data[field];
  if (typeof value !== "string") throw new MalformedJobError(`${parent}.${field} is not a string`);
  return value;
}

function count(data: Record<string, unknown>, field: string, parent = "job"): number {
  const value = data[field];
  if (!isCount(value)) throw new MalformedJobError(`${parent}.${field} is not a whole number`);
  return value;
}

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 0;
}
