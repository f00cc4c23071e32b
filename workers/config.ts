/**
 * The worker's configuration: every option with its environment variable, default and
 * validation. A bad value stops start-up with a message naming the variable. No other file of
 * the worker reads `process.env`.
 */
import { ConfigError, integer, optional, required } from "../config/envValues.js";
import { parseTelemetryConfig, type TelemetryConfig } from "../observability/telemetryConfig.js";

export interface WorkerConfig {
  /** GCP_PROJECT: the Google Cloud project. */
  projectId: string;
  /** JOBS_SUBSCRIPTION: the Pub/Sub subscription the worker pulls interactive jobs from. */
  jobsSubscription: string;
  /**
   * JOBS_BATCH_SUBSCRIPTION: the subscription of batch jobs, drained only while no interactive
   * job waits (workers/prioritySubscription.ts); absent, the worker pulls one subscription only.
   */
  jobsBatchSubscription?: string;
  /** WORKER_BATCH_MAX_MESSAGES: of WORKER_MAX_MESSAGES, the most batch jobs run at once (default all but one, at least 1). */
  batchMaxMessages: number;
  /** JOB_DEADLINE_SECONDS: a job not ended this long after it first started fails with `deadline_exceeded` (default 300, 5..86400). */
  jobDeadlineSeconds: number;
  /** RESULTS_LIFECYCLE_DAYS: how long the results bucket keeps a result, as its lifecycle rule; the result cache reuses none older (default 7). */
  resultsLifecycleDays: number;
  /** RESULTS_BUCKET: where edited images are written. */
  resultsBucket: string;
  /** TRITON_GRPC_URL: host:port of Triton's gRPC endpoint. */
  tritonUrl: string;
  /** TRITON_TIMEOUT_MS: deadline of one inference call (default 60000). */
  tritonTimeoutMs: number;
  /** TRITON_MAX_IN_FLIGHT: tile requests one job keeps open at once (default 8). */
  tritonMaxInFlight: number;
  /** WORKER_MAX_MESSAGES: jobs one worker runs at once, Pub/Sub flow control (default 2). */
  maxMessages: number;
  /** WORKER_ID: this worker's name in events and leases (default: host name and PID). */
  workerId: string;
  /** JOB_LEASE_SECONDS: how long a started job counts as held without a heartbeat (default 60). */
  leaseSeconds: number;
  /** JOB_HEARTBEAT_SECONDS: how often a running job's lease is renewed; under half the lease (default 15). */
  heartbeatSeconds: number;
  /** CANCEL_CHECK_MS: how often a running edit looks for its cancellation (default 500). */
  cancelCheckMs: number;
  /** TRITON_READY_POLL_MS: how often Triton's readiness is checked; no job starts while it is not ready (default 1000). */
  tritonReadyPollMs: number;
  /** MAX_EDIT_SECONDS: how long the Pub/Sub client keeps extending a job message's ack deadline while its edit runs (default 3600). */
  maxEditSeconds: number;
  /** STORE_DEADLINE_MS: the longest one Firestore call may take before it counts as a passing failure (default 10000). */
  storeDeadlineMs: number;
  /** STORAGE_TIMEOUT_MS: the longest one Cloud Storage request may take, each of its retries included (default 30000, 1000..600000). */
  storageTimeoutMs: number;
  /**
   * ACK_DEADLINE_MAX_SECONDS: the longest ack deadline the Pub/Sub client asks for at a time (10 to
   * 600, default 600). The client sets each deadline from how long its messages took to ack, up to
   * this; the messages a dead worker held come back after at most this long.
   */
  ackDeadlineMaxSeconds: number;
  /**
   * PULL_CHECK_SECONDS: after this long with no job delivered, the worker checks that its Pub/Sub
   * connection still answers, and pulls on a new one if not (2 to 3600, default 60).
   */
  pullCheckSeconds: number;
  /** MAX_ATTEMPTS: attempts before a retryable failure becomes final (default 5). */
  maxAttempts: number;
  /** MAX_INPUT_BYTES: the largest input file read (default 50 MiB). */
  maxInputBytes: number;
  /** MAX_INPUT_PIXELS: the most pixels an input may have (default 40 megapixels). */
  maxInputPixels: number;
  /** MAX_OUTPUT_PIXELS: the most pixels an output may have (default 160 megapixels). */
  maxOutputPixels: number;
  /**
   * MAX_WEBP_OUTPUT_PIXELS: the most pixels a WebP result may have (default 40 megapixels).
   * libwebp encodes a picture whole, so a WebP result costs about 10 bytes a pixel at once; PNG
   * and JPEG are streamed and have only MAX_OUTPUT_PIXELS.
   */
  maxWebpOutputPixels: number;
  /** TILE_SIZE: the side of the square tiles sent to Triton, in input pixels (default 128). */
  tileSize: number;
  /** TILE_OVERLAP: context pixels each tile carries around its core (default 12). */
  tileOverlap: number;
  /** PROGRESS_INTERVAL_MS: the shortest time between two progress events of a job (default 1000). */
  progressIntervalMs: number;
  /** STORAGE_API_ENDPOINT: the Storage API base URL, set only for an emulator (local stack). Not STORAGE_EMULATOR_HOST, which the client library reads by itself and combines badly with an explicit endpoint. */
  storageApiEndpoint?: string;
  /**
   * Traces and metrics (TRACES_EXPORTER, METRICS_EXPORTER, METRICS_PORT, OTLP_ENDPOINT, ...; see
   * observability/telemetryConfig.ts). Metrics default to Prometheus on :9464/metrics.
   */
  telemetry: TelemetryConfig;
}

export function parseWorkerConfig(env: Record<string, string | undefined>, defaultWorkerId: string): WorkerConfig {
  const tileSize = integer(env, "TILE_SIZE", 128, 32, 1024);
  const tileOverlap = integer(env, "TILE_OVERLAP", 12, 0, 128);
  if (tileOverlap * 2 >= tileSize) throw new ConfigError(`TILE_OVERLAP must be less than half of TILE_SIZE (${tileSize})`);
  const storageApiEndpoint = optional(env, "STORAGE_API_ENDPOINT");
  const leaseSeconds = integer(env, "JOB_LEASE_SECONDS", 60, 3, 86_400);
  const heartbeatSeconds = integer(env, "JOB_HEARTBEAT_SECONDS", Math.max(1, Math.floor(leaseSeconds / 4)), 1, 3_600);
  if (heartbeatSeconds * 2 > leaseSeconds) {
    throw new ConfigError(`JOB_HEARTBEAT_SECONDS must be at most half of JOB_LEASE_SECONDS (${leaseSeconds}), so that one late beat does not lose the job`);
  }
  const maxMessages = integer(env, "WORKER_MAX_MESSAGES", 2, 1, 64);
  const batchMaxMessages = integer(env, "WORKER_BATCH_MAX_MESSAGES", Math.max(1, maxMessages - 1), 1, 64);
  if (batchMaxMessages > maxMessages) throw new ConfigError(`WORKER_BATCH_MAX_MESSAGES must be at most WORKER_MAX_MESSAGES (${maxMessages})`);
  const jobsBatchSubscription = optional(env, "JOBS_BATCH_SUBSCRIPTION");
  return {
    projectId: required(env, "GCP_PROJECT"),
    jobsSubscription: required(env, "JOBS_SUBSCRIPTION"),
    ...(jobsBatchSubscription === undefined ? {} : { jobsBatchSubscription }),
    batchMaxMessages,
    jobDeadlineSeconds: integer(env, "JOB_DEADLINE_SECONDS", 300, 5, 86_400),
    resultsLifecycleDays: integer(env, "RESULTS_LIFECYCLE_DAYS", 7, 1, 3_650),
    resultsBucket: required(env, "RESULTS_BUCKET"),
    tritonUrl: required(env, "TRITON_GRPC_URL"),
    tritonTimeoutMs: integer(env, "TRITON_TIMEOUT_MS", 60_000, 100, 3_600_000),
    tritonMaxInFlight: integer(env, "TRITON_MAX_IN_FLIGHT", 8, 1, 256),
    maxMessages,
    workerId: optional(env, "WORKER_ID") ?? defaultWorkerId,
    leaseSeconds,
    heartbeatSeconds,
    cancelCheckMs: integer(env, "CANCEL_CHECK_MS", 500, 50, 10_000),
    tritonReadyPollMs: integer(env, "TRITON_READY_POLL_MS", 1_000, 100, 60_000),
    maxEditSeconds: integer(env, "MAX_EDIT_SECONDS", 3_600, 60, 86_400),
    storeDeadlineMs: integer(env, "STORE_DEADLINE_MS", 10_000, 500, 120_000),
    storageTimeoutMs: integer(env, "STORAGE_TIMEOUT_MS", 30_000, 1_000, 600_000),
    ackDeadlineMaxSeconds: integer(env, "ACK_DEADLINE_MAX_SECONDS", 600, 10, 600),
    pullCheckSeconds: integer(env, "PULL_CHECK_SECONDS", 60, 2, 3_600),
    maxAttempts: integer(env, "MAX_ATTEMPTS", 5, 1, 100),
    maxInputBytes: integer(env, "MAX_INPUT_BYTES", 50 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
    maxInputPixels: integer(env, "MAX_INPUT_PIXELS", 40_000_000, 1, 1_000_000_000),
    maxOutputPixels: integer(env, "MAX_OUTPUT_PIXELS", 160_000_000, 1, 4_000_000_000),
    maxWebpOutputPixels: integer(env, "MAX_WEBP_OUTPUT_PIXELS", 40_000_000, 1, 268_402_689),
    tileSize,
    tileOverlap,
    progressIntervalMs: integer(env, "PROGRESS_INTERVAL_MS", 1000, 1000, 3_600_000),
    telemetry: parseTelemetryConfig(env, { serviceName: "image-edit-worker", metricsExporter: "prometheus" }),
    ...(storageApiEndpoint === undefined ? {} : { storageApiEndpoint }),
  };
}
