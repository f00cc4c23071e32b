/**
 * The job deadline on the real stack: a worker with JOB_DEADLINE_SECONDS=5, on a subscription of
 * the test's own, runs an edit that needs far longer; at the deadline the job fails with
 * `deadline_exceeded` and a sentence, its tile work stops mid-way, and no output is left.
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createGcsImageStore } from "../../adapters/storage/gcsImageStore.js";
import { handleCommand } from "../../events/handleCommand.js";
import { ensurePhotos } from "../../local/bench/photos.js";
import { freePort, type RunningProcess } from "../../local/stack/processes.js";
import { checkOnce, privateInputsBucket, recordCounts, stackClients, startWorkerProcess, waitForEnd } from "../support/faultKit.js";

const stack = inject("faultStack");
const clients = stackClients(stack);
const deps = { store: clients.store, clock: { now: () => new Date() } };
const DEADLINE_SECONDS = 5;
const topic = `deadline-jobs-${randomUUID().slice(0, 8)}`;
let worker: RunningProcess;
let inputsBucket: string;
let photo: Buffer;
const submitted: string[] = [];

beforeAll(async () => {
  inputsBucket = await privateInputsBucket(clients);
  // ×4 of 640×640 in 64-pixel tiles, one tile in flight at a time: far more than 5 s of work.
  photo = await sharp(join(await ensurePhotos(), "astronaut.png")).resize(640, 640).jpeg().toBuffer();
  await clients.pubsub.createTopic(topic);
  await clients.pubsub.createTopic(`${topic}-batch`);
  await clients.pubsub.createSubscription(topic, `${topic}-worker`);
  await clients.pubsub.createSubscription(`${topic}-batch`, `${topic}-batch-worker`);
  worker = await startWorkerProcess(stack, `deadline-worker-${randomUUID().slice(0, 8)}`, {
    JOBS_SUBSCRIPTION: `${topic}-worker`,
    JOBS_BATCH_SUBSCRIPTION: `${topic}-batch-worker`,
    JOB_DEADLINE_SECONDS: String(DEADLINE_SECONDS),
    TRITON_MAX_IN_FLIGHT: "1",
    MAX_OUTPUT_PIXELS: "16000000",
    METRICS_PORT: String(await freePort()),
  });
});

afterAll(async () => {
  await worker?.stop();
  const verdicts = await Promise.all(submitted.map((jobId) => checkOnce(clients, stack.names.resultsBucket, jobId)));
  recordCounts(stack, {
    suite: "deadline",
    jobsSubmitted: submitted.length,
    lost: verdicts.filter((verdict) => verdict.lost).length,
    doubled: verdicts.filter((verdict) => verdict.doubled).length,
  });
  await Promise.all([clients.firestore.terminate(), clients.pubsub.close()]);
});

describe("the job deadline", () => {
  it("fails a job still running at its deadline with deadline_exceeded, and stops its tile work", async () => {
    const jobId = randomUUID();
    const input = { bucket: inputsBucket, object: `uploads/${jobId}`, contentType: "image/jpeg" };
    await handleCommand(deps, jobId, { type: "RequestEdit", jobId, ownerId: "deadline-owner", operation: "upscale", params: { scale: 4 }, flow: "direct", input });
    await createGcsImageStore(clients.storage).write(input, photo, "image/jpeg");
    await handleCommand(deps, jobId, { type: "RecordUpload", ...input, sizeBytes: photo.length });
    submitted.push(jobId);
    await clients.pubsub.topic(topic).publishMessage({ json: { jobId, operation: "upscale" } });

    const [job] = (await waitForEnd(clients.firestore, [jobId], 60_000)).values();
    expect(job?.status).toBe("failed");
    expect(job?.error?.code).toBe("deadline_exceeded");
    expect(job?.error?.message).toMatch(/did not finish within 5 seconds of starting/);
    const events = await clients.store.load(jobId);
    const started = Date.parse(events.find((event) => event.type === "EditStarted")?.at ?? "");
    const failed = events.at(-1);
    expect(failed?.type).toBe("EditFailed");
    const afterStart = Date.parse(failed?.at ?? "") - started;
    expect(afterStart).toBeGreaterThanOrEqual(DEADLINE_SECONDS * 1000);
    expect(afterStart).toBeLessThan((DEADLINE_SECONDS + 3) * 1000);
    // It stopped mid-way: progress was reported, short of the whole.
    const progress = events.filter((event) => event.type === "EditProgressed").at(-1)?.data as { tilesDone: number; tilesTotal: number } | undefined;
    expect(progress?.tilesDone ?? 0).toBeLessThan(progress?.tilesTotal ?? 1);
    // Its tile work stops as for a cancel: the log says so within a second, nothing is appended after.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect((await clients.store.load(jobId)).length).toBe(events.length);
    const stopped = readFileSync(worker.logFile, "utf8").split("\n").filter((line) => line.includes(jobId) && line.includes("edit stopped"));
    expect(stopped.map((line) => (JSON.parse(line) as { reason: string }).reason)).toEqual(["deadline"]);
    const [files] = await clients.storage.bucket(stack.names.resultsBucket).getFiles({ prefix: `results/${jobId}/` });
    expect(files).toEqual([]);
  });
});
