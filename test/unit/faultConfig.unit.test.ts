import { describe, expect, it } from "vitest";
import { parseConfig } from "../../functions/config.js";
import { parseWorkerConfig } from "../../workers/config.js";

const workerEnv = { GCP_PROJECT: "p", JOBS_SUBSCRIPTION: "s", RESULTS_BUCKET: "r", TRITON_GRPC_URL: "127.0.0.1:8001" };
const functionsEnv = { GCP_PROJECT: "p", UPLOADS_BUCKET: "u", RESULTS_BUCKET: "r", JOBS_TOPIC: "t" };

describe("worker config: leases and heartbeats", () => {
  it("beats four times per lease by default", () => {
    expect(parseWorkerConfig(workerEnv, "w")).toMatchObject({ leaseSeconds: 60, heartbeatSeconds: 15, cancelCheckMs: 500, tritonReadyPollMs: 1000, maxEditSeconds: 3600, ackDeadlineMaxSeconds: 600, pullCheckSeconds: 60 });
    expect(parseWorkerConfig({ ...workerEnv, JOB_LEASE_SECONDS: "6" }, "w")).toMatchObject({ leaseSeconds: 6, heartbeatSeconds: 1 });
  });

  it.each([
    [{ JOB_LEASE_SECONDS: "10", JOB_HEARTBEAT_SECONDS: "6" }, /JOB_HEARTBEAT_SECONDS must be at most half of JOB_LEASE_SECONDS/],
    [{ JOB_LEASE_SECONDS: "2" }, /JOB_LEASE_SECONDS must be an integer from 3/],
    [{ CANCEL_CHECK_MS: "10" }, /CANCEL_CHECK_MS must be an integer from 50/],
    [{ TRITON_READY_POLL_MS: "soon" }, /TRITON_READY_POLL_MS/],
    [{ ACK_DEADLINE_MAX_SECONDS: "5" }, /ACK_DEADLINE_MAX_SECONDS must be an integer from 10 to 600/],
    [{ PULL_CHECK_SECONDS: "1" }, /PULL_CHECK_SECONDS must be an integer from 2 to 3600/],
  ])("refuses %j", (env, message) => {
    expect(() => parseWorkerConfig({ ...workerEnv, ...env }, "w")).toThrow(message);
  });
});

describe("functions config: quotas", () => {
  it("has per-user limits by default, and takes others", () => {
    expect(parseConfig(functionsEnv)).toMatchObject({ quotaRequestsPerMinute: 120, quotaJobsInFlight: 20, maxAttempts: 5 });
    expect(parseConfig({ ...functionsEnv, QUOTA_REQUESTS_PER_MINUTE: "30", QUOTA_JOBS_IN_FLIGHT: "3" })).toMatchObject({ quotaRequestsPerMinute: 30, quotaJobsInFlight: 3 });
  });

  it.each([["QUOTA_REQUESTS_PER_MINUTE", "0"], ["QUOTA_JOBS_IN_FLIGHT", "many"], ["MAX_ATTEMPTS", "1000"]])("refuses %s=%s, naming it", (name, value) => {
    expect(() => parseConfig({ ...functionsEnv, [name]: value })).toThrow(name);
  });
});
