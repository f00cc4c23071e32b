/**
 * The pipeline's metrics, as Prometheus names them (the worker serves them on /metrics; the
 * functions push them over OTLP). Times are in seconds, per Prometheus convention.
 */
import type { Counter, Histogram, Meter, ObservableGauge, UpDownCounter } from "@opentelemetry/api";

/** Bucket bounds (seconds) from a fast Firestore write to a huge image's whole job. */
const SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

export interface PipelineMetrics {
  /** `image_edit_jobs_total{operation,outcome}`: outcome is succeeded, failed, retried or canceled. */
  jobs: Counter;
  /** `image_edit_result_cache_total{operation,outcome}`: outcome is hit (a result reused, no model run) or miss (a result computed under a cache key). */
  resultCache: Counter;
  /** `image_edit_queue_wait_seconds{operation}`: from the publish to the worker taking the message. */
  queueWait: Histogram;
  /** `image_edit_stage_seconds{stage}`: download, decode, inference, encode, upload, events, and the CPU pieces tiling, stitching, filtering. */
  stage: Histogram;
  /** `image_edit_triton_request_seconds{model,outcome}`: one inference call, as the worker waits for it. */
  tritonRequest: Histogram;
  /** `image_edit_tiles_total{model}`: tiles sent through Triton; `rate()` gives tiles per second. */
  tiles: Counter;
  /** `image_edit_jobs_in_flight`: deliveries this worker is working on. */
  inFlight: UpDownCounter;
  /** `image_edit_oldest_running_job_age_seconds`: how long the oldest delivery in hand has run. */
  oldestRunningJobAge: ObservableGauge;
  /** `image_edit_triton_ready`: 1 when the worker's Triton answers ready, else 0. */
  tritonReady: ObservableGauge;
  /** `image_edit_http_requests_total{route,method,status}`. */
  httpRequests: Counter;
  /** `image_edit_http_request_duration_seconds{route,method,status}`. */
  httpDuration: Histogram;
}

export function createPipelineMetrics(meter: Meter): PipelineMetrics {
  const seconds = (name: string, description: string) =>
    meter.createHistogram(name, { description, unit: "s", advice: { explicitBucketBoundaries: SECONDS_BUCKETS } });
  return {
    jobs: meter.createCounter("image_edit_jobs_total", { description: "Jobs that reached an outcome, by operation and outcome." }),
    resultCache: meter.createCounter("image_edit_result_cache_total", { description: "Result cache lookups that found a result (hit) or ran the model (miss), by operation." }),
    queueWait: seconds("image_edit_queue_wait_seconds", "Time from publishing a job to a worker taking it."),
    stage: seconds("image_edit_stage_seconds", "Time spent in each stage of processing a job."),
    tritonRequest: seconds("image_edit_triton_request_seconds", "Latency of one Triton inference call."),
    tiles: meter.createCounter("image_edit_tiles_total", { description: "Tiles sent through Triton." }),
    inFlight: meter.createUpDownCounter("image_edit_jobs_in_flight", { description: "Deliveries being worked on." }),
    oldestRunningJobAge: meter.createObservableGauge("image_edit_oldest_running_job_age_seconds", {
      description: "Age of the oldest delivery this worker is working on (0 when idle).",
      unit: "s",
    }),
    tritonReady: meter.createObservableGauge("image_edit_triton_ready", { description: "1 when Triton answers ready, else 0." }),
    httpRequests: meter.createCounter("image_edit_http_requests_total", { description: "HTTP API requests, by route and status." }),
    httpDuration: seconds("image_edit_http_request_duration_seconds", "HTTP API request latency, by route and status."),
  };
}
