/**
 * Priorities, the per-user result cache and the job deadline, through the in-memory doubles:
 * the API's fields, the worker's two lanes and Triton priority, cache hits that run no model and
 * never cross users, and deadlines enforced by the worker (a live job) and the sweeper (an orphan).
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { handleCommand } from "../../events/handleCommand.js";
import type { JobDelivery } from "../../events/jobQueue.js";
import { requestDigest, resultCacheKey } from "../../events/resultCache.js";
import { createEditApi, type ApiRequest } from "../../functions/editApi.js";
import { createJobSweeper } from "../../functions/jobSweeper.js";
import { toEventViews, toJobView } from "../../functions/jobView.js";
import { createWorker, TRITON_PRIORITY } from "../../workers/jobWorker.js";
import { createPrioritySubscription, defaultBatchSlots } from "../../workers/prioritySubscription.js";
import { createFixedTokenVerifier } from "../doubles/fixedTokenVerifier.js";
import { createMemoryJobQueue } from "../doubles/memoryJobQueue.js";
import { WORKER_TEST_CONFIG } from "../support/workerTestConfig.js";
import { ended, handDelivery, memoryCore, queuedJob, testJpeg, until, type MemoryCore } from "../support/coreFixtures.js";

const config = { ...WORKER_TEST_CONFIG, resultsBucket: "results", cancelCheckMs: 10, tritonReadyPollMs: 10 };

function worker(core: MemoryCore, overrides: Partial<typeof config> = {}) {
  return createWorker({
    store: core.store,
    images: core.images,
    subscription: core.queue.subscription(),
    inference: core.inference,
    clock: core.clock,
    config: { ...config, ...overrides, workerId: `w-${randomUUID()}` },
    log: core.log,
  });
}

function api(core: MemoryCore) {
  const alice = `alice-${randomUUID()}`;
  const handler = createEditApi({
    store: core.store,
    images: core.images,
    queue: core.queue,
    clock: core.clock,
    verifier: createFixedTokenVerifier({ "alice-token": alice }),
    newJobId: randomUUID,
    config: { uploadsBucket: "uploads", signedUrlTtlSeconds: 300, resultUrlTtlSeconds: 300, maxDirectUploadBytes: 200_000, maxUploadBytes: 1_000_000 },
  });
  return (request: Partial<ApiRequest>) =>
    handler({ method: "POST", path: "/v1/edits", query: {}, ...request, headers: { authorization: "Bearer alice-token", ...request.headers } });
}

describe("the API's priority and cache fields", () => {
  it("takes priority and cache in both flows, publishes batch jobs as batch, and shows the priority", async () => {
    const core = memoryCore();
    const post = api(core);
    const signed = await post({ rawBody: Buffer.from(JSON.stringify({ operation: "upscale", contentType: "image/jpeg", priority: "batch", cache: false })) });
    expect(signed.status).toBe(202);
    const signedJob = await core.store.getProjection((signed.body as { jobId: string }).jobId);
    expect(signedJob).toMatchObject({ priority: "batch" });
    expect(signedJob?.cacheDigest).toBeUndefined();

    const direct = await post({
      query: { operation: "upscale", "params.scale": "2", priority: "batch" },
      headers: { "content-type": "image/jpeg" },
      rawBody: await testJpeg(),
    });
    expect(direct.status).toBe(202);
    const { jobId } = direct.body as { jobId: string };
    expect(core.queue.published).toEqual([{ jobId, operation: "upscale", priority: "batch" }]);
    const job = await core.store.getProjection(jobId);
    expect(job?.cacheDigest).toMatch(/^[0-9a-f]{64}$/);
    const view = await toJobView(job!, { images: core.images, clock: core.clock, config: { resultUrlTtlSeconds: 60 } });
    expect(view.priority).toBe("batch");
    // The digests are the server's business.
    expect(JSON.stringify(toEventViews(await core.store.load(jobId)))).not.toContain(job!.cacheDigest!);
  });

  it.each([
    [{ query: { operation: "upscale", priority: "urgent" } }, /priority must be one of interactive, batch/],
    [{ query: { operation: "upscale", cache: "no" } }, /cache must be true or false/],
    [{ rawBody: Buffer.from(JSON.stringify({ operation: "upscale", contentType: "image/jpeg", priority: 1 })) }, /priority must be/],
    [{ rawBody: Buffer.from(JSON.stringify({ operation: "upscale", contentType: "image/jpeg", cache: "false" })) }, /cache must be true or false/],
  ])("refuses %j with 400", async (request, message) => {
    const response = await api(memoryCore())({ headers: { "content-type": "image/jpeg" }, rawBody: await testJpeg(), ...request });
    expect(response.status).toBe(400);
    expect(JSON.stringify(response.body)).toMatch(message);
  });
});

describe("the result cache's key", () => {
  const base = { type: "RequestEdit", jobId: "j1", ownerId: "u1", operation: "upscale", params: { scale: 2 }, flow: "direct", input: { bucket: "b", object: "o" } };

  it("covers every semantic field, added ones included, and none of who, where or how urgent", () => {
    const digest = requestDigest(base);
    expect(requestDigest({ ...base, jobId: "j2", ownerId: "u2", flow: "signed_upload", input: { bucket: "x", object: "y" }, priority: "batch", idempotencyKey: "k" })).toBe(digest);
    expect(requestDigest({ ...base, params: { scale: 4 } })).not.toBe(digest);
    expect(requestDigest({ ...base, operation: "enhance" })).not.toBe(digest);
    // A field the request gains later (an output format) joins the key by itself, in any key order.
    const withOutput = requestDigest({ ...base, output: { format: "webp", quality: 80 } });
    expect(withOutput).not.toBe(digest);
    expect(requestDigest({ ...base, output: { quality: 80, format: "webp" } })).toBe(withOutput);
  });

  it("differs per owner, input and model version", () => {
    const parts = { ownerId: "u1", requestDigest: "d", inputSha256: "i", modelVersion: "1" };
    const key = resultCacheKey(parts);
    for (const change of [{ ownerId: "u2" }, { inputSha256: "j" }, { modelVersion: "2" }, { requestDigest: "e" }]) {
      expect(resultCacheKey({ ...parts, ...change })).not.toBe(key);
    }
  });
});

describe("the worker and the result cache", () => {
  it("answers a repeat of an earlier request of the same user from its result, with no model run", async () => {
    const core = memoryCore();
    const photo = await testJpeg();
    const first = await queuedJob(core, photo, { cache: true });
    await worker(core).process(handDelivery({ jobId: first, operation: "upscale" }));
    const calls = core.inference.calls();
    expect(calls).toBeGreaterThan(0);

    const second = await queuedJob(core, photo, { cache: true, priority: "batch" });
    const delivery = handDelivery({ jobId: second, operation: "upscale" });
    await worker(core).process(delivery);
    expect(delivery.settled).toBe("ack");
    expect(core.inference.calls()).toBe(calls);
    const job = await core.store.getProjection(second);
    const source = await core.store.getProjection(first);
    expect(job).toMatchObject({ status: "succeeded", cachedFrom: first, output: source?.output });
    const succeeded = (await core.store.load(second)).find((event) => event.type === "EditSucceeded");
    expect(succeeded?.data).toMatchObject({ cachedFrom: first, inferenceMs: 0 });
  });

  it("never answers one user from another's result, nor a request that opted out, nor one on other bytes", async () => {
    const core = memoryCore();
    const photo = await testJpeg();
    const first = await queuedJob(core, photo, { cache: true, ownerId: "alice" });
    await worker(core).process(handDelivery({ jobId: first, operation: "upscale" }));
    const others = [
      await queuedJob(core, photo, { cache: true, ownerId: "bob" }),
      await queuedJob(core, photo, { cache: false, ownerId: "alice" }),
      await queuedJob(core, await testJpeg(96, 96), { cache: true, ownerId: "alice" }),
      await queuedJob(core, photo, { cache: true, ownerId: "alice", params: { scale: 4 } }),
    ];
    for (const jobId of others) {
      const calls = core.inference.calls();
      await worker(core).process(handDelivery({ jobId, operation: "upscale" }));
      const job = await core.store.getProjection(jobId);
      expect(job?.status).toBe("succeeded");
      expect(job?.cachedFrom).toBeUndefined();
      expect(core.inference.calls()).toBeGreaterThan(calls);
    }
  });

  it("runs the model again once the earlier result's lifetime is over, or its object is gone", async () => {
    const core = memoryCore();
    const photo = await testJpeg();
    const first = await queuedJob(core, photo, { cache: true });
    await worker(core).process(handDelivery({ jobId: first, operation: "upscale" }));
    core.clock.advance(config.resultsLifecycleDays * 86_400_000);
    const late = await queuedJob(core, photo, { cache: true });
    await worker(core).process(handDelivery({ jobId: late, operation: "upscale" }));
    expect((await core.store.getProjection(late))?.cachedFrom).toBeUndefined();

    const source = await core.store.getProjection(late);
    await core.images.delete(source!.output!);
    const afterDelete = await queuedJob(core, photo, { cache: true });
    await worker(core).process(handDelivery({ jobId: afterDelete, operation: "upscale" }));
    expect((await core.store.getProjection(afterDelete))?.cachedFrom).toBeUndefined();
  });
});

describe("priorities", () => {
  it("sends each job's tiles to Triton at its priority", async () => {
    const core = memoryCore();
    const interactive = await queuedJob(core, await testJpeg());
    await worker(core).process(handDelivery({ jobId: interactive, operation: "upscale" }));
    const batch = await queuedJob(core, await testJpeg(), { priority: "batch" });
    const before = core.inference.priorities().length;
    await worker(core).process(handDelivery({ jobId: batch, operation: "upscale" }));
    expect(new Set(core.inference.priorities().slice(0, before))).toEqual(new Set([TRITON_PRIORITY.interactive]));
    expect(new Set(core.inference.priorities().slice(before))).toEqual(new Set([TRITON_PRIORITY.batch]));
    expect(TRITON_PRIORITY.interactive).toBeLessThan(TRITON_PRIORITY.batch);
  });

  /** Two lanes into `slots` slots; each delivery is held until the test releases it. */
  function lanes(slots: number, batchSlots = defaultBatchSlots(slots)) {
    const interactive = createMemoryJobQueue();
    const batch = createMemoryJobQueue();
    const started: string[] = [];
    const release = new Map<string, () => void>();
    const subscription = createPrioritySubscription(
      { interactive: interactive.subscription(slots), batch: batch.subscription(batchSlots) },
      { slots, batchSlots },
    );
    subscription.start(async (delivery: JobDelivery) => {
      started.push(delivery.message.jobId);
      await new Promise<void>((resolve) => release.set(delivery.message.jobId, resolve));
      delivery.ack();
    });
    const finish = (jobId: string) => release.get(jobId)?.();
    return { interactive, batch, started, finish, subscription };
  }

  it("keeps a slot for interactive work under a batch backlog, and takes interactive work first when a slot frees", async () => {
    const { interactive, batch, started, finish, subscription } = lanes(2);
    for (const n of [1, 2, 3, 4]) await batch.publish({ jobId: `b${n}`, operation: "upscale", priority: "batch" });
    await until("a batch job to start", async () => started.length === 1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    // Two slots, but batch work holds at most one of them.
    expect(started).toEqual(["b1"]);
    await interactive.publish({ jobId: "i1", operation: "upscale" });
    await until("the interactive job to start at once", async () => started.includes("i1"));
    await interactive.publish({ jobId: "i2", operation: "upscale" });
    await new Promise((resolve) => setTimeout(resolve, 20));
    finish("b1");
    // The freed slot goes to the waiting interactive job, not to the next batch job.
    await until("i2 to start", async () => started.includes("i2"));
    expect(started).toEqual(["b1", "i1", "i2"]);
    // With interactive work idle, batch work moves on.
    finish("i1");
    finish("i2");
    await until("the batch backlog to move", async () => started.includes("b2"));
    for (const jobId of ["b2", "b3", "b4"]) {
      await until(`${jobId} to start`, async () => started.includes(jobId));
      finish(jobId);
    }
    await subscription.stop();
  });
});

describe("the job deadline", () => {
  it("fails a live job at its deadline with deadline_exceeded, stops its tile work and leaves no result", async () => {
    const core = memoryCore({ latencyMs: 20 });
    const jobId = await queuedJob(core, await testJpeg(320, 240));
    const delivery = handDelivery({ jobId, operation: "upscale" });
    const running = worker(core, { jobDeadlineSeconds: 5 }).process(delivery);
    await until("the edit to run", async () => core.inference.calls() > 0);
    core.clock.advance(5_000);
    await running;
    const calls = core.inference.calls();
    expect(delivery.settled).toBe("ack");
    const job = await ended(core, jobId);
    expect(job).toMatchObject({ status: "failed", error: { code: "deadline_exceeded" } });
    expect(job.error?.message).toMatch(/did not finish within 5 seconds/);
    expect(core.images.list("results")).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(core.inference.calls()).toBe(calls);
  });

  it("fails a job whose redelivery comes after its deadline, without running it", async () => {
    const core = memoryCore();
    const jobId = await queuedJob(core, await testJpeg());
    await handleCommand(core, jobId, { type: "StartEdit", workerId: "dead", leaseMs: 1_000 });
    await handleCommand(core, jobId, { type: "FailAttempt", workerId: "dead", code: "inference_unavailable", message: "down", maxAttempts: 5 });
    core.clock.advance(301_000);
    await worker(core).process(handDelivery({ jobId, operation: "upscale" }));
    expect(await core.store.getProjection(jobId)).toMatchObject({ status: "failed", error: { code: "deadline_exceeded" } });
    expect(core.inference.calls()).toBe(0);
  });

  it("lets the sweeper fail an orphan past its deadline, and leaves a job within it", async () => {
    const core = memoryCore();
    const orphan = await queuedJob(core, await testJpeg());
    await handleCommand(core, orphan, { type: "StartEdit", workerId: "dead", leaseMs: 1_000 });
    core.clock.advance(200_000);
    const young = await queuedJob(core, await testJpeg());
    await handleCommand(core, young, { type: "StartEdit", workerId: "alive", leaseMs: 600_000 });
    core.clock.advance(101_000);
    const sweep = createJobSweeper({ ...core, config: { maxAttempts: 3, queuedRepublishSeconds: 86_400, signedUrlTtlSeconds: 600, jobDeadlineSeconds: 300 } });
    const result = await sweep();
    expect(result.overdue).toEqual([orphan]);
    expect(result.requeued).toEqual([]);
    expect(await core.store.getProjection(orphan)).toMatchObject({ status: "failed", error: { code: "deadline_exceeded" } });
    expect((await core.store.getProjection(young))?.status).toBe("running");
  });
});
