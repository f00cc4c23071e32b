import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { decide, type EditCommand, type RejectionCode } from "../../events/decide.js";
import type { EditEvent, EventType, RecordedEvent } from "../../events/editEvents.js";
import { foldEvents, inFlightChange, type JobState } from "../../events/jobState.js";

const now = new Date("2026-11-22T10:00:00.000Z");
const jobId = randomUUID();
const input = { bucket: "uploads", object: `uploads/u1/${jobId}`, contentType: "image/png" };
const output = { bucket: "results", object: `results/u1/${jobId}.png`, contentType: "image/png", width: 2048, height: 2048, sizeBytes: 1234 };

// Givens: event histories, each the previous plus one step.
const requested: EditEvent = {
  type: "EditRequested",
  data: { jobId, ownerId: "u1", operation: "upscale", params: { scale: 4 }, flow: "signed_upload", input },
};
const uploaded: EditEvent = { type: "ImageUploaded", data: { ...input, sizeBytes: 1000 } };
const queued: EditEvent = { type: "EditQueued", data: { attempt: 1 } };
const startedLive: EditEvent = {
  type: "EditStarted",
  data: { attempt: 1, workerId: "w1", leaseExpiresAt: new Date(now.getTime() + 60_000).toISOString() },
};
const startedLapsed: EditEvent = {
  type: "EditStarted",
  data: { attempt: 1, workerId: "w1", leaseExpiresAt: new Date(now.getTime() - 1).toISOString() },
};
const succeeded: EditEvent = { type: "EditSucceeded", data: { workerId: "w1", output, processingMs: 10, inferenceMs: 5 } };
const canceled: EditEvent = { type: "EditCanceled", data: { by: "u1" } };
const failed: EditEvent = { type: "EditFailed", data: { code: "unsupported_image", message: "not an image", attempt: 1 } };

const renewedPast: EditEvent = {
  type: "LeaseRenewed",
  data: { workerId: "w1", leaseExpiresAt: new Date(now.getTime() - 1).toISOString() },
};
const renewedFuture: EditEvent = {
  type: "LeaseRenewed",
  data: { workerId: "w1", leaseExpiresAt: new Date(now.getTime() + 5_000).toISOString() },
};
const retried: EditEvent = {
  type: "EditAttemptFailed",
  data: { code: "inference_unavailable", message: "The model server is unavailable.", attempt: 1, workerId: "w1" },
};

const H = {
  none: [] as EditEvent[],
  awaiting: [requested],
  queued: [requested, uploaded, queued],
  running: [requested, uploaded, queued, startedLive],
  runningLapsed: [requested, uploaded, queued, startedLapsed],
  succeeded: [requested, uploaded, queued, startedLive, succeeded],
  failed: [requested, uploaded, queued, startedLive, failed],
  canceled: [requested, uploaded, queued, canceled],
  // A heartbeat keeps a started job alive; one that stopped lets its lease lapse.
  runningBeating: [requested, uploaded, queued, startedLapsed, renewedFuture],
  runningSilent: [requested, uploaded, queued, startedLive, renewedPast],
  retriedQueued: [requested, uploaded, queued, startedLive, retried],
};

function record(events: EditEvent[]): RecordedEvent[] {
  return events.map((event, index) => ({ ...event, seq: index + 1, at: now.toISOString(), schemaVersion: 1 }) as RecordedEvent);
}

const cmd = {
  request: {
    type: "RequestEdit",
    jobId,
    ownerId: "u1",
    operation: "upscale",
    params: { scale: 4 },
    flow: "signed_upload",
    input,
  },
  upload: { type: "RecordUpload", ...input, sizeBytes: 1000 },
  uploadOther: { type: "RecordUpload", bucket: "uploads", object: "uploads/u1/other", contentType: "image/png", sizeBytes: 1 },
  start: { type: "StartEdit", workerId: "w2", leaseMs: 30_000 },
  completeW1: { type: "CompleteEdit", workerId: "w1", output, processingMs: 10, inferenceMs: 5 },
  completeW2: { type: "CompleteEdit", workerId: "w2", output, processingMs: 10, inferenceMs: 5 },
  failAttempt: { type: "FailAttempt", workerId: "w1", code: "inference_unavailable", message: "Triton is down", maxAttempts: 3 },
  failAttemptLast: { type: "FailAttempt", workerId: "w1", code: "inference_unavailable", message: "Triton is down", maxAttempts: 1 },
  failEdit: { type: "FailEdit", code: "unsupported_image", message: "not an image" },
  cancel: { type: "CancelEdit", by: "u1" },
  renewW1: { type: "RenewLease", workerId: "w1", leaseMs: 30_000 },
  renewW2: { type: "RenewLease", workerId: "w2", leaseMs: 30_000 },
  reclaim: { type: "ReclaimJob", maxAttempts: 3 },
  reclaimLast: { type: "ReclaimJob", maxAttempts: 1 },
  deadLettered: { type: "FailDeadLettered", deliveryAttempts: 5 },
  requeueStale: { type: "RequeueStale", staleMs: 0 },
  requeueFresh: { type: "RequeueStale", staleMs: 60_000 },
  progressW1: { type: "RecordProgress", workerId: "w1", tilesDone: 3, tilesTotal: 9 },
  progressW2: { type: "RecordProgress", workerId: "w2", tilesDone: 3, tilesTotal: 9 },
  // Every given history is recorded at `now`: 0 ms old.
  expireUpload: { type: "ExpireUpload", expireAfterMs: 0 },
  expireUploadEarly: { type: "ExpireUpload", expireAfterMs: 60_000 },
  expireDeadline: { type: "ExpireDeadline", deadlineMs: 0 },
  expireDeadlineEarly: { type: "ExpireDeadline", deadlineMs: 60_000 },
} satisfies Record<string, EditCommand>;

type Then = { events: EventType[] } | { rejected: RejectionCode };

const table: Array<[given: keyof typeof H, when: keyof typeof cmd, then: Then]> = [
  ["none", "request", { events: ["EditRequested"] }],
  ["awaiting", "request", { rejected: "already_exists" }],
  // The deadline counts from the first start, whatever the lease says; a job never started has none.
  ["running", "expireDeadline", { events: ["EditFailed"] }],
  ["runningLapsed", "expireDeadline", { events: ["EditFailed"] }],
  ["retriedQueued", "expireDeadline", { events: ["EditFailed"] }],
  ["running", "expireDeadlineEarly", { rejected: "not_overdue" }],
  ["queued", "expireDeadline", { rejected: "not_overdue" }],
  ["awaiting", "expireDeadline", { rejected: "not_overdue" }],
  ["succeeded", "expireDeadline", { rejected: "already_ended" }],
  ["canceled", "expireDeadline", { rejected: "already_ended" }],
  ["none", "upload", { rejected: "not_found" }],
  ["awaiting", "upload", { events: ["ImageUploaded", "EditQueued"] }],
  ["awaiting", "uploadOther", { rejected: "upload_mismatch" }],
  ["queued", "upload", { events: [] }],
  ["canceled", "upload", { events: [] }],
  ["awaiting", "start", { rejected: "not_uploaded" }],
  ["queued", "start", { events: ["EditStarted"] }],
  ["running", "start", { rejected: "lease_held" }],
  ["runningLapsed", "start", { events: ["EditStarted"] }],
  ["succeeded", "start", { rejected: "already_ended" }],
  ["canceled", "start", { rejected: "already_ended" }],
  ["running", "completeW1", { events: ["EditSucceeded"] }],
  ["running", "completeW2", { rejected: "not_lease_holder" }],
  ["canceled", "completeW1", { rejected: "already_ended" }],
  ["succeeded", "completeW1", { rejected: "already_ended" }],
  ["running", "failAttempt", { events: ["EditAttemptFailed"] }],
  ["running", "failAttemptLast", { events: ["EditFailed"] }],
  ["queued", "failAttempt", { rejected: "not_lease_holder" }],
  ["running", "failEdit", { events: ["EditFailed"] }],
  ["queued", "failEdit", { events: ["EditFailed"] }],
  ["failed", "failEdit", { rejected: "already_ended" }],
  ["awaiting", "cancel", { events: ["EditCanceled"] }],
  ["queued", "cancel", { events: ["EditCanceled"] }],
  ["running", "cancel", { events: ["EditCanceled"] }],
  ["succeeded", "cancel", { rejected: "already_ended" }],
  ["canceled", "cancel", { rejected: "already_ended" }],
  // Heartbeats: only the holder of a running job renews.
  ["running", "renewW1", { events: ["LeaseRenewed"] }],
  ["runningLapsed", "renewW1", { events: ["LeaseRenewed"] }],
  ["running", "renewW2", { rejected: "not_lease_holder" }],
  ["queued", "renewW1", { rejected: "not_lease_holder" }],
  ["canceled", "renewW1", { rejected: "already_ended" }],
  ["succeeded", "renewW1", { rejected: "already_ended" }],
  // A renewed lease holds off a takeover; one that lapsed after its last beat does not.
  ["runningBeating", "start", { rejected: "lease_held" }],
  ["runningSilent", "start", { events: ["EditStarted"] }],
  // The sweeper: only running jobs whose lease lapsed go back to the queue.
  ["runningLapsed", "reclaim", { events: ["EditAttemptFailed"] }],
  ["runningSilent", "reclaim", { events: ["EditAttemptFailed"] }],
  ["runningLapsed", "reclaimLast", { events: ["EditFailed"] }],
  ["running", "reclaim", { rejected: "lease_held" }],
  ["runningBeating", "reclaim", { rejected: "lease_held" }],
  ["queued", "reclaim", { rejected: "not_running" }],
  ["awaiting", "reclaim", { rejected: "not_running" }],
  ["succeeded", "reclaim", { rejected: "already_ended" }],
  // The dead-letter handler: never fails a job a live worker holds, nor one that has ended.
  ["queued", "deadLettered", { events: ["EditFailed"] }],
  ["retriedQueued", "deadLettered", { events: ["EditFailed"] }],
  ["runningLapsed", "deadLettered", { events: ["EditFailed"] }],
  ["running", "deadLettered", { rejected: "lease_held" }],
  ["runningBeating", "deadLettered", { rejected: "lease_held" }],
  ["awaiting", "deadLettered", { rejected: "not_uploaded" }],
  ["succeeded", "deadLettered", { rejected: "already_ended" }],
  ["canceled", "deadLettered", { rejected: "already_ended" }],
  ["failed", "deadLettered", { rejected: "already_ended" }],
  // The sweeper again: a job queued long with nothing happening is queued (and published) anew.
  ["queued", "requeueStale", { events: ["EditQueued"] }],
  ["retriedQueued", "requeueStale", { events: ["EditQueued"] }],
  ["queued", "requeueFresh", { rejected: "not_stale" }],
  ["running", "requeueStale", { rejected: "not_stale" }],
  ["awaiting", "requeueStale", { rejected: "not_stale" }],
  ["succeeded", "requeueStale", { rejected: "not_stale" }],
  ["running", "progressW1", { events: ["EditProgressed"] }],
  ["running", "progressW2", { rejected: "not_lease_holder" }],
  ["queued", "progressW1", { rejected: "not_lease_holder" }],
  ["canceled", "progressW1", { rejected: "already_ended" }],
  // An upload that never came: the job ends once its URL has expired, and not before.
  ["awaiting", "expireUpload", { events: ["EditCanceled"] }],
  ["awaiting", "expireUploadEarly", { rejected: "not_expired" }],
  ["queued", "expireUpload", { rejected: "not_expired" }],
  ["running", "expireUpload", { rejected: "not_expired" }],
  ["canceled", "expireUpload", { rejected: "not_expired" }],
  ["none", "expireUpload", { rejected: "not_found" }],
];

describe("decide", () => {
  it.each(table)("given %s, when %s, then %j", (given, when, then) => {
    const state = foldEvents(record(H[given]));
    const decision = decide(cmd[when], state, now);
    if ("rejected" in then) {
      expect(decision.ok).toBe(false);
      if (!decision.ok) expect(decision.rejection.code).toBe(then.rejected);
    } else {
      expect(decision.ok).toBe(true);
      if (decision.ok) expect(decision.events.map((e) => e.type)).toEqual(then.events);
    }
  });

  it("gives a new lease that ends leaseMs after now", () => {
    const decision = decide(cmd.start, foldEvents(record(H.queued)), now);
    expect(decision).toMatchObject({
      ok: true,
      events: [{ type: "EditStarted", data: { attempt: 1, workerId: "w2", leaseExpiresAt: "2026-11-22T10:00:30.000Z" } }],
    });
  });

  it("counts the attempt on a takeover after a lapsed lease", () => {
    const decision = decide(cmd.start, foldEvents(record(H.runningLapsed)), now);
    expect(decision).toMatchObject({ ok: true, events: [{ data: { attempt: 2, workerId: "w2" } }] });
  });
});

const statusTable: Array<[keyof typeof H, Partial<JobState>]> = [
  ["awaiting", { status: "awaiting_upload", attempts: 0, version: 1 }],
  ["queued", { status: "queued", attempts: 0, version: 3, input: { ...input, sizeBytes: 1000 } }],
  ["running", { status: "running", attempts: 1, version: 4, workerId: "w1" }],
  ["succeeded", { status: "succeeded", attempts: 1, version: 5, output }],
  ["failed", { status: "failed", error: { code: "unsupported_image", message: "not an image" } }],
  ["canceled", { status: "canceled", version: 4 }],
];

describe("decide: abandoned uploads", () => {
  it("ends an expired upload canceled with the reason upload_expired, a sentence for the person, and one slot less in flight", () => {
    const decision = decide(cmd.expireUpload, foldEvents(record(H.awaiting)), now);
    expect(decision).toMatchObject({ ok: true, events: [{ type: "EditCanceled", data: { by: "system", reason: "upload_expired" } }] });
    const events = [...H.awaiting, ...(decision.ok ? decision.events : [])];
    expect(foldEvents(record(events))).toMatchObject({ status: "canceled", error: { code: "upload_expired", message: expect.stringMatching(/not uploaded before its upload URL expired/) } });
    expect(inFlightChange(events)).toBe(0);
  });

  it.each([
    [[requested], 1],
    [[requested, uploaded, queued, startedLive, retried], 1],
    [[succeeded], -1],
    [[failed], -1],
    [[canceled], -1],
    [[uploaded, queued, startedLive], 0],
  ] as const)("counts the change in jobs in flight of %j as %i", (events, change) => {
    expect(inFlightChange(events)).toBe(change);
  });
});

describe("decide: faults", () => {
  it("extends the holder's lease to leaseMs from now", () => {
    const decision = decide(cmd.renewW1, foldEvents(record(H.running)), now);
    expect(decision).toMatchObject({ ok: true, events: [{ type: "LeaseRenewed", data: { workerId: "w1", leaseExpiresAt: "2026-11-22T10:00:30.000Z" } }] });
    const renewed = foldEvents(record([...H.running, ...(decision.ok ? decision.events : [])]));
    expect(renewed).toMatchObject({ status: "running", workerId: "w1", leaseExpiresAt: "2026-11-22T10:00:30.000Z", attempts: 1 });
  });

  it("puts a reclaimed job back in the queue with a reason a person can read", () => {
    const decision = decide(cmd.reclaim, foldEvents(record(H.runningLapsed)), now);
    expect(decision).toMatchObject({ ok: true, events: [{ type: "EditAttemptFailed", data: { code: "worker_lost", attempt: 1, workerId: "w1" } }] });
    const state = foldEvents(record([...H.runningLapsed, ...(decision.ok ? decision.events : [])]));
    expect(state).toMatchObject({ status: "queued", attempts: 1, error: { code: "worker_lost" } });
    expect(state?.workerId).toBeUndefined();
  });

  it("fails a dead-lettered job with the count of deliveries and the last error", () => {
    const decision = decide(cmd.deadLettered, foldEvents(record(H.retriedQueued)), now);
    expect(decision).toMatchObject({ ok: true, events: [{ type: "EditFailed", data: { code: "dead_lettered", attempt: 1 } }] });
    const message = decision.ok && decision.events[0]?.type === "EditFailed" ? decision.events[0].data.message : "";
    expect(message).toMatch(/after 5 deliveries/);
    expect(message).toMatch(/The model server is unavailable/);
  });
});

describe("decide: deadline, priority and the result cache", () => {
  it("fails an overdue job with deadline_exceeded and a sentence naming the deadline", () => {
    const decision = decide({ type: "ExpireDeadline", deadlineMs: 0 }, foldEvents(record(H.running)), now);
    expect(decision).toMatchObject({ ok: true, events: [{ type: "EditFailed", data: { code: "deadline_exceeded", attempt: 1 } }] });
    if (decision.ok && decision.events[0]?.type === "EditFailed") expect(decision.events[0].data.message).toMatch(/within 0 seconds of starting/);
  });

  it("counts the deadline from the first start, not from a retry's", () => {
    const firstAt = new Date(now.getTime() - 50_000).toISOString();
    const log = record(H.retriedQueued).map((event) => (event.type === "EditStarted" ? { ...event, at: firstAt } : event));
    const restarted = [...log, { ...startedLive, seq: log.length + 1, at: now.toISOString(), schemaVersion: 1 } as RecordedEvent];
    const state = foldEvents(restarted);
    expect(state?.firstStartedAt).toBe(firstAt);
    expect(decide({ type: "ExpireDeadline", deadlineMs: 40_000 }, state, now).ok).toBe(true);
    expect(decide({ type: "ExpireDeadline", deadlineMs: 60_000 }, state, now).ok).toBe(false);
  });

  it("keeps the priority and the cache digest of the request, interactive when none was given", () => {
    expect(foldEvents(record(H.queued))?.priority).toBe("interactive");
    const batch = decide({ ...cmd.request, priority: "batch", cacheDigest: "d1" }, undefined, now);
    const state = batch.ok ? foldEvents(record(batch.events)) : undefined;
    expect(state).toMatchObject({ priority: "batch", cacheDigest: "d1" });
  });

  it("records where a cached result came from, and the key of a computed one", () => {
    const hit = decide({ ...cmd.completeW1, cachedFrom: "earlier" }, foldEvents(record(H.running)), now);
    const state = hit.ok ? foldEvents(record([...H.running, ...hit.events])) : undefined;
    expect(state).toMatchObject({ status: "succeeded", cachedFrom: "earlier" });
    const miss = decide({ ...cmd.completeW1, cacheKey: "k1" }, foldEvents(record(H.running)), now);
    expect(miss.ok && miss.events[0]?.data).toMatchObject({ cacheKey: "k1" });
  });
});

describe("evolve", () => {
  it.each(statusTable)("folds the %s history into %j", (given, expected) => {
    expect(foldEvents(record(H[given]))).toMatchObject(expected);
  });

  it("drops the lease when the job ends", () => {
    const state = foldEvents(record(H.succeeded));
    expect(state?.workerId).toBeUndefined();
    expect(state?.leaseExpiresAt).toBeUndefined();
  });

  it("puts a job back in the queue after a retryable failure, keeping the reason", () => {
    const retry: EditEvent = { type: "EditAttemptFailed", data: { code: "inference_unavailable", message: "down", attempt: 1 } };
    expect(foldEvents(record([...H.running, retry]))).toMatchObject({
      status: "queued",
      attempts: 1,
      error: { code: "inference_unavailable" },
    });
  });

  it("shows the running attempt's progress, and forgets it when the attempt ends", () => {
    const progressed: EditEvent = { type: "EditProgressed", data: { workerId: "w1", tilesDone: 3, tilesTotal: 9 } };
    expect(foldEvents(record([...H.running, progressed]))?.progress).toEqual({ tilesDone: 3, tilesTotal: 9 });
    const retry: EditEvent = { type: "EditAttemptFailed", data: { code: "inference_unavailable", message: "down", attempt: 1 } };
    expect(foldEvents(record([...H.running, progressed, retry]))?.progress).toBeUndefined();
    expect(foldEvents(record([...H.running, progressed, succeeded]))?.progress).toBeUndefined();
  });

  it("refuses a log that does not begin with EditRequested", () => {
    expect(() => foldEvents(record([uploaded]))).toThrow(/before EditRequested/);
  });
});
