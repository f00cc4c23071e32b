/**
 * The worker against real parts: Pub/Sub, Firestore and Cloud Storage emulators and a real
 * Triton server running every edit's model. The worker's rules (duplicates, leases, failures,
 * the readiness gate, cancellation, decoding) are unit-tested through the doubles in
 * test/unit/jobWorker.unit.test.ts; this file keeps what only the real parts show.
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import type { Subscription } from "@google-cloud/pubsub";
import sharp from "sharp";
import type { Operation } from "../../events/operations.js";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createFirestoreEventStore } from "../../adapters/firestore/firestoreEventStore.js";
import { createPubsubJobQueue, createPubsubJobSubscription } from "../../adapters/pubsub/pubsubJobQueue.js";
import { createGcsImageStore } from "../../adapters/storage/gcsImageStore.js";
import { handleCommand } from "../../events/handleCommand.js";
import type { JobState } from "../../events/jobState.js";
import type { InferenceClient } from "../../events/inferenceClient.js";
import { createWorker, resultObjectName, type Worker } from "../../workers/jobWorker.js";
import { createTritonClient } from "../../adapters/triton/tritonClient.js";
import { emulatorClients } from "../support/clients.js";
import { ensurePhotos } from "../../local/bench/photos.js";
import { sharedTriton, type SharedTriton } from "../support/tritonServer.js";
import { WORKER_TEST_CONFIG } from "../support/workerTestConfig.js";

const services = inject("services");
const { firestore, pubsub, storage } = emulatorClients(services);
const store = createFirestoreEventStore(firestore);
const images = createGcsImageStore(storage);
const clock = { now: () => new Date() };
const uploadsBucket = `uploads-${randomUUID()}`;
const resultsBucket = `results-${randomUUID()}`;

let triton: SharedTriton;
let inference: InferenceClient;
let photo: Buffer;
const running: Array<{ worker: Worker; close: () => Promise<void> }> = [];

const workerConfig = { ...WORKER_TEST_CONFIG, resultsBucket };

beforeAll(async () => {
  triton = await sharedTriton();
  inference = createTritonClient({ url: triton.grpcUrl });
  await storage.createBucket(uploadsBucket);
  await storage.createBucket(resultsBucket);
  photo = await sharp(join(await ensurePhotos(), "astronaut.png")).resize(96, 80).jpeg().toBuffer();
});

afterAll(async () => {
  for (const { worker, close } of running) {
    await worker.stop();
    await close();
  }
  inference?.close();
  await Promise.all([firestore.terminate(), pubsub.close()]);
});

/** A fresh topic and subscription (with a dead-letter policy, so Pub/Sub counts deliveries). */
async function queue() {
  const name = `jobs-${randomUUID()}`;
  const [topic] = await pubsub.createTopic(name);
  const [deadLetter] = await pubsub.createTopic(`${name}-dlq`);
  await topic.createSubscription(`${name}-worker`, {
    ackDeadlineSeconds: 20,
    deadLetterPolicy: { deadLetterTopic: deadLetter.name, maxDeliveryAttempts: 5 },
    retryPolicy: { minimumBackoff: { seconds: 1 }, maximumBackoff: { seconds: 2 } },
  });
  return { publisher: createPubsubJobQueue(pubsub, name), subscription: `${name}-worker` };
}

/** What the test's workers logged: message and job of each line. */
const logged: Array<{ message: string; jobId?: unknown }> = [];

function startWorker(subscriptionName: string, workerId: string, client = inference): Worker {
  const subscription = createPubsubJobSubscription(pubsub, subscriptionName, { maxInFlight: 2, maxExtensionSeconds: 60 });
  const log = (entry: { message: string; jobId?: unknown }) => void logged.push({ message: entry.message, jobId: entry.jobId });
  const worker = createWorker({ store, images, subscription, inference: client, clock, config: { ...workerConfig, workerId }, log });
  worker.start();
  running.push({ worker, close: async () => {} });
  return worker;
}

async function queuedJob(bytes: Buffer, params: Record<string, number> = { scale: 4 }, operation: Operation = "upscale"): Promise<string> {
  const jobId = randomUUID();
  const input = { bucket: uploadsBucket, object: `uploads/${jobId}`, contentType: "image/jpeg" };
  await handleCommand({ store, clock }, jobId, { type: "RequestEdit", jobId, ownerId: "owner", operation, params, flow: "direct", input });
  await images.write(input, bytes, "image/jpeg");
  await handleCommand({ store, clock }, jobId, { type: "RecordUpload", ...input, sizeBytes: bytes.length });
  return jobId;
}

async function settled(jobId: string, ms = 60_000): Promise<JobState> {
  const deadline = Date.now() + ms;
  for (;;) {
    const job = await store.getProjection(jobId);
    if (job && ["succeeded", "failed", "canceled"].includes(job.status)) return job;
    if (Date.now() > deadline) throw new Error(`job ${jobId} is still ${job?.status}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

const types = async (jobId: string) => (await store.load(jobId)).map((event) => event.type);

describe("job worker", () => {
  it("upscales a photo ×4 through Triton, writes one result and records each step", async () => {
    const { publisher, subscription } = await queue();
    startWorker(subscription, `w-${randomUUID()}`);
    const jobId = await queuedJob(photo);
    await publisher.publish({ jobId, operation: "upscale" });
    const job = await settled(jobId);
    expect(job.status).toBe("succeeded");
    expect(job.output).toMatchObject({ bucket: resultsBucket, object: resultObjectName(jobId), width: 384, height: 320, contentType: "image/png" });
    const [bytes] = await storage.bucket(resultsBucket).file(resultObjectName(jobId)).download();
    const meta = await sharp(bytes).metadata();
    expect([meta.width, meta.height, meta.format]).toEqual([384, 320, "png"]);
    const steps = (await types(jobId)).filter((type) => type !== "EditProgressed");
    expect(steps).toEqual(["EditRequested", "ImageUploaded", "EditQueued", "EditStarted", "EditSucceeded"]);
    const succeeded = (await store.load(jobId)).at(-1);
    expect((succeeded?.data as { inferenceMs: number }).inferenceMs).toBeGreaterThan(0);
  });

  it("records tile progress in the log, at most once a second, while the edit runs", async () => {
    const { publisher, subscription } = await queue();
    startWorker(subscription, `w-${randomUUID()}`);
    // 160×112 in 64 px tiles with 8 px overlap: 4 × 3 cores of 48 px. How often progress is
    // recorded, against the clock, is the unit tier's (jobWorker.unit.test.ts); here, that it
    // reaches the stored log while the edit runs, and leaves the projection at the end.
    const jobId = await queuedJob(await sharp(photo).resize(160, 112).jpeg().toBuffer(), { scale: 4 });
    await publisher.publish({ jobId, operation: "upscale" });
    expect((await settled(jobId)).status).toBe("succeeded");
    const progressed = (await store.load(jobId)).filter((event) => event.type === "EditProgressed");
    expect(progressed.length).toBeGreaterThan(0);
    const data = progressed.map((event) => event.data as { tilesDone: number; tilesTotal: number });
    expect(new Set(data.map((d) => d.tilesTotal))).toEqual(new Set([12]));
    for (let i = 1; i < progressed.length; i += 1) {
      expect(data[i]!.tilesDone).toBeGreaterThan(data[i - 1]!.tilesDone);
      expect(Date.parse(progressed[i]!.at) - Date.parse(progressed[i - 1]!.at)).toBeGreaterThanOrEqual(1_000);
    }
    expect((await store.getProjection(jobId))?.progress).toBeUndefined();
  });

  it.each([
    ["enhance", { strength: 0.5 }, 3],
    ["comic", { strength: 0.7 }, 3],
    ["aged", { strength: 0.7 }, 3],
    ["remove_background", {}, 4],
  ] as const)("runs %s through its Triton model into a PNG of the photo's size", async (operation, params, channels) => {
    const { publisher, subscription } = await queue();
    startWorker(subscription, `w-${randomUUID()}`);
    const portrait = await sharp(join(await ensurePhotos(), "astronaut.png")).resize(160, 160).jpeg().toBuffer();
    const jobId = await queuedJob(portrait, { ...params }, operation);
    await publisher.publish({ jobId, operation });
    const job = await settled(jobId, 120_000);
    expect(job.status, job.error?.message).toBe("succeeded");
    const [bytes] = await storage.bucket(resultsBucket).file(resultObjectName(jobId)).download();
    const { data, info } = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([160, 160, channels]);
    const original = await sharp(portrait).raw().toBuffer();
    if (operation === "remove_background") {
      // The wall behind the astronaut (top right) goes transparent; her face (centre top) stays.
      expect(data[(10 * 160 + 150) * 4 + 3]).toBeLessThan(30);
      expect(data[(45 * 160 + 72) * 4 + 3]).toBeGreaterThan(220);
    } else {
      let changed = 0;
      for (let i = 0; i < original.length; i += 1) if (Math.abs((data[i] as number) - (original[i] as number)) > 2) changed += 1;
      expect(changed).toBeGreaterThan(original.length / 20);
    }
  });

  it("turns three copies of one message, to two workers, into exactly one result", async () => {
    const { publisher, subscription } = await queue();
    startWorker(subscription, `w-${randomUUID()}`);
    startWorker(subscription, `w-${randomUUID()}`);
    const jobId = await queuedJob(photo, { scale: 2 });
    await Promise.all([1, 2, 3].map(() => publisher.publish({ jobId, operation: "upscale" })));
    const job = await settled(jobId);
    expect(job.status).toBe("succeeded");
    // The two other copies come round (a copy handed back while the job ran comes again) and are
    // settled with no work.
    const needless = () => logged.filter((line) => line.jobId === jobId && line.message === "delivery needs no work").length;
    for (const giveUpAt = Date.now() + 30_000; needless() < 2 && Date.now() < giveUpAt; ) await new Promise((resolve) => setTimeout(resolve, 200));
    expect(needless()).toBeGreaterThanOrEqual(2);
    const log = await types(jobId);
    expect(log.filter((type) => type === "EditSucceeded")).toHaveLength(1);
    expect(log.filter((type) => type === "EditStarted")).toHaveLength(1);
    const [files] = await storage.bucket(resultsBucket).getFiles({ prefix: `results/${jobId}/` });
    expect(files.map((file) => file.name)).toEqual([resultObjectName(jobId)]);
  });
});
