/** The worker's settings in the tests: small tiles, so that a small photo makes several, and short timings. */
export const WORKER_TEST_CONFIG = {
  leaseSeconds: 60,
  heartbeatSeconds: 15,
  cancelCheckMs: 500,
  tritonReadyPollMs: 1_000,
  maxAttempts: 2,
  maxInputBytes: 10_000_000,
  maxInputPixels: 4_000_000,
  maxOutputPixels: 64_000_000,
  tileSize: 64,
  tileOverlap: 8,
  tritonMaxInFlight: 4,
  tritonTimeoutMs: 30_000,
  progressIntervalMs: 1_000,
  jobDeadlineSeconds: 300,
  resultsLifecycleDays: 7,
};
