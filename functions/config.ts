/**
 * The functions' configuration: every option with its environment variable, its default and its
 * validation. A bad value stops start-up with a message naming the variable. No other file of
 * the functions reads `process.env`.
 */
import { ConfigError, integer, optional, required, type Env } from "../config/envValues.js";
import { parseTelemetryConfig, type TelemetryConfig } from "../observability/telemetryConfig.js";

export interface FunctionsConfig {
  /** GCP_PROJECT: the Google Cloud project. */
  projectId: string;
  /** UPLOADS_BUCKET: where people's photos land; an upload here starts the job. */
  uploadsBucket: string;
  /** RESULTS_BUCKET: where workers write the edited images. */
  resultsBucket: string;
  /** JOBS_TOPIC: the Pub/Sub topic workers pull interactive jobs from. */
  jobsTopic: string;
  /** JOBS_BATCH_TOPIC: the topic of batch jobs, which workers take only while no interactive job waits; absent, batch jobs share JOBS_TOPIC. */
  jobsBatchTopic?: string;
  /** JOB_DEADLINE_SECONDS: the sweeper fails a job not ended this long after it first started, as the worker does (default 300, 5..86400). */
  jobDeadlineSeconds: number;
  auth: {
    /** FIREBASE_PROJECT_ID: the Firebase project whose ID tokens are accepted (default GCP_PROJECT). */
    projectId: string;
    /**
     * FIREBASE_AUTH_EMULATOR_HOST: host:port of the Firebase Auth emulator, whose unsigned tokens
     * are then accepted. Local stack and tests only; never set in a deployed environment.
     */
    emulatorHost?: string;
  };
  /** SIGNED_URL_TTL_SECONDS: how long an upload URL stays valid (default 600, 60..3600). */
  signedUrlTtlSeconds: number;
  /** RESULT_URL_TTL_SECONDS: how long an output URL stays valid (default 900, 60..86400). */
  resultUrlTtlSeconds: number;
  /** MAX_DIRECT_UPLOAD_BYTES: the largest body of a direct upload (default 10 MiB). */
  maxDirectUploadBytes: number;
  /** MAX_UPLOAD_BYTES: the largest signed upload (default 50 MiB). */
  maxUploadBytes: number;
  /** MAX_JSON_BODY_BYTES: the largest body of any API request but a direct upload (default 8 KiB, 256..1 MiB). */
  maxJsonBodyBytes: number;
  /**
   * BODY_MEMORY_BUDGET_BYTES: the most body bytes one instance holds for all requests being read
   * at once (default 128 MiB, of a 512 MiB instance); past it a request is answered 503, unread.
   */
  bodyMemoryBudgetBytes: number;
  /** REQUEST_TIMEOUT_SECONDS: the longest a request may take to arrive, headers and body (default 120, 5..600). */
  requestTimeoutSeconds: number;
  /** HEADERS_TIMEOUT_SECONDS: the longest a request's headers may take to arrive (default 10, 1..60). */
  headersTimeoutSeconds: number;
  /** QUOTA_REQUESTS_PER_MINUTE: API requests one user may make per minute (default 120, 1..100000). */
  quotaRequestsPerMinute: number;
  /** QUOTA_JOBS_IN_FLIGHT: edits one user may have not yet ended (default 20, 1..10000). */
  quotaJobsInFlight: number;
  /**
   * MAX_REQUESTS_IN_PROGRESS: requests one instance works on at once past authentication and the
   * quota's local check (default 40, the deployed concurrency per instance; 1..1000); past it a
   * request is answered 503 with `Retry-After` at once, instead of queueing.
   */
  maxRequestsInProgress: number;
  /**
   * MAX_REQUESTS_IN_PROGRESS_PER_USER: of those, how many one user may have at once (default 4,
   * 1..1000); past it the user's request waits its turn (functions/admission.ts), and is answered
   * 429 with `Retry-After` when that does not come in time. A user's
   * creates all change their one in-flight count document, optimistically: with 8 at once, on a
   * busy machine, some took over 5 s of retries (docs/reliability.md, the soak).
   */
  maxRequestsInProgressPerUser: number;
  /** STORE_DEADLINE_MS: the longest one Firestore call may take before the API answers 503 (default 10000, 500..120000). */
  storeDeadlineMs: number;
  /** STORAGE_TIMEOUT_MS: the longest one Cloud Storage request may take, each of its retries included (default 30000, 1000..600000). */
  storageTimeoutMs: number;
  /** MAX_ATTEMPTS: attempts before the sweeper fails a job whose worker died (default 5, as the worker's). */
  maxAttempts: number;
  /** MAX_INPUT_PIXELS: the most pixels a direct upload's header may declare, as the workers' limit (default 40 megapixels). */
  maxInputPixels: number;
  /** MAX_OUTPUT_PIXELS: the most pixels an output may have, as the workers' limit (default 160 megapixels). */
  maxOutputPixels: number;
  /** QUEUED_REPUBLISH_SECONDS: after this long queued with nothing happening, the sweeper publishes a job again (default 600, 10..86400). */
  queuedRepublishSeconds: number;
  /** WEBHOOK_TIMEOUT_SECONDS: how long one webhook attempt may take before it counts as failed (default 10, 1..30). */
  webhookTimeoutSeconds: number;
  /** WEBHOOK_RETRY_BASE_SECONDS: the wait after a webhook's first failed attempt, doubled after each further one (default 5, 1..3600). */
  webhookRetryBaseSeconds: number;
  /** WEBHOOK_RETRY_MAX_SECONDS: the longest wait between two attempts (default 3600, 1..86400). */
  webhookRetryMaxSeconds: number;
  /** WEBHOOK_RETRY_WINDOW_SECONDS: how long after its event a webhook is still retried (default 86400, 24 h; 1..604800). */
  webhookRetryWindowSeconds: number;
  /**
   * WEBHOOK_ALLOW_LOOPBACK_HTTP: `true` lets webhooks go to http and to loopback addresses
   * (127.0.0.0/8, ::1), for the local stack only; never set in a deployment (infra refuses it).
   * Default false: https to public addresses only.
   */
  webhookAllowLoopbackHttp: boolean;
  /** CORS_ORIGINS: comma-separated origins the web app is served from; `*` for any; none by default. */
  corsOrigins: string[];
  /** STORAGE_API_ENDPOINT: the Storage API base URL, set only for an emulator (local stack). Not STORAGE_EMULATOR_HOST, which the client library reads by itself and combines badly with an explicit endpoint. */
  storageApiEndpoint?: string;
  /** STORAGE_SIGNER_KEY_FILE: a service-account key JSON used to sign URLs (local stack only). */
  storageSignerKeyFile?: string;
  /**
   * Traces and metrics (TRACES_EXPORTER, METRICS_EXPORTER, METRICS_PORT, OTLP_ENDPOINT, ...; see
   * observability/telemetryConfig.ts). Metrics default to none: nothing can scrape a Cloud
   * Function, so production pushes them with METRICS_EXPORTER=otlp.
   */
  telemetry: TelemetryConfig;
}


export function parseConfig(env: Env): FunctionsConfig {
  const projectId = required(env, "GCP_PROJECT");
  const firebaseProject = env.FIREBASE_PROJECT_ID || projectId;
  const authEmulatorHost = optional(env, "FIREBASE_AUTH_EMULATOR_HOST");
  if (authEmulatorHost !== undefined && !/^[A-Za-z0-9.-]+:\d{1,5}$/.test(authEmulatorHost)) {
    throw new ConfigError(`FIREBASE_AUTH_EMULATOR_HOST must be host:port such as 127.0.0.1:9099, not "${authEmulatorHost}"`);
  }
  const storageSignerKeyFile = optional(env, "STORAGE_SIGNER_KEY_FILE");
  const storageApiEndpoint = optional(env, "STORAGE_API_ENDPOINT");
  const jobsBatchTopic = optional(env, "JOBS_BATCH_TOPIC");
  if (storageApiEndpoint !== undefined && !/^https?:\/\//.test(storageApiEndpoint)) {
    throw new ConfigError(`STORAGE_API_ENDPOINT must be a URL such as http://127.0.0.1:4443, not "${storageApiEndpoint}"`);
  }
  const maxDirectUploadBytes = integer(env, "MAX_DIRECT_UPLOAD_BYTES", 10 * 1024 * 1024, 1024, 32 * 1024 * 1024);
  const bodyMemoryBudgetBytes = integer(env, "BODY_MEMORY_BUDGET_BYTES", 128 * 1024 * 1024, 1024 * 1024, 4 * 1024 * 1024 * 1024);
  if (bodyMemoryBudgetBytes < maxDirectUploadBytes) {
    throw new ConfigError(`BODY_MEMORY_BUDGET_BYTES (${bodyMemoryBudgetBytes}) must be at least MAX_DIRECT_UPLOAD_BYTES (${maxDirectUploadBytes})`);
  }
  const allowLoopback = optional(env, "WEBHOOK_ALLOW_LOOPBACK_HTTP") ?? "false";
  if (allowLoopback !== "true" && allowLoopback !== "false") {
    throw new ConfigError(`WEBHOOK_ALLOW_LOOPBACK_HTTP must be true or false, not "${allowLoopback}"`);
  }
  return {
    projectId,
    uploadsBucket: required(env, "UPLOADS_BUCKET"),
    resultsBucket: required(env, "RESULTS_BUCKET"),
    jobsTopic: required(env, "JOBS_TOPIC"),
    ...(jobsBatchTopic === undefined ? {} : { jobsBatchTopic }),
    jobDeadlineSeconds: integer(env, "JOB_DEADLINE_SECONDS", 300, 5, 86_400),
    auth: {
      projectId: firebaseProject,
      ...(authEmulatorHost === undefined ? {} : { emulatorHost: authEmulatorHost }),
    },
    signedUrlTtlSeconds: integer(env, "SIGNED_URL_TTL_SECONDS", 600, 60, 3600),
    resultUrlTtlSeconds: integer(env, "RESULT_URL_TTL_SECONDS", 900, 60, 86_400),
    maxDirectUploadBytes,
    maxUploadBytes: integer(env, "MAX_UPLOAD_BYTES", 50 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
    maxJsonBodyBytes: integer(env, "MAX_JSON_BODY_BYTES", 8 * 1024, 256, 1024 * 1024),
    bodyMemoryBudgetBytes,
    requestTimeoutSeconds: integer(env, "REQUEST_TIMEOUT_SECONDS", 120, 5, 600),
    headersTimeoutSeconds: integer(env, "HEADERS_TIMEOUT_SECONDS", 10, 1, 60),
    quotaRequestsPerMinute: integer(env, "QUOTA_REQUESTS_PER_MINUTE", 120, 1, 100_000),
    quotaJobsInFlight: integer(env, "QUOTA_JOBS_IN_FLIGHT", 20, 1, 10_000),
    maxRequestsInProgress: integer(env, "MAX_REQUESTS_IN_PROGRESS", 40, 1, 1000),
    maxRequestsInProgressPerUser: integer(env, "MAX_REQUESTS_IN_PROGRESS_PER_USER", 4, 1, 1000),
    storeDeadlineMs: integer(env, "STORE_DEADLINE_MS", 10_000, 500, 120_000),
    storageTimeoutMs: integer(env, "STORAGE_TIMEOUT_MS", 30_000, 1_000, 600_000),
    maxAttempts: integer(env, "MAX_ATTEMPTS", 5, 1, 100),
    maxInputPixels: integer(env, "MAX_INPUT_PIXELS", 40_000_000, 1, 1_000_000_000),
    maxOutputPixels: integer(env, "MAX_OUTPUT_PIXELS", 160_000_000, 1, 4_000_000_000),
    queuedRepublishSeconds: integer(env, "QUEUED_REPUBLISH_SECONDS", 600, 10, 86_400),
    webhookTimeoutSeconds: integer(env, "WEBHOOK_TIMEOUT_SECONDS", 10, 1, 30),
    webhookRetryBaseSeconds: integer(env, "WEBHOOK_RETRY_BASE_SECONDS", 5, 1, 3600),
    webhookRetryMaxSeconds: integer(env, "WEBHOOK_RETRY_MAX_SECONDS", 3600, 1, 86_400),
    webhookRetryWindowSeconds: integer(env, "WEBHOOK_RETRY_WINDOW_SECONDS", 86_400, 1, 604_800),
    webhookAllowLoopbackHttp: allowLoopback === "true",
    telemetry: parseTelemetryConfig(env, { serviceName: "image-edit-functions", metricsExporter: "none" }),
    corsOrigins: (env.CORS_ORIGINS ?? "").split(",").map((origin) => origin.trim()).filter(Boolean),
    ...(storageApiEndpoint === undefined ? {} : { storageApiEndpoint }),
    ...(storageSignerKeyFile === undefined ? {} : { storageSignerKeyFile }),
  };
}
