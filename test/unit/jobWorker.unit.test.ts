/**
 * The worker's rules through the in-memory doubles: what a delivery does, decided by the job's
 * log (duplicates, live and lapsed leases, retryable and permanent failures), the Triton
 * readiness gate, tile progress against the clock, cancellation while running, and what the
 * decode does to a photo. The same worker against the emulators and a real Triton is
 * test/int/jobWorker.int.test.ts.
 */
import sharp from "sharp";
import { afterEach, describe, expect, it } from "vitest";
import { handleCommand } from "../../events/handleCommand.js";
import { StoreUnavailableError } from "../../events/errors.js";
import { InferenceError } from "../../events/inferenceClient.js";
import { createWorker, resultObjectName, type Worker } from "../../workers/jobWorker.js";
import { WORKER_TEST_CONFIG } from "../support/workerTestConfig.js";
import { ended, eventTypes, handDelivery, memoryCore, queuedJob, testJpeg, until, type MemoryCore } from "../support/coreFixtures.js";

const RESULTS = "results";
const LEASE_MS = 60_000;
const config = { ...WORKER_TEST_CONFIG, resultsBucket: RESULTS, leaseSeconds: LEASE_MS / 1000, cancelCheckMs: 10, tritonReadyPollMs: 10 };

const started: Worker[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((worker) => worker.stop()));
});

function worker(core: MemoryCore, workerId = "w1", start = false, settings: Partial<typeof config> = {}): Worker {
  const made = createWorker({
    store: core.store,
    images: core.images,
    subscription: core.queue.subscription(),
    inference: core.inference,
    clock: core.clock,
    config: { ...config, ...settings, workerId },
    log: core.log,
    holderPollMs: 5,
  });
  if (start) {
    made.start();
    started.push(made);
  }
  return made;
}

describe("a delivery of a queued job", () => {
  it("runs the edit, writes one result under the job's name and records each step", async () => {
    const core = memoryCore();
    const jobId = await queuedJob(core, await testJpeg(), { params: { scale: 4 } });
    const delivery = handDelivery({ jobId, operation: "upscale" });
    await worker(core).process(delivery);
    expect(delivery.settled).toBe("ack");
    const job = await core.store.getProjection(jobId);
    expect(job).toMatchObject({ status: "succeeded", output: { bucket: RESULTS, object: resultObjectName(jobId), width: 384, height: 320 } });
    expect(core.images.list(RESULTS)).toEqual([resultObjectName(jobId)]);
    const png = await sharp(await core.images.read({ bucket: RESULTS, object: resultObjectName(jobId) }, 10_000_000)).metadata();
    expect([png.width, png.height, png.format]).toEqual([384, 320, "png"]);
    expect((await eventTypes(core, jobId)).filter((type) => type !== "EditProgressed")).toEqual([
      "EditRequested",
      "ImageUploaded",
      "EditQueued",
      "EditStarted",
      "EditSucceeded",
    ]);
  });

  it.each(["enhance", "comic", "aged", "remove_background"] as const)("runs %s into a PNG of the photo's size", async (operation) => {
    const core = memoryCore();
    const jobId = await queuedJob(core, await testJpeg(64, 64), { operation });
    await worker(core).process(handDelivery({ jobId, operation }));
    const job = await core.store.getProjection(jobId);
    expect(job?.status, job?.error?.message).toBe("succeeded");
    const out = await sharp(await core.images.read({ bucket: RESULTS, object: resultObjectName(jobId) }, 10_000_000)).metadata();
    expect([out.width, out.height, out.channels]).toEqual([64, 64, operation === "remove_background" ? 4 : 3]);
  });
});

/** A job another worker ("holder") runs, and a copy of its message being processed by "w2". */
async function copyWhileHeld() {
  const core = memoryCore();
  const jobId = await queuedJob(core, await testJpeg());
  await handleCommand(core, jobId, { type: "StartEdit", workerId: "holder", leaseMs: LEASE_MS });
  const copy = handDelivery({ jobId, operation: "upscale" }, 2);
  return { core, jobId, copy, waiting: worker(core, "w2").process(copy) };
}

describe("the delivery rules", () => {
  it("changes nothing on a duplicate delivery of a finished job, and acks it", async () => {
    const core = memoryCore();
    const jobId = await queuedJob(core, await testJpeg());
    await worker(core).process(handDelivery({ jobId, operation: "upscale" }));
    const before = await core.store.load(jobId);
    const duplicate = handDelivery({ jobId, operation: "upscale" }, 2);
    await worker(core, "w2").process(duplicate);
    expect(duplicate.settled).toBe("ack");
    expect(await core.store.load(jobId)).toEqual(before);
    expect(core.logger.messages()).toContain("delivery needs no work");
  });

  it("waits while another live worker holds the job, and then changes nothing when that worker finishes", async () => {
    const { core, jobId, copy, waiting } = await copyWhileHeld();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(copy.settled).toBeUndefined();
    await handleCommand(core, jobId, {
      type: "CompleteEdit",
      workerId: "holder",
      output: { bucket: RESULTS, object: resultObjectName(jobId), contentType: "image/png", width: 192, height: 160, sizeBytes: 10 },
      processingMs: 1,
      inferenceMs: 1,
    });
    await waiting;
    expect(copy.settled).toBe("ack");
    expect((await eventTypes(core, jobId)).filter((type) => type === "EditStarted")).toHaveLength(1);
    expect(core.images.list(RESULTS)).toEqual([]);
  });

  it("takes over a job whose holder's lease lapsed, and finishes it", async () => {
    const core = memoryCore();
    const jobId = await queuedJob(core, await testJpeg());
    await handleCommand(core, jobId, { type: "StartEdit", workerId: "dead", leaseMs: LEASE_MS });
    core.clock.advance(LEASE_MS + 1_000);
    const copy = handDelivery({ jobId, operation: "upscale" }, 2);
    await worker(core, "w2").process(copy);
    expect(copy.settled).toBe("ack");
    const events = await core.store.load(jobId);
    const starts = events.filter((event) => event.type === "EditStarted").map((event) => (event.data as { workerId: string }).workerId);
    expect(starts).toEqual(["dead", "w2"]);
    expect(await core.store.getProjection(jobId)).toMatchObject({ status: "succeeded" });
    expect(events.at(-1)).toMatchObject({ type: "EditSucceeded", data: { workerId: "w2" } });
  });

  it("hands a copy back when the holder still beats after a whole lease", async () => {
    const { core, jobId, copy, waiting } = await copyWhileHeld();
    await new Promise((resolve) => setTimeout(resolve, 20));
    core.clock.advance(LEASE_MS / 2);
    await handleCommand(core, jobId, { type: "RenewLease", workerId: "holder", leaseMs: LEASE_MS });
    core.clock.advance(LEASE_MS / 2 + 1_000);
    await waiting;
    expect(copy.settled).toBe("nack");
    expect(await core.store.getProjection(jobId)).toMatchObject({ status: "running", workerId: "holder" });
  });

  it("turns three copies of one message, to two workers, into exactly one result", async () => {
    const core = memoryCore({ latencyMs: 5 });
    worker(core, "w1", true);
    worker(core, "w2", true);
    const jobId = await queuedJob(core, await testJpeg());
    await Promise.all([1, 2, 3].map(() => core.queue.publish({ jobId, operation: "upscale" })));
    expect((await ended(core, jobId)).status).toBe("succeeded");
    await core.queue.drained();
    const types = await eventTypes(core, jobId);
    expect(types.filter((type) => type === "EditSucceeded")).toHaveLength(1);
    expect(types.filter((type) => type === "EditStarted")).toHaveLength(1);
    expect(core.images.list(RESULTS)).toEqual([resultObjectName(jobId)]);
  });

  it("retries a job the model server could not take, and fails it for good after its last attempt", async () => {
    const core = memoryCore();
    const jobId = await queuedJob(core, await testJpeg());
    core.inference.setFailure(new InferenceError("unavailable", "connection refused", { code: 14 }));
    const first = handDelivery({ jobId, operation: "upscale" });
    await worker(core).process(first);
    expect(first.settled).toBe("nack");
    expect(await core.store.getProjection(jobId)).toMatchObject({ status: "queued", attempts: 1, error: { code: "inference_unavailable" } });
    const second = handDelivery({ jobId, operation: "upscale" }, 2);
    await worker(core).process(second);
    expect(second.settled).toBe("ack");
    const job = await core.store.getProjection(jobId);
    expect(job).toMatchObject({ status: "failed", error: { code: "inference_unavailable" } });
    expect(job?.error?.message).toMatch(/model server is unavailable/);
    expect(core.images.list(RESULTS)).toEqual([]);
  });

  it("fails at once, and acks, when the model refuses the image", async () => {
    const core = memoryCore();
    const jobId = await queuedJob(core, await testJpeg());
    core.inference.setFailure(new InferenceError("invalid_request", "SCALE must be one of [2, 4]", { code: 3 }));
    const delivery = handDelivery({ jobId, operation: "upscale" });
    await worker(core).process(delivery);
    expect(delivery.settled).toBe("ack");
    const job = await core.store.getProjection(jobId);
    expect(job).toMatchObject({ status: "failed", attempts: 1, error: { code: "inference_failed" } });
    expect(job?.error?.message).toMatch(/could not process the image: SCALE must be one of/);
  });

  it("fails a job whose upload is not an image, with a readable reason, and does not retry it", async () => {
    const core = memoryCore();
    const jobId = await queuedJob(core, Buffer.from("this is text, not a photo"));
    const delivery = handDelivery({ jobId, operation: "upscale" });
    await worker(core).process(delivery);
    expect(delivery.settled).toBe("ack");
    const job = await core.store.getProjection(jobId);
    expect(job).toMatchObject({ status: "failed", error: { code: "unsupported_image" } });
    expect(job?.error?.message).toMatch(/not an image/);
    expect(core.inference.calls()).toBe(0);
  });

  it("fails a job whose upload is gone, and retries one whose storage is down", async () => {
    const core = memoryCore();
    const gone = await queuedJob(core, await testJpeg());
    await core.images.delete({ bucket: "uploads", object: `uploads/${gone}` });
    await worker(core).process(handDelivery({ jobId: gone, operation: "upscale" }));
    expect(await core.store.getProjection(gone)).toMatchObject({ status: "failed", error: { code: "input_missing" } });

    const down = await queuedJob(core, await testJpeg());
    core.images.setUnavailable(true);
    const delivery = handDelivery({ jobId: down, operation: "upscale" });
    await worker(core).process(delivery);
    expect(delivery.settled).toBe("nack");
    expect(await core.store.getProjection(down)).toMatchObject({ status: "queued", attempts: 1, error: { code: "storage_unavailable" } });
  });

  it("hands the message back when not even the failure can be recorded", async () => {
    const core = memoryCore();
    const jobId = await queuedJob(core, await testJpeg());
    core.inference.setFailure(new InferenceError("unavailable", "connection refused"));
    const append = core.store.append;
    let appends = 0;
    core.store.append = async (...args) => {
      // EditStarted goes through; the failed attempt does not.
      if (++appends > 1) throw new Error("Firestore is unavailable");
      return append(...args);
    };
    const delivery = handDelivery({ jobId, operation: "upscale" });
    await worker(core).process(delivery);
    expect(delivery.settled).toBe("nack");
    expect(core.logger.messages()).toContain("could not record a failure");
  });
});

describe("an output written before its success could be recorded", () => {
  /** A store whose appends of EditSucceeded miss their deadline, as a slow or absent Firestore's do. */
  function successNotRecorded(core: MemoryCore): void {
    const append = core.store.append;
    core.store.append = async (...args) => {
      if (args[2].some((event) => event.type === "EditSucceeded")) throw new StoreUnavailableError("Firestore did not answer within 5000 ms");
      return append(...args);
    };
  }

  it("is deleted when the job then fails by its deadline, by the next delivery that finds it ended", async () => {
    const core = memoryCore();
    const jobId = await queuedJob(core, await testJpeg());
    successNotRecorded(core);
    const first = handDelivery({ jobId, operation: "upscale" });
    await worker(core).process(first);
    // The attempt wrote its output, could not record the success, and handed the message back.
    expect(first.settled).toBe("nack");
    expect(core.images.list(RESULTS)).toEqual([resultObjectName(jobId)]);
    // The sweeper fails the job at its deadline; the message comes back to a worker.
    core.clock.advance(config.jobDeadlineSeconds * 1000);
    expect((await handleCommand(core, jobId, { type: "ExpireDeadline", deadlineMs: config.jobDeadlineSeconds * 1000 })).rejection).toBeUndefined();
    const again = handDelivery({ jobId, operation: "upscale" }, 2);
    await worker(core).process(again);
    expect(again.settled).toBe("ack");
    expect(await core.store.getProjection(jobId)).toMatchObject({ status: "failed", error: { code: "deadline_exceeded" } });
    expect(core.images.list(RESULTS)).toEqual([]);
  });

  it("is deleted when that failure was the job's last attempt", async () => {
    const core = memoryCore();
    const jobId = await queuedJob(core, await testJpeg());
    successNotRecorded(core);
    const delivery = handDelivery({ jobId, operation: "upscale" });
    await worker(core, "w1", false, { maxAttempts: 1 }).process(delivery);
    expect(delivery.settled).toBe("ack");
    expect(await core.store.getProjection(jobId)).toMatchObject({ status: "failed", error: { code: "store_unavailable" } });
    expect(core.images.list(RESULTS)).toEqual([]);
  });

  it("stays when the job is still to be tried again, and the next attempt's success keeps it", async () => {
    const core = memoryCore();
    const jobId = await queuedJob(core, await testJpeg());
    const append = core.store.append;
    successNotRecorded(core);
    await worker(core).process(handDelivery({ jobId, operation: "upscale" }));
    core.store.append = append;
    await worker(core).process(handDelivery({ jobId, operation: "upscale" }, 2));
    expect(await core.store.getProjection(jobId)).toMatchObject({ status: "succeeded" });
    expect(core.images.list(RESULTS)).toEqual([resultObjectName(jobId)]);
  });
});

describe("tile progress", () => {
  it("records progress in the job's log at most once per PROGRESS_INTERVAL_MS of the clock, rising, and never the whole", async () => {
    const core = memoryCore();
    // One tile in flight at a time, each taking 150 ms of the test's clock: 35 tiles make 5.25 s.
    const infer = core.inference.infer.bind(core.inference);
    core.inference.infer = async (request) => {
      core.clock.advance(150);
      return infer(request);
    };
    const oneAtATime = createWorker({
      store: core.store,
      images: core.images,
      subscription: core.queue.subscription(),
      inference: core.inference,
      clock: core.clock,
      config: { ...config, workerId: "w1", tritonMaxInFlight: 1 },
      log: core.log,
    });
    // 320×240 in 64 px tiles with 8 px overlap: 7 × 5 cores of 48 px.
    const jobId = await queuedJob(core, await testJpeg(320, 240), { params: { scale: 4 } });
    await oneAtATime.process(handDelivery({ jobId, operation: "upscale" }));
    expect((await core.store.getProjection(jobId))?.status).toBe("succeeded");
    const progressed = (await core.store.load(jobId)).filter((event) => event.type === "EditProgressed");
    const data = progressed.map((event) => event.data as { tilesDone: number; tilesTotal: number });
    // A report per tile would make 34 events: the interval, not the tile count, decides.
    expect(progressed.length).toBeGreaterThanOrEqual(4);
    expect(progressed.length).toBeLessThanOrEqual(6);
    expect(new Set(data.map((d) => d.tilesTotal))).toEqual(new Set([35]));
    for (let i = 1; i < progressed.length; i += 1) {
      expect(data[i]!.tilesDone).toBeGreaterThan(data[i - 1]!.tilesDone);
      expect(Date.parse(progressed[i]!.at) - Date.parse(progressed[i - 1]!.at)).toBeGreaterThanOrEqual(config.progressIntervalMs);
    }
    expect(data.at(-1)!.tilesDone).toBeLessThan(35);
    expect((await core.store.getProjection(jobId))?.progress).toBeUndefined();
  });
});

describe("the readiness gate", () => {
  it("holds jobs while the model server is not ready, without spending their attempts, and runs them once it is", async () => {
    const core = memoryCore();
    core.inference.setAvailable(false);
    worker(core, "w1", true);
    const jobId = await queuedJob(core, await testJpeg());
    await core.queue.publish({ jobId, operation: "upscale" });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await core.store.getProjection(jobId)).toMatchObject({ status: "queued", attempts: 0 });
    expect(await eventTypes(core, jobId)).toEqual(["EditRequested", "ImageUploaded", "EditQueued"]);
    core.inference.setAvailable(true);
    expect((await ended(core, jobId)).status).toBe("succeeded");
  });
});

describe("cancellation", () => {
  it("stops a running edit when the job is canceled, and leaves no result", async () => {
    const core = memoryCore({ latencyMs: 50 });
    const jobId = await queuedJob(core, await testJpeg(320, 240));
    const delivery = handDelivery({ jobId, operation: "upscale" });
    const running = worker(core).process(delivery);
    await until("the edit to start", async () => (await core.store.getProjection(jobId))?.status === "running");
    await handleCommand(core, jobId, { type: "CancelEdit", by: "owner" });
    await running;
    expect(delivery.settled).toBe("ack");
    expect(await core.store.getProjection(jobId)).toMatchObject({ status: "canceled" });
    expect(core.images.list(RESULTS)).toEqual([]);
    expect(core.logger.messages()).toContain("edit stopped");
  });
});

describe("what the decode does to a photo", () => {
  it("keeps transparency", async () => {
    const core = memoryCore();
    const rgba = Buffer.alloc(96 * 80 * 4);
    for (let i = 0; i < 96 * 80; i += 1) rgba.set([200, 40, 40, i % 96 < 48 ? 0 : 255], i * 4);
    const png = await sharp(rgba, { raw: { width: 96, height: 80, channels: 4 } }).png().toBuffer();
    const jobId = await queuedJob(core, png);
    await worker(core).process(handDelivery({ jobId, operation: "upscale" }));
    const { data, info } = await sharp(await core.images.read({ bucket: RESULTS, object: resultObjectName(jobId) }, 10_000_000))
      .raw()
      .toBuffer({ resolveWithObject: true });
    expect(info.channels).toBe(4);
    expect(data[(80 * info.width + 20) * 4 + 3]).toBe(0);
    expect(data[(80 * info.width + 170) * 4 + 3]).toBe(255);
  });

  it("turns an EXIF-rotated photo upright", async () => {
    const core = memoryCore();
    const upright = await sharp({ create: { width: 96, height: 40, channels: 3, background: "#e02020" } })
      .extend({ bottom: 40, background: "#2020e0" })
      .raw()
      .toBuffer({ resolveWithObject: true });
    const rotated = await sharp(upright.data, { raw: upright.info }).rotate(-90).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    const jobId = await queuedJob(core, rotated);
    await worker(core).process(handDelivery({ jobId, operation: "upscale" }));
    const { data, info } = await sharp(await core.images.read({ bucket: RESULTS, object: resultObjectName(jobId) }, 10_000_000))
      .raw()
      .toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([192, 160]);
    expect(data[(20 * info.width + 96) * info.channels]).toBeGreaterThan(150);
    expect(data[(140 * info.width + 96) * info.channels + 2]).toBeGreaterThan(150);
  });

  it.each([
    ["converts a CMYK JPEG to sRGB", () => sharp({ create: { width: 96, height: 80, channels: 3, background: "#c86432" } }).toColourspace("cmyk").jpeg().toBuffer(), [0, 1], 16],
    ["reduces a 16-bit PNG to 8 bits", () => sharp({ create: { width: 96, height: 80, channels: 3, background: "#c86432" } }).toColourspace("rgb16").png().toBuffer(), [0, 2], 12],
  ] as const)("%s", async (_name, make, channels, tolerance) => {
    const core = memoryCore();
    const jobId = await queuedJob(core, await make());
    await worker(core).process(handDelivery({ jobId, operation: "upscale" }));
    const { data, info } = await sharp(await core.images.read({ bucket: RESULTS, object: resultObjectName(jobId) }, 10_000_000))
      .raw()
      .toBuffer({ resolveWithObject: true });
    expect(info.channels).toBe(3);
    const colour = [200, 100, 50];
    for (const channel of channels) expect(Math.abs((data[channel] as number) - (colour[channel] as number))).toBeLessThan(tolerance);
  });
});
