/**
 * Poison messages and the dead-letter handler. A job whose every attempt fails with a retryable
 * error (its input reference is one Cloud Storage refuses, 400, on every read) spends its five
 * deliveries and reaches the dead-letter topic; the handler appends EditFailed with the reason,
 * while the worker keeps finishing other jobs. The handler also reads the log before it acts: a
 * dead letter for a job that has ended, or that a live worker holds, changes nothing.
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createGcsImageStore } from "../../adapters/storage/gcsImageStore.js";
import { handleCommand } from "../../events/handleCommand.js";
import { emulatorIdToken } from "../../local/auth/emulatorUsers.js";
import { ensurePhotos } from "../../local/bench/photos.js";
import { callApi, checkOnce, privateInputsBucket, recordCounts, stackClients, waitForEnd } from "../support/faultKit.js";

const stack = inject("faultStack");
let inputsBucket: string;
const clients = stackClients(stack);
const deps = { store: clients.store, clock: { now: () => new Date() } };
const images = createGcsImageStore(clients.storage);
let photo: Buffer;
let token: string;
const submitted: string[] = [];

beforeAll(async () => {
  inputsBucket = await privateInputsBucket(clients);
  photo = await sharp(join(await ensurePhotos(), "coffee.png")).resize(40, 32).jpeg().toBuffer();
  token = await emulatorIdToken(stack.emulatorEnv.FIREBASE_AUTH_EMULATOR_HOST!, `poison-${randomUUID()}`);
});

afterAll(async () => {
  const verdicts = await Promise.all(submitted.map((jobId) => checkOnce(clients, stack.names.resultsBucket, jobId)));
  recordCounts(stack, {
    suite: "poison",
    jobsSubmitted: submitted.length,
    lost: verdicts.filter((verdict) => verdict.lost).length,
    doubled: verdicts.filter((verdict) => verdict.doubled).length,
  });
  await Promise.all([clients.firestore.terminate(), clients.pubsub.close()]);
});

async function queuedJob(bucket = inputsBucket): Promise<string> {
  const jobId = randomUUID();
  const input = { bucket, object: `uploads/${jobId}`, contentType: "image/jpeg" };
  await handleCommand(deps, jobId, { type: "RequestEdit", jobId, ownerId: "poison-owner", operation: "upscale", params: { scale: 2 }, flow: "direct", input });
  if (bucket === inputsBucket) await images.write(input, photo, "image/jpeg");
  await handleCommand(deps, jobId, { type: "RecordUpload", ...input, sizeBytes: photo.length });
  submitted.push(jobId);
  return jobId;
}

const deadLetter = (jobId: string, deliveries = 5) =>
  clients.pubsub.topic(stack.names.deadLetterTopic).publishMessage({
    json: { jobId, operation: "upscale" },
    attributes: { CloudPubSubDeadLetterSourceDeliveryCount: String(deliveries) },
  });

describe("poison messages", () => {
  it("dead-letters a job that fails every attempt, fails it with the reason, and keeps serving other jobs", async () => {
    // A bucket name Cloud Storage answers with 400 on every read: retryable to the worker, every time.
    const poison = await queuedJob("%zz");
    await clients.pubsub.topic(stack.names.jobsTopic).publishMessage({ json: { jobId: poison, operation: "upscale" } });
    const others: string[] = [];
    for (let index = 0; index < 10; index += 1) {
      const created = await callApi<{ jobId: string }>(stack, token, "POST", "/v1/edits?operation=upscale&params.scale=2&cache=false", {
        body: photo,
        headers: { "content-type": "image/jpeg" },
      });
      expect(created.status).toBe(202);
      others.push(created.body.jobId);
      submitted.push(created.body.jobId);
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
    const othersEnded = await waitForEnd(clients.firestore, others, 120_000);
    for (const jobId of others) expect(othersEnded.get(jobId)?.status, jobId).toBe("succeeded");

    const [job] = (await waitForEnd(clients.firestore, [poison], 180_000)).values();
    expect(job).toMatchObject({ status: "failed", error: { code: "dead_lettered" } });
    expect(job?.error?.message).toMatch(/given up after 5 deliveries.*Storage is unavailable/);
    const events = await clients.store.load(poison);
    // Five deliveries, five attempts, each put back in the queue; the handler ended it.
    expect(events.filter((event) => event.type === "EditStarted")).toHaveLength(5);
    expect(events.filter((event) => event.type === "EditAttemptFailed")).toHaveLength(5);
    expect(events.at(-1)?.type).toBe("EditFailed");
    // The other jobs were served while the poison went round.
    const lastOther = Math.max(...(await Promise.all(others.map(async (jobId) => Date.parse((await clients.store.load(jobId)).at(-1)?.at ?? "")))));
    const firstPoisonStart = Date.parse(events.find((event) => event.type === "EditStarted")?.at ?? "");
    expect(lastOther).toBeGreaterThan(firstPoisonStart);
  });

  it("leaves a dead-lettered job alone when it has ended, or when a live worker holds it", async () => {
    const ended = await queuedJob();
    await handleCommand(deps, ended, { type: "CancelEdit", by: "poison-owner" });
    const held = await queuedJob();
    await handleCommand(deps, held, { type: "StartEdit", workerId: "long-job-worker", leaseMs: 120_000 });
    const lapsed = await queuedJob();
    await handleCommand(deps, lapsed, { type: "StartEdit", workerId: "dead-worker", leaseMs: 1 });
    await Promise.all([deadLetter(ended), deadLetter(held), deadLetter(lapsed)]);
    const [lapsedJob] = (await waitForEnd(clients.firestore, [lapsed], 30_000)).values();
    // The lapsed one ended one way or the other (the handler, or the sweeper before it).
    expect(["failed", "succeeded"]).toContain(lapsedJob?.status);
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect((await clients.store.load(ended)).map((event) => event.type).at(-1)).toBe("EditCanceled");
    expect(await clients.store.getProjection(held)).toMatchObject({ status: "running", workerId: "long-job-worker" });
    expect((await clients.store.load(held)).some((event) => event.type === "EditFailed")).toBe(false);
    // Let the long job end, as its worker would.
    await handleCommand(deps, held, { type: "CancelEdit", by: "poison-owner" });
  });
});
