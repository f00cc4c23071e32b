/**
 * The API's handlers: creating an edit by either flow (validation and idempotency included),
 * reading, listing and cancelling edits, and the model list.
 */
import { createHash } from "node:crypto";
import { handleCommand } from "../events/handleCommand.js";
import type { EditCommand } from "../events/decide.js";
import { awaitsFirstStart, isTerminal, type JobState } from "../events/jobState.js";
import { OPERATION_SPECS, OPERATIONS, checkParams, isOperation, type EditParams, type Operation } from "../events/operations.js";
import { checkOutputFormat, type OutputFormat } from "../events/outputFormat.js";
import type { Clock } from "../events/clock.js";
import type { EventStore } from "../events/eventStore.js";
import type { ImageStore } from "../events/imageStore.js";
import type { JobQueue } from "../events/jobQueue.js";
import type { Logger } from "../events/logger.js";
import { DEFAULT_WEBHOOK_EVENTS, WEBHOOK_EVENTS, isWebhookEvent, type WebhookEvent, type WebhookSubscription } from "../events/webhookEvents.js";
import type { WebhookOutbox } from "../events/webhookOutbox.js";
import type { WebhookSecrets } from "../events/webhookSecrets.js";
import { ApiError } from "./apiError.js";
import type { FunctionsConfig } from "./config.js";
import type { ApiRequest, ApiResponse, EditRoutes } from "./editRouter.js";
import { isAnimatedPng, isHeif, sniffImageType, ACCEPTED_CONTENT_TYPES, HEIC_REFUSAL, HEIF_CONTENT_TYPES } from "./imageType.js";
import { toEventViews, toJobView } from "./jobView.js";
import { OPENAPI_DOCUMENT } from "./openApiDocument.js";
import type { Quota } from "./quota.js";
import { DEFAULT_PRIORITY, isPriority, PRIORITIES, type Priority } from "../events/priority.js";
import { requestDigest } from "../events/resultCache.js";
import { preferredWaitSeconds, waitForEnd, type SyncWaitOptions } from "./syncWait.js";
import { uploadObjectName } from "./uploadObject.js";

export interface EditHandlerDeps {
  store: EventStore;
  images: ImageStore;
  queue: JobQueue;
  clock: Clock;
  newJobId: () => string;
  /** Per-user limits; absent, no limits apply. */
  quota?: Quota;
  /** Refuses a direct upload whose header declares too many pixels, in or (at `outputScale`) out; absent, the worker decides. */
  checkDimensions?: (bytes: Buffer, outputScale: number) => Promise<void>;
  /** How `Prefer: wait=N` polls the job (syncWait.ts); absent, its defaults. */
  syncWait?: SyncWaitOptions;
  config: Pick<
    FunctionsConfig,
    "uploadsBucket" | "signedUrlTtlSeconds" | "resultUrlTtlSeconds" | "maxDirectUploadBytes" | "maxUploadBytes"
  >;
  log?: Logger;
  /** Webhooks; absent, a request that asks for one is refused and the secret routes answer 404. */
  webhooks?: WebhookHandlerDeps;
}

export interface WebhookHandlerDeps {
  /** The SSRF guard at request time: resolves, and throws a `WebhookUrlError` with a sentence for a URL we will not call. */
  checkUrl(url: string): Promise<unknown>;
  secrets: WebhookSecrets;
  outbox: WebhookOutbox;
  /** A new `whsec_` secret. */
  newSecret: () => string;
}

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;
/** The fields of a signed-upload request's JSON body. */
const SIGNED_BODY_FIELDS: readonly string[] = ["operation", "params", "contentType", "priority", "cache", "webhook", "output"];
/** The direct flow's query parameters besides `params.…`, `output.…` and `webhook.…`. */
const DIRECT_QUERY_FIELDS: readonly string[] = ["operation", "priority", "cache"];
/** The direct flow's output parameters. */
const DIRECT_OUTPUT_FIELDS: readonly string[] = ["output.format", "output.quality", "output.background"];

export function createEditHandlers(deps: EditHandlerDeps): EditRoutes {
  const log = deps.log ?? (() => {});
  const view = (job: JobState) => toJobView(job, deps);

  async function ownedJob(jobId: string, userId: string): Promise<JobState> {
    const job = await deps.store.getProjection(jobId);
    // Someone else's job is answered exactly like a missing one.
    if (!job || job.ownerId !== userId) throw new ApiError("not_found", `no edit ${jobId}`);
    return job;
  }

  /** Creates the job, or finds the one an earlier request with the same key created. */
  async function requestEdit(
    userId: string,
    request: ApiRequest,
    edit: { operation: Operation; params: EditParams; output: OutputFormat; contentType: string; flow: "signed_upload" | "direct"; webhook?: WebhookSubscription } & RequestOptions,
  ): Promise<{ job: JobState; replayed: boolean }> {
    const key = request.headers["idempotency-key"];
    if (key !== undefined && !IDEMPOTENCY_KEY.test(key)) {
      throw new ApiError("invalid_idempotency_key", "Idempotency-Key must be 1 to 255 printable ASCII characters without spaces");
    }
    // Non-default options join the fingerprint; a request without them digests as it always did.
    const options = [...(edit.priority === DEFAULT_PRIORITY ? [] : [`priority=${edit.priority}`]), ...(edit.cache ? [] : ["cache=false"])];
    const fingerprint = digest(JSON.stringify([edit.flow, edit.operation, edit.params, edit.contentType, edit.output, ...options, ...(edit.webhook ? [edit.webhook] : [])]));
    // The same key from the same user names the same job, so a replay lands on it by itself.
    const jobId = key === undefined ? deps.newJobId() : idempotentJobId(userId, key);
    const command: Extract<EditCommand, { type: "RequestEdit" }> = {
      type: "RequestEdit",
      jobId,
      ownerId: userId,
      operation: edit.operation,
      params: edit.params,
      flow: edit.flow,
      output: edit.output,
      input: { bucket: deps.config.uploadsBucket, object: uploadObjectName(jobId), contentType: edit.contentType },
      ...(key === undefined ? {} : { idempotencyKey: key, requestFingerprint: fingerprint }),
      priority: edit.priority,
      ...(edit.webhook === undefined ? {} : { webhook: edit.webhook }),
    };
    // The digest covers every semantic field of the command, whatever fields it gains later.
    if (edit.cache) command.cacheDigest = requestDigest(command);
    const outcome = await handleCommand(deps, jobId, command, deps.quota === undefined ? {} : { maxInFlight: deps.quota.jobsInFlight });
    if (!outcome.rejection) return { job: outcome.state as JobState, replayed: false };
    const existing = outcome.state;
    if (outcome.rejection.code !== "already_exists" || !existing || existing.ownerId !== userId) {
      throw new ApiError("conflict", outcome.rejection.message);
    }
    if (existing.requestFingerprint !== fingerprint) {
      throw new ApiError("idempotency_key_reused", "this Idempotency-Key was already used for a different request");
    }
    return { job: existing, replayed: true };
  }

  async function createSigned(userId: string, request: ApiRequest): Promise<ApiResponse> {
    const body = parseJson(request.rawBody);
    const unknown = Object.keys(body).filter((name) => !SIGNED_BODY_FIELDS.includes(name));
    if (unknown.length > 0) {
      throw new ApiError("invalid_param", `unknown field${unknown.length > 1 ? "s" : ""} ${unknown.map((name) => JSON.stringify(name)).join(", ")}; the body takes ${SIGNED_BODY_FIELDS.join(", ")}`);
    }
    const operation = parseOperation(body.operation);
    const params = parseParams(operation, body.params ?? {});
    const output = parseOutput(operation, body.output);
    const contentType = body.contentType;
    if (typeof contentType === "string" && HEIF_CONTENT_TYPES.includes(contentType.toLowerCase())) throw new ApiError("unsupported_media_type", HEIC_REFUSAL);
    if (typeof contentType !== "string" || !ACCEPTED_CONTENT_TYPES.includes(contentType)) {
      throw new ApiError("unsupported_media_type", `contentType must be one of ${ACCEPTED_CONTENT_TYPES.join(", ")}`);
    }
    const options = parseRequestOptions(body.priority, body.cache, "JSON");
    const webhook = body.webhook === undefined ? undefined : await parseWebhook(body.webhook);
    const { job, replayed } = await requestEdit(userId, request, { operation, params, output, contentType, flow: "signed_upload", ...options, ...(webhook ? { webhook } : {}) });
    const response: Record<string, unknown> = { jobId: job.jobId, status: job.status };
    if (job.status === "awaiting_upload") {
      const expiresAt = new Date(deps.clock.now().getTime() + deps.config.signedUrlTtlSeconds * 1000);
      const upload = await deps.images.createUploadUrl(job.input, { contentType, maxBytes: deps.config.maxUploadBytes, expiresAt });
      response.upload = { url: upload.url, method: "PUT", headers: upload.headers, expiresAt: expiresAt.toISOString() };
    }
    log({ message: replayed ? "edit request replayed" : "edit requested", jobId: job.jobId, operation, flow: "signed_upload" });
    return { status: 202, body: response };
  }

  async function createDirect(userId: string, request: ApiRequest): Promise<ApiResponse> {
    const operation = parseOperation(request.query.operation);
    // No prototype: a parameter named __proto__ must be a key like any other, and be refused.
    const rawParams: Record<string, string> = Object.create(null) as Record<string, string>;
    const rawOutput: Record<string, string> = Object.create(null) as Record<string, string>;
    for (const [name, value] of Object.entries(request.query)) {
      if (name.startsWith("params.") && value !== undefined) rawParams[name.slice("params.".length)] = value;
      else if (DIRECT_OUTPUT_FIELDS.includes(name) && value !== undefined) rawOutput[name.slice("output.".length)] = value;
      else if (!DIRECT_QUERY_FIELDS.includes(name) && !WEBHOOK_QUERY.includes(name)) throw new ApiError("invalid_param", `unknown query parameter "${name}"`);
    }
    const params = parseParams(operation, rawParams);
    const output = parseOutput(operation, Object.keys(rawOutput).length === 0 ? undefined : rawOutput);
    const declared = (request.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
    if (declared === "application/json") {
      throw new ApiError(
        "bad_request",
        "a JSON body goes without ?operation=: POST {\"operation\":…,\"contentType\":…} alone for a signed upload, or send the image's bytes with ?operation=…",
      );
    }
    const options = parseRequestOptions(request.query.priority, request.query.cache, "query");
    const webhookUrl = request.query["webhook.url"];
    const webhookEvents = request.query["webhook.events"];
    if (webhookUrl === undefined && webhookEvents !== undefined) throw new ApiError("invalid_webhook", "webhook.events needs webhook.url");
    const webhook =
      webhookUrl === undefined
        ? undefined
        : await parseWebhook({ url: webhookUrl, ...(webhookEvents === undefined ? {} : { events: webhookEvents.split(",").map((name) => name.trim()) }) });
    const bytes = request.rawBody ?? Buffer.alloc(0);
    if (bytes.length > deps.config.maxDirectUploadBytes) {
      throw new ApiError("payload_too_large", `a direct upload may be at most ${deps.config.maxDirectUploadBytes} bytes; use a signed upload`);
    }
    if (bytes.length === 0) throw new ApiError("bad_request", "the body is empty; send the image's bytes");
    if (HEIF_CONTENT_TYPES.includes(declared) || isHeif(bytes)) throw new ApiError("unsupported_media_type", HEIC_REFUSAL);
    if (!ACCEPTED_CONTENT_TYPES.includes(declared)) {
      throw new ApiError("unsupported_media_type", `Content-Type must be one of ${ACCEPTED_CONTENT_TYPES.join(", ")}`);
    }
    const actual = sniffImageType(bytes);
    if (actual !== declared) {
      throw new ApiError("unsupported_media_type", `the body is ${actual ?? "not an image we accept"}, but Content-Type says ${declared}`);
    }
    if (actual === "image/png" && isAnimatedPng(bytes)) {
      throw new ApiError("unsupported_media_type", "the body is an animated PNG (APNG); send a single still image");
    }
    await deps.checkDimensions?.(bytes, OPERATION_SPECS[operation].outputScale(params));
    const requested = await requestEdit(userId, request, { operation, params, output, contentType: declared, flow: "direct", ...options, ...(webhook ? { webhook } : {}) });
    let job = requested.job;
    if (job.status === "awaiting_upload") {
      await deps.images.write(job.input, bytes, declared);
      const uploaded = await handleCommand(deps, job.jobId, {
        type: "RecordUpload",
        bucket: job.input.bucket,
        object: job.input.object,
        contentType: declared,
        sizeBytes: bytes.length,
      });
      job = uploaded.state ?? job;
      // Whoever recorded the upload publishes: this call, or the upload trigger if it got there first.
      if (uploaded.appended.length > 0) await deps.queue.publish({ jobId: job.jobId, operation, priority: job.priority });
    } else if (requested.replayed && awaitsFirstStart(job)) {
      // A retry of a request that may have failed between recording the upload and publishing.
      await deps.queue.publish({ jobId: job.jobId, operation, priority: job.priority });
    }
    log({ message: requested.replayed ? "edit request replayed" : "edit requested", jobId: job.jobId, operation, flow: "direct" });
    const waitSeconds = preferredWaitSeconds(request.headers.prefer);
    if (waitSeconds !== undefined) {
      const ended = isTerminal(job.status) ? job : await waitForEnd(deps, job.jobId, waitSeconds, deps.syncWait);
      if (ended) return { status: 200, headers: { "Preference-Applied": `wait=${waitSeconds}` }, body: await view(ended) };
      job = (await deps.store.getProjection(job.jobId)) ?? job;
    }
    return { status: 202, body: { jobId: job.jobId, status: job.status } };
  }

  /** The `webhook` field, checked in form and by the SSRF guard. */
  async function parseWebhook(raw: unknown): Promise<WebhookSubscription> {
    const webhooks = deps.webhooks;
    if (!webhooks) throw new ApiError("invalid_webhook", "this server sends no webhooks");
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
      throw new ApiError("invalid_webhook", "webhook must be an object such as {\"url\":\"https://example.com/hooks\",\"events\":[\"succeeded\"]}");
    }
    const fields = raw as Record<string, unknown>;
    const unknown = Object.keys(fields).filter((name) => name !== "url" && name !== "events");
    if (unknown.length > 0) throw new ApiError("invalid_webhook", `unknown webhook field ${JSON.stringify(unknown[0])}; webhook takes url and events`);
    if (typeof fields.url !== "string" || fields.url === "") throw new ApiError("invalid_webhook", "webhook.url must be a URL");
    let events: WebhookEvent[] = [...DEFAULT_WEBHOOK_EVENTS];
    if (fields.events !== undefined) {
      if (!Array.isArray(fields.events) || fields.events.length === 0) {
        throw new ApiError("invalid_webhook", `webhook.events must be a non-empty list of ${WEBHOOK_EVENTS.join(", ")}`);
      }
      const wrong = fields.events.find((name) => !isWebhookEvent(name));
      if (wrong !== undefined) throw new ApiError("invalid_webhook", `webhook.events: ${JSON.stringify(wrong)} is not one of ${WEBHOOK_EVENTS.join(", ")}`);
      events = WEBHOOK_EVENTS.filter((name) => (fields.events as unknown[]).includes(name));
    }
    try {
      await webhooks.checkUrl(fields.url);
    } catch (error) {
      if (error instanceof Error && error.name === "WebhookUrlError") throw new ApiError("invalid_webhook", error.message);
      throw error;
    }
    return { url: fields.url, events };
  }

  function requireWebhooks(): WebhookHandlerDeps {
    if (!deps.webhooks) throw new ApiError("not_found", "this server sends no webhooks");
    return deps.webhooks;
  }

  return {
    async getWebhookSecret(userId) {
      const webhooks = requireWebhooks();
      return { status: 200, body: { secret: await webhooks.secrets.get(userId, webhooks.newSecret()) } };
    },
    async rotateWebhookSecret(userId) {
      const webhooks = requireWebhooks();
      const secret = webhooks.newSecret();
      await webhooks.secrets.rotate(userId, secret);
      log({ message: "webhook secret rotated", userId });
      return { status: 200, body: { secret } };
    },
    async listWebhookDeliveries(userId, jobId) {
      await ownedJob(jobId, userId);
      const deliveries = deps.webhooks ? await deps.webhooks.outbox.listByJob(jobId) : [];
      return {
        status: 200,
        body: {
          deliveries: deliveries.map(({ id, type, url, state, createdAt, nextAttemptAt, attempts }) => ({
            id,
            type,
            url,
            state,
            createdAt,
            ...(state === "pending" && nextAttemptAt !== undefined ? { nextAttemptAt } : {}),
            attempts,
          })),
        },
      };
    },
    openApiDocument: () => ({ status: 200, body: OPENAPI_DOCUMENT }),
    listModels: () => ({ status: 200, body: { models: listModels() } }),
    async listEdits(userId) {
      const jobs = await deps.store.listByOwner(userId, 50);
      return { status: 200, body: { edits: await Promise.all(jobs.map(view)) } };
    },
    createSigned,
    createDirect,
    async getEdit(userId, jobId) {
      return { status: 200, body: await view(await ownedJob(jobId, userId)) };
    },
    async listEvents(userId, jobId) {
      await ownedJob(jobId, userId);
      return { status: 200, body: toEventViews(await deps.store.load(jobId)) };
    },
    async cancelEdit(userId, jobId) {
      const job = await ownedJob(jobId, userId);
      if (isTerminal(job.status)) throw new ApiError("conflict", `the edit has already ${job.status}`);
      const outcome = await handleCommand(deps, jobId, { type: "CancelEdit", by: userId });
      if (outcome.rejection) throw new ApiError("conflict", outcome.rejection.message);
      log({ message: "edit canceled", jobId });
      return { status: 202, body: await view(outcome.state as JobState) };
    },
  };
}

/** The direct flow's webhook parameters. */
const WEBHOOK_QUERY: readonly string[] = ["webhook.url", "webhook.events"];

function parseJson(raw: Buffer | undefined): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse((raw ?? Buffer.alloc(0)).toString("utf8"));
    if (typeof value === "object" && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // Answered below.
  }
  throw new ApiError("invalid_json", "the body must be a JSON object such as {\"operation\":\"upscale\",\"contentType\":\"image/jpeg\"}");
}

/** How a request wants to be run: its queue, and whether an earlier identical result may answer it. */
interface RequestOptions {
  priority: Priority;
  cache: boolean;
}

/** `priority` and `cache` from a JSON body (a string and a boolean) or a query (both strings). */
function parseRequestOptions(priority: unknown, cache: unknown, from: "JSON" | "query"): RequestOptions {
  if (priority !== undefined && !isPriority(priority)) {
    throw new ApiError("invalid_param", `priority must be one of ${PRIORITIES.join(", ")}`);
  }
  const flags = from === "JSON" ? [true, false] : ["true", "false"];
  if (cache !== undefined && !flags.includes(cache as never)) {
    throw new ApiError("invalid_param", from === "JSON" ? "cache must be true or false" : "cache must be true or false, as in cache=false");
  }
  return { priority: priority ?? DEFAULT_PRIORITY, cache: cache === undefined || cache === true || cache === "true" };
}

function parseOperation(value: unknown): Operation {
  if (!isOperation(value)) {
    throw new ApiError("unknown_operation", `operation must be one of ${OPERATIONS.join(", ")}`);
  }
  if (!OPERATION_SPECS[value].available) {
    throw new ApiError("operation_unavailable", `${value} is not available yet`);
  }
  return value;
}

function parseParams(operation: Operation, raw: unknown): EditParams {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new ApiError("invalid_param", "params must be an object");
  }
  const checked = checkParams(operation, raw as Record<string, unknown>);
  if (!checked.ok) throw new ApiError("invalid_param", `params.${checked.param}: ${checked.message}`);
  return checked.params;
}

function parseOutput(operation: Operation, raw: unknown): OutputFormat {
  const checked = checkOutputFormat(operation, raw);
  if (!checked.ok) throw new ApiError("invalid_param", `${checked.field}: ${checked.message}`);
  return checked.output;
}

function listModels() {
  return OPERATIONS.map((operation) => {
    const spec = OPERATION_SPECS[operation];
    return {
      operation,
      title: spec.title,
      description: spec.description,
      method: spec.method,
      model: spec.model,
      ...(spec.license === undefined ? {} : { license: spec.license }),
      available: spec.available,
      params: spec.params,
    };
  });
}

function digest(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** A job id fixed by the user and their key: a UUID-shaped slice of a SHA-256. */
export function idempotentJobId(userId: string, key: string): string {
  const hex = digest(`${userId}\n${key}`);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}
