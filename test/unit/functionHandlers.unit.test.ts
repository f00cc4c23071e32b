/**
 * The event-driven functions' rules through the in-memory doubles: the upload trigger, the
 * sweeper of ghost and stale jobs, and the dead-letter handler. The faults tier shows the same
 * against the whole local stack (test/faults/ghosts, poison, duplicates).
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { handleCommand } from "../../events/handleCommand.js";
import { createDeadLetterHandler } from "../../functions/deadLetterHandler.js";
import { createJobSweeper } from "../../functions/jobSweeper.js";
import { createUploadFinalizedHandler } from "../../functions/uploadFinalized.js";
import { eventTypes, memoryCore, queuedJob, testJpeg, UPLOADS, type MemoryCore } from "../support/coreFixtures.js";

const LEASE_MS = 60_000;

/** A job asked for by signed upload, still waiting for its bytes. */
async function awaitingUpload(core: MemoryCore, contentType = "image/jpeg"): Promise<string> {
  const jobId = randomUUID();
  await handleCommand(core, jobId, {
    type: "RequestEdit",
    jobId,
    ownerId: "owner",
    operation: "upscale",
    params: { scale: 2 },
    flow: "signed_upload",
    input: { bucket: UPLOADS, object: `uploads/${jobId}`, contentType },
  });
  return jobId;
}

describe("the upload trigger", () => {
  const onUploadFor = (core: MemoryCore) =>
    createUploadFinalizedHandler({ ...core, config: { uploadsBucket: UPLOADS, maxUploadBytes: 1_000_000, signedUrlTtlSeconds: 600 } });

  it("records the upload, queues the job and publishes it; a repeated notification changes nothing", async () => {
    const core = memoryCore();
    const jobId = await awaitingUpload(core);
    const onUpload = onUploadFor(core);
    const upload = { bucket: UPLOADS, name: `uploads/${jobId}`, contentType: "image/jpeg", size: "1234" };
    // The trigger reads the object's first bytes: a JPEG's signature.
    await core.images.write({ bucket: UPLOADS, object: upload.name }, Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0x10]), "image/jpeg");
    expect(await onUpload(upload)).toBe("queued");
    expect(await eventTypes(core, jobId)).toEqual(["EditRequested", "ImageUploaded", "EditQueued"]);
    expect(core.queue.published).toEqual([{ jobId, operation: "upscale", priority: "interactive" }]);
    // Eventarc repeats a notification when the handler may have failed before publishing.
    expect(await onUpload(upload)).toBe("republished");
    await handleCommand(core, jobId, { type: "StartEdit", workerId: "w1", leaseMs: LEASE_MS });
    expect(await onUpload(upload)).toBe("unchanged");
    expect(core.queue.published).toHaveLength(2);
    expect(await eventTypes(core, jobId)).toEqual(["EditRequested", "ImageUploaded", "EditQueued", "EditStarted"]);
  });

  it.each([
    ["an empty upload", { size: "0", contentType: "image/jpeg" }, "empty_upload"],
    ["an upload over the limit", { size: "1000001", contentType: "image/jpeg" }, "image_too_large"],
    ["an upload of another type than asked for", { size: "1234", contentType: "image/png" }, "content_type_mismatch"],
  ])("refuses %s: the job fails and the object is deleted", async (_what, upload, code) => {
    const core = memoryCore();
    const jobId = await awaitingUpload(core);
    const ref = { bucket: UPLOADS, object: `uploads/${jobId}` };
    await core.images.write(ref, Buffer.from("bytes"), upload.contentType);
    expect(await onUploadFor(core)({ bucket: UPLOADS, name: ref.object, ...upload })).toBe("refused");
    expect(await core.store.getProjection(jobId)).toMatchObject({ status: "failed", error: { code } });
    expect(core.images.list(UPLOADS)).toEqual([]);
    expect(core.queue.published).toEqual([]);
  });

  it("ignores objects that are not a job's upload, and uploads for no job", async () => {
    const core = memoryCore();
    const onUpload = onUploadFor(core);
    expect(await onUpload({ bucket: "elsewhere", name: `uploads/${randomUUID()}`, size: "10" })).toBe("ignored");
    expect(await onUpload({ bucket: UPLOADS, name: "notes.txt", size: "10" })).toBe("ignored");
    expect(await onUpload({ bucket: UPLOADS, name: `uploads/${randomUUID()}`, size: "10", contentType: "image/jpeg" })).toBe("ignored");
    expect(core.queue.published).toEqual([]);
  });
});

describe("the sweeper", () => {
  const sweeperFor = (core: MemoryCore, maxAttempts = 3) =>
    createJobSweeper({ ...core, config: { maxAttempts, queuedRepublishSeconds: 300, signedUrlTtlSeconds: 600, jobDeadlineSeconds: 300 } });

  it("requeues and republishes a job whose worker stopped beating, and leaves one whose worker beats", async () => {
    const core = memoryCore();
    const ghost = await queuedJob(core, await testJpeg());
    const alive = await queuedJob(core, await testJpeg());
    await handleCommand(core, ghost, { type: "StartEdit", workerId: "dead", leaseMs: LEASE_MS });
    await handleCommand(core, alive, { type: "StartEdit", workerId: "beating", leaseMs: LEASE_MS });
    core.clock.advance(LEASE_MS / 2);
    await handleCommand(core, alive, { type: "RenewLease", workerId: "beating", leaseMs: LEASE_MS });
    core.clock.advance(LEASE_MS / 2 + 1_000);
    const result = await sweeperFor(core)();
    expect(result).toEqual({ overdue: [], requeued: [ghost], failed: [], republished: [], expired: [] });
    expect(await core.store.getProjection(ghost)).toMatchObject({ status: "queued", error: { code: "worker_lost" } });
    expect(await core.store.getProjection(alive)).toMatchObject({ status: "running", workerId: "beating" });
    expect(core.queue.published).toEqual([{ jobId: ghost, operation: "upscale", priority: "interactive" }]);
    // A second run finds nothing more to do.
    expect(await sweeperFor(core)()).toEqual({ overdue: [], requeued: [], failed: [], republished: [], expired: [] });
  });

  it("fails a ghost job that has no attempts left, with a reason a person can read", async () => {
    const core = memoryCore();
    const ghost = await queuedJob(core, await testJpeg());
    await handleCommand(core, ghost, { type: "StartEdit", workerId: "dead", leaseMs: LEASE_MS });
    core.clock.advance(LEASE_MS + 1_000);
    expect(await sweeperFor(core, 1)()).toEqual({ overdue: [], requeued: [], failed: [ghost], republished: [], expired: [] });
    const job = await core.store.getProjection(ghost);
    expect(job).toMatchObject({ status: "failed", error: { code: "worker_lost" } });
    expect(job?.error?.message).toMatch(/No attempts are left/);
    expect(core.queue.published).toEqual([]);
  });

  it("publishes again a job left queued with nothing happening, and not one queued lately", async () => {
    const core = memoryCore();
    const stale = await queuedJob(core, await testJpeg());
    core.clock.advance(301_000);
    const fresh = await queuedJob(core, await testJpeg());
    expect(await sweeperFor(core)()).toEqual({ overdue: [], requeued: [], failed: [], republished: [stale], expired: [] });
    expect(core.queue.published).toEqual([{ jobId: stale, operation: "upscale", priority: "interactive" }]);
    expect((await core.store.getProjection(fresh))?.status).toBe("queued");
  });
});

describe("the dead-letter handler", () => {
  const message = (jobId: string, deliveries = 5) => ({
    message: {
      data: Buffer.from(JSON.stringify({ jobId, operation: "upscale" })).toString("base64"),
      attributes: { CloudPubSubDeadLetterSourceDeliveryCount: String(deliveries) },
      messageId: randomUUID(),
    },
  });

  it("fails a dead-lettered job with the deliveries and the last error in its reason", async () => {
    const core = memoryCore();
    const jobId = await queuedJob(core, await testJpeg());
    await handleCommand(core, jobId, { type: "StartEdit", workerId: "w1", leaseMs: LEASE_MS });
    await handleCommand(core, jobId, { type: "FailAttempt", workerId: "w1", code: "storage_unavailable", message: "Storage is unavailable.", maxAttempts: 5 });
    expect(await createDeadLetterHandler(core)(message(jobId, 5))).toBe("failed");
    const job = await core.store.getProjection(jobId);
    expect(job).toMatchObject({ status: "failed", error: { code: "dead_lettered" } });
    expect(job?.error?.message).toMatch(/after 5 deliveries.*Storage is unavailable/);
  });

  it("leaves a job a live worker holds, and a job that has ended, as they are", async () => {
    const core = memoryCore();
    const held = await queuedJob(core, await testJpeg());
    await handleCommand(core, held, { type: "StartEdit", workerId: "w1", leaseMs: LEASE_MS });
    const done = await queuedJob(core, await testJpeg());
    await handleCommand(core, done, { type: "CancelEdit", by: "owner" });
    const onDeadLetter = createDeadLetterHandler(core);
    expect(await onDeadLetter(message(held))).toBe("held");
    expect(await onDeadLetter(message(done))).toBe("ended");
    expect((await core.store.getProjection(held))?.status).toBe("running");
    expect((await core.store.getProjection(done))?.status).toBe("canceled");
  });

  it("ignores a message that is not a job", async () => {
    const core = memoryCore();
    const onDeadLetter = createDeadLetterHandler(core);
    expect(await onDeadLetter({ message: { data: Buffer.from("not json").toString("base64") } })).toBe("ignored");
    expect(await onDeadLetter({})).toBe("ignored");
  });
});
