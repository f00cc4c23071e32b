/**
 * The OpenAPI 3.1 description of the HTTP API, version 1, served at GET /v1/openapi.json.
 * test/int/openApi.int.test.ts drives every route and checks each answer's status and body
 * against this document with a JSON Schema validator, so the two cannot drift apart.
 * Enumerations come from the code's own tables.
 */
import { EVENT_TYPES } from "../events/editEvents.js";
import { JOB_STATUSES } from "../events/jobState.js";
import { OPERATIONS } from "../events/operations.js";
import { PRIORITIES } from "../events/priority.js";
import { WEBHOOK_EVENTS } from "../events/webhookEvents.js";
import { BACKGROUND_PATTERN, DEFAULT_QUALITY, OUTPUT_FORMATS } from "../events/outputFormat.js";
import { ACCEPTED_CONTENT_TYPES } from "./imageType.js";
import { MAX_WAIT_SECONDS, MIN_WAIT_SECONDS } from "./syncWait.js";

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: object) => ({ "application/json": { schema } });
const errorAnswer = (description: string) => ({ description, content: json(ref("Error")) });

const jobId = {
  name: "jobId",
  in: "path",
  required: true,
  schema: { type: "string", pattern: "^[A-Za-z0-9-]{1,64}$" },
};

/**
 * Answers every call that needs a token can give: it is authenticated, then counted against the
 * caller's requests per minute (429 first: a caller past their quota is told so even when the
 * service is busy), then admitted by the instance (503 when it is at its limit of requests in
 * progress, or when a store it needs does not answer).
 */
const authAnswers = {
  "401": errorAnswer("No token, or a token that is expired, not yet valid, or not ours."),
  "429": {
    description:
      "Over the caller's requests per minute (QUOTA_REQUESTS_PER_MINUTE); or more of the caller's requests at once than the instance lets one caller have (MAX_REQUESTS_IN_PROGRESS_PER_USER) after theirs waited their turn; on `POST /v1/edits`, also over the jobs in flight (QUOTA_JOBS_IN_FLIGHT). `Retry-After` says when to try again.",
    headers: { "Retry-After": { description: "Seconds to wait before trying again.", schema: { type: "integer", minimum: 1 } } },
    content: json(ref("Error")),
  },
  "500": errorAnswer("Something failed on the service's side."),
  "503": {
    description:
      "Briefly unable to answer: the instance is at its limit of requests in progress (MAX_REQUESTS_IN_PROGRESS; overload), the job store or storage does not answer in time, or the request bodies being read fill the instance's memory budget. Nothing was done; `Retry-After` says when to try again.",
    headers: { "Retry-After": { description: "Seconds to wait before trying again.", schema: { type: "integer", minimum: 1 } } },
    content: json(ref("Error")),
  },
};

/** A method a path does not list (components.responses.MethodNotAllowed). */
const methodNotAllowed = {
  description: "A method this path does not have; `Allow` lists those it has.",
  headers: { Allow: { description: "The methods this path takes, such as `GET, POST`.", required: true, schema: { type: "string" } } },
  content: json(ref("Error")),
};

export const OPENAPI_DOCUMENT = {
  openapi: "3.1.0",
  info: {
    title: "Image edits API",
    version: "1",
    description: [
      "Create, follow and cancel AI image edits. Every call except this document needs `Authorization: Bearer <Firebase ID token>` (locally: `npm run token -- <userId>`), the model list included.",
      "Bodies: no `Content-Encoding` but `identity` (415); a JSON body at most MAX_JSON_BODY_BYTES (8 KiB by default) and a direct upload at most MAX_DIRECT_UPLOAD_BYTES (413), checked before the body is read; without a valid token no body is read (401). Unknown fields of a JSON body answer 400, naming them.",
      "Errors are `{\"error\":{\"code\",\"message\"}}`. A method that a path does not list answers 405 (`#/components/responses/MethodNotAllowed`) with `Allow` naming the methods it lists, after authentication on the paths that need a token; a path not listed here answers 404 (401 first without a token).",
      "A job's live state is also the Firestore document `jobs/{jobId}` (readable by its owner), with the same fields as `Job`, except that `output.url` is its `gs://` address.",
    ].join("\n\n"),
  },
  servers: [{ url: "http://127.0.0.1:8080", description: "the local stack (`npm start`)" }],
  security: [{ firebaseIdToken: [] }],
  paths: {
    "/v1/openapi.json": {
      get: {
        operationId: "getOpenApiDocument",
        summary: "This document.",
        security: [],
        responses: { "200": { description: "The OpenAPI document.", content: json({ type: "object", required: ["openapi", "paths"] }) } },
      },
    },
    "/v1/models": {
      get: {
        operationId: "listModels",
        summary: "The edits, their parameters, how each is made, and whether it is available yet.",
        responses: {
          "200": {
            description: "The model catalogue.",
            content: json({ type: "object", required: ["models"], additionalProperties: false, properties: { models: { type: "array", items: ref("Model") } } }),
          },
          ...authAnswers,
        },
      },
    },
    "/v1/edits": {
      get: {
        operationId: "listEdits",
        summary: "The caller's edits, newest first (at most 50).",
        responses: {
          "200": {
            description: "The caller's edits.",
            content: json({ type: "object", required: ["edits"], additionalProperties: false, properties: { edits: { type: "array", items: ref("Job") } } }),
          },
          ...authAnswers,
        },
      },
      post: {
        operationId: "createEdit",
        summary: "Requests an edit.",
        description: [
          "Two flows:",
          "- **signed upload** (a JSON body): answers with a signed `PUT` URL; uploading the photo there starts the job.",
          "- **direct** (the query has `operation`; the body is the photo, at most `MAX_DIRECT_UPLOAD_BYTES`): the job is queued at once. Each parameter of the edit is a query parameter `params.<name>`, such as `params.scale=2` or `params.model=perceptual` (upscale with Real-ESRGAN x4plus instead of SRMD); the output format is `output.format`, `output.quality`, `output.background`. A JSON body with `operation` in the query answers 400: JSON goes to the signed flow, without `?operation=`. With `Prefer: wait=N` the answer is 200 with the job if it ends within N seconds.",
          "Photos: JPEG, PNG, WebP or AVIF. HEIC/HEIF answers 415 with what to send instead.",
          "The same `Idempotency-Key` from the same user returns the same job; reusing it for a different request answers 422.",
          "`priority` (`interactive`, the default, or `batch`): interactive jobs are taken ahead of batch jobs, by the workers and by Triton.",
          "`cache` (default true): a request whose photo bytes, operation, params, output and model version match an earlier succeeded job of the same user, while that result lives, succeeds at once from that result, with `cachedFrom` naming the earlier job; `false` always runs the model.",
        ].join("\n"),
        parameters: [
          { name: "Idempotency-Key", in: "header", required: false, schema: { type: "string", pattern: "^[\\x21-\\x7e]{1,255}$" } },
          {
            name: "Prefer",
            in: "header",
            required: false,
            description: `Direct flow only: \`wait=N\` (${MIN_WAIT_SECONDS} to ${MAX_WAIT_SECONDS}) keeps the request open up to N seconds; if the job ends by then the answer is 200 with the job, else 202 as without it. Any other value, or N out of range, is ignored (RFC 7240). The signed flow ignores it: its job cannot end before the upload.`,
            schema: { type: "string", examples: ["wait=30"] },
          },
          { name: "output.format", in: "query", required: false, description: "Direct flow only: the result's format (default png).", schema: { type: "string", enum: [...OUTPUT_FORMATS] } },
          { name: "output.quality", in: "query", required: false, description: `Direct flow only: jpeg and webp quality (default ${DEFAULT_QUALITY}).`, schema: { type: "integer", minimum: 1, maximum: 100 } },
          { name: "output.background", in: "query", required: false, description: "Direct flow only: a colour `#rrggbb` that transparency is flattened onto.", schema: { type: "string", pattern: BACKGROUND_PATTERN.source } },
          {
            name: "operation",
            in: "query",
            required: false,
            description: "Direct flow only: the edit to make.",
            schema: { type: "string", enum: [...OPERATIONS] },
          },
          {
            name: "priority",
            in: "query",
            required: false,
            description: "Direct flow only: `batch` waits while interactive work runs. Default `interactive`.",
            schema: { type: "string", enum: [...PRIORITIES], default: "interactive" },
          },
          {
            name: "cache",
            in: "query",
            required: false,
            description: "Direct flow only: `false` runs the model even when the result cache has this request's result. Default `true`.",
            schema: { type: "string", enum: ["true", "false"], default: "true" },
          },
          {
            name: "webhook.url",
            in: "query",
            required: false,
            description: "Direct flow only: where to POST the job's events, signed (docs/webhooks.md). https to a public address.",
            schema: { type: "string", format: "uri", maxLength: 2048 },
          },
          {
            name: "webhook.events",
            in: "query",
            required: false,
            description: `Direct flow only, with \`webhook.url\`: comma-separated, of ${WEBHOOK_EVENTS.join(", ")}; default succeeded,failed,canceled.`,
            schema: { type: "string" },
          },
        ],
        requestBody: {
          required: true,
          content: {
            "application/json": { schema: ref("CreateEditRequest") },
            ...Object.fromEntries(ACCEPTED_CONTENT_TYPES.map((type) => [type, { schema: { type: "string", contentMediaType: type } }])),
          },
        },
        responses: {
          "200": {
            description: "Direct flow with `Prefer: wait=N`: the job ended within N seconds; the body is the job as `GET /v1/edits/{jobId}` gives it.",
            headers: { "Preference-Applied": { description: "`wait=N`, the wait honoured.", required: true, schema: { type: "string" } } },
            content: json(ref("Job")),
          },
          "202": {
            description: "Accepted. Signed flow: `awaiting_upload` with `upload`. Direct flow, or a replay after the upload: the job's status, without `upload` (with `Prefer: wait=N`, once N seconds passed without an end).",
            content: json(ref("CreatedEdit")),
          },
          "400": errorAnswer("Bad JSON, a JSON body sent with `?operation=`, an unknown or unavailable operation, a bad parameter, priority, cache or output format (JPEG for background removal without `output.background`), an empty body, a bad Idempotency-Key, or a webhook we will not call (`invalid_webhook`: not https, a private address, an unknown event)."),
          ...authAnswers,
          "409": errorAnswer("The job could not be created as asked."),
          "413": errorAnswer("The body is larger than a direct upload may be, or its header declares more pixels than the limits."),
          "415": errorAnswer("The content type is not JPEG, PNG, WebP or AVIF (HEIC/HEIF is refused with what to send instead), or the bytes are not the declared type."),
          "422": errorAnswer("This Idempotency-Key was already used for a different request."),
        },
      },
    },
    "/v1/edits/{jobId}": {
      get: {
        operationId: "getEdit",
        summary: "One edit. Someone else's edit answers 404, exactly like a missing one.",
        parameters: [jobId],
        responses: {
          "200": { description: "The edit; a succeeded one has a signed download URL in `output.url`.", content: json(ref("Job")) },
          "404": errorAnswer("No such edit for this caller."),
          ...authAnswers,
        },
      },
    },
    "/v1/edits/{jobId}/events": {
      get: {
        operationId: "listEditEvents",
        summary: "The edit's history: one event per state change, in order.",
        parameters: [jobId],
        responses: {
          "200": { description: "The events.", content: json({ type: "array", items: ref("Event") }) },
          "404": errorAnswer("No such edit for this caller."),
          ...authAnswers,
        },
      },
    },
    "/v1/edits/{jobId}/webhooks": {
      get: {
        operationId: "listEditWebhooks",
        summary: "The edit's webhook messages, each with every attempt to deliver it.",
        parameters: [jobId],
        responses: {
          "200": {
            description: "The messages, oldest first.",
            content: json({ type: "object", required: ["deliveries"], additionalProperties: false, properties: { deliveries: { type: "array", items: ref("WebhookDelivery") } } }),
          },
          "404": errorAnswer("No such edit for this caller."),
          ...authAnswers,
        },
      },
    },
    "/v1/webhooks/secret": {
      get: {
        operationId: "getWebhookSecret",
        summary: "The caller's webhook signing secret, made on the first read.",
        responses: { "200": { description: "The secret.", content: json(ref("WebhookSecret")) }, ...authAnswers },
      },
      post: {
        operationId: "rotateWebhookSecret",
        summary: "Replaces the caller's webhook secret; every attempt from now on is signed with the new one.",
        responses: { "200": { description: "The new secret.", content: json(ref("WebhookSecret")) }, ...authAnswers },
      },
    },
    "/v1/edits/{jobId}/cancel": {
      post: {
        operationId: "cancelEdit",
        summary: "Cancels an edit that has not ended.",
        parameters: [jobId],
        responses: {
          "202": { description: "Canceled; the edit as it is now.", content: json(ref("Job")) },
          "404": errorAnswer("No such edit for this caller."),
          "409": errorAnswer("The edit has already ended."),
          ...authAnswers,
        },
      },
    },
  },
  components: {
    responses: { MethodNotAllowed: methodNotAllowed },
    securitySchemes: {
      firebaseIdToken: { type: "http", scheme: "bearer", bearerFormat: "JWT", description: "A Firebase Auth ID token." },
    },
    schemas: {
      Error: {
        type: "object",
        required: ["error"],
        additionalProperties: false,
        properties: {
          error: {
            type: "object",
            required: ["code", "message"],
            additionalProperties: false,
            properties: {
              code: { type: "string", description: "Stable, for programs: such as `invalid_param`, `unauthenticated`, `not_found`." },
              message: { type: "string", description: "For people." },
            },
          },
        },
      },
      Status: { type: "string", enum: [...JOB_STATUSES] },
      Params: {
        type: "object",
        description: "The edit's parameters by name, with defaults filled in; see GET /v1/models.",
        additionalProperties: { type: ["number", "string", "boolean"] },
      },
      CreateEditRequest: {
        type: "object",
        required: ["operation", "contentType"],
        additionalProperties: false,
        properties: {
          operation: { type: "string", enum: [...OPERATIONS] },
          params: ref("Params"),
          contentType: { type: "string", enum: [...ACCEPTED_CONTENT_TYPES] },
          output: ref("OutputFormat"),
          priority: { type: "string", enum: [...PRIORITIES], default: "interactive", description: "`batch` waits while interactive work runs." },
          cache: { type: "boolean", default: true, description: "`false` runs the model even when the result cache has this request's result." },
          webhook: ref("Webhook"),
        },
      },
      Webhook: {
        type: "object",
        description: "Where to POST the job's events, signed per Standard Webhooks (docs/webhooks.md).",
        required: ["url", "events"],
        additionalProperties: false,
        properties: {
          url: { type: "string", format: "uri", maxLength: 2048, description: "https to a public address (the local stack also allows http://127.0.0.1)." },
          events: {
            type: "array",
            minItems: 1,
            items: { type: "string", enum: [...WEBHOOK_EVENTS] },
            description: "Default: succeeded, failed, canceled.",
          },
        },
      },
      WebhookSecret: {
        type: "object",
        required: ["secret"],
        additionalProperties: false,
        properties: { secret: { type: "string", pattern: "^whsec_[A-Za-z0-9+/]+=*$", description: "`whsec_` and the base64 key." } },
      },
      WebhookDelivery: {
        type: "object",
        required: ["id", "type", "url", "state", "createdAt", "attempts"],
        additionalProperties: false,
        properties: {
          id: { type: "string", description: "The `webhook-id` header of every attempt." },
          type: { type: "string", enum: WEBHOOK_EVENTS.map((event) => `edit.${event}`) },
          url: { type: "string" },
          state: { type: "string", enum: ["pending", "delivered", "failed"] },
          createdAt: { type: "string", format: "date-time" },
          nextAttemptAt: { type: "string", format: "date-time", description: "While pending: when the next attempt is due." },
          attempts: {
            type: "array",
            items: {
              type: "object",
              required: ["at", "durationMs"],
              additionalProperties: false,
              properties: {
                at: { type: "string", format: "date-time" },
                durationMs: { type: "number", minimum: 0 },
                status: { type: "integer", description: "The receiver's HTTP status, when it answered." },
                error: { type: "string", description: "Why the attempt failed." },
              },
            },
          },
        },
      },
      OutputFormat: {
        type: "object",
        description: `The result's file format (default png). JPEG for remove_background needs \`background\` (400 otherwise: JPEG has no transparency). A WebP result is limited to MAX_WEBP_OUTPUT_PIXELS (the edit fails with \`image_too_large\` otherwise), as libwebp encodes it whole.`,
        required: ["format"],
        additionalProperties: false,
        properties: {
          format: { type: "string", enum: [...OUTPUT_FORMATS] },
          quality: { type: "integer", minimum: 1, maximum: 100, description: `jpeg and webp only (default ${DEFAULT_QUALITY}); 400 with png.` },
          background: { type: "string", pattern: BACKGROUND_PATTERN.source, description: "A colour that transparency is flattened onto; JPEG uses white when none is given." },
        },
      },
      CreatedEdit: {
        type: "object",
        required: ["jobId", "status"],
        additionalProperties: false,
        properties: {
          jobId: { type: "string" },
          status: ref("Status"),
          upload: {
            type: "object",
            required: ["url", "method", "headers", "expiresAt"],
            additionalProperties: false,
            properties: {
              url: { type: "string", format: "uri" },
              method: { const: "PUT" },
              headers: { type: "object", additionalProperties: { type: "string" }, description: "Send exactly these headers with the PUT." },
              expiresAt: { type: "string", format: "date-time" },
            },
          },
        },
      },
      Job: {
        type: "object",
        required: ["jobId", "status", "operation", "params", "ownerId", "version", "attempts", "createdAt", "updatedAt", "priority", "outputFormat"],
        additionalProperties: false,
        properties: {
          jobId: { type: "string" },
          status: ref("Status"),
          operation: { type: "string", enum: [...OPERATIONS] },
          params: ref("Params"),
          ownerId: { type: "string" },
          version: { type: "integer", minimum: 1, description: "The seq of the last event; grows by one per event." },
          attempts: { type: "integer", minimum: 0, description: "How many times a worker has started the edit." },
          createdAt: { type: "string", format: "date-time" },
          updatedAt: { type: "string", format: "date-time" },
          priority: { type: "string", enum: [...PRIORITIES], description: "Which queue the job waits in." },
          cachedFrom: { type: "string", description: "On a job answered from the result cache: the earlier job of the same user whose result this is." },
          output: {
            type: "object",
            description: "Present once the edit has succeeded.",
            required: ["url", "width", "height", "contentType", "sizeBytes"],
            additionalProperties: false,
            properties: {
              url: { type: "string", format: "uri", description: "A signed download URL; it expires." },
              width: { type: "integer", minimum: 1 },
              height: { type: "integer", minimum: 1 },
              contentType: { type: "string" },
              sizeBytes: { type: "integer", minimum: 1 },
            },
          },
          error: {
            type: "object",
            description: "Why it failed; on a queued job, why the last attempt failed.",
            required: ["code", "message"],
            additionalProperties: false,
            properties: { code: { type: "string" }, message: { type: "string" } },
          },
          webhook: ref("Webhook"),
          outputFormat: { ...ref("OutputFormat"), description: "The format asked for; `output.contentType` is what was written." },
          progress: {
            type: "object",
            description: "On a running job: tiles done so far.",
            required: ["tilesDone", "tilesTotal"],
            properties: { tilesDone: { type: "integer", minimum: 0 }, tilesTotal: { type: "integer", minimum: 1 } },
          },
        },
      },
      Event: {
        type: "object",
        required: ["seq", "type", "at", "data"],
        additionalProperties: false,
        properties: {
          seq: { type: "integer", minimum: 1 },
          type: { type: "string", enum: [...EVENT_TYPES] },
          at: { type: "string", format: "date-time" },
          data: { type: "object" },
        },
      },
      Model: {
        type: "object",
        required: ["operation", "title", "description", "method", "model", "available", "params"],
        additionalProperties: false,
        properties: {
          operation: { type: "string", enum: [...OPERATIONS] },
          title: { type: "string" },
          description: { type: "string", description: "One sentence for the person choosing an edit." },
          model: { type: "string", description: "The Triton model that runs the edit." },
          license: { type: "string", description: "The licence of the model's weights, where it is not the project's (AGPL-3.0 for ISNet)." },
          method: { type: "string", enum: ["learned", "classical"], description: "`learned`: a trained network; `classical`: a hand-written filter." },
          available: { type: "boolean" },
          params: {
            type: "object",
            additionalProperties: {
              type: "object",
              required: ["description", "default"],
              properties: {
                kind: { type: "string", description: "`integer` (one of `allowed`), `number` (`min` to `max`) or `choice` (one of the strings in `allowed`)." },
                description: { type: "string" },
                default: { type: ["number", "string", "boolean"] },
                allowed: { type: "array" },
                min: { type: "number" },
                max: { type: "number" },
                choices: {
                  type: "object",
                  description:
                    "For a `choice` parameter that picks a network (upscale's `model`: `psnr`, SRMD, the default; `perceptual`, Real-ESRGAN x4plus, a GAN judged by eye, not PSNR): each value's title, description and licence.",
                  additionalProperties: {
                    type: "object",
                    required: ["title", "description", "license"],
                    properties: { title: { type: "string" }, description: { type: "string" }, license: { type: "string" } },
                  },
                },
              },
            },
          },
        },
      },
    },
  },
};
