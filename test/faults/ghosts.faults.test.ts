/**
 * Ghost jobs and leases: a job left `running` by a worker that died (no message left, no
 * heartbeat) is requeued by the sweeper and finished by a live worker; one whose attempts are
 * used up fails with a reason; and a job whose worker still beats is left alone, both by the
 * sweeper and by a duplicate delivery, which waits for it instead of taking it over.
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createGcsImageStore } from "../../adapters/storage/gcsImageStore.js";
import { handleCommand } from "../../events/handleCommand.js";
import { ensurePhotos } from "../../local/bench/photos.js";
import { checkOnce, privateInputsBucket, recordCounts, stackClients, waitForEnd } from "../support/faultKit.js";

const stack = inject("faultStack");
let inputsBucket: string;
const clients = stackClients(stack);
const deps = { store: clients.store, clock: { now: () => new Date() } };
const images = createGcsImageStore(clients.storage);
let photo: Buffer;
const submitted: string[] = [];

beforeAll(async () => {
  inputsBucket = await privateInputsBucket(clients);
  photo = await sharp(join(await ensurePhotos(), "coffee.png")).resize(48, 32).jpeg().toBuffer();
});

afterAll(async () => {
  const verdicts = await Promise.all(submitted.map((jobId) => checkOnce(clients, stack.names.resultsBucket, jobId)));
  recordCounts(stack, {
    suite: "ghosts",
    jobsSubmitted: submitted.length,
    lost: verdicts.filter((verdict) => verdict.lost).length,
    doubled: verdicts.filter((verdict) => verdict.doubled).length,
  });
  await Promise.all([clients.firestore.terminate(), clients.pubsub.close()]);
});

/** A job recorded up to EditQueued, its photo in the uploads bucket, and no message published. */
async function queuedJob(): Promise<string> {
  const jobId = randomUUID();
  const input = { bucket: inputsBucket, object: `uploads/${jobId}`, contentType: "image/jpeg" };
  await handleCommand(deps, jobId, { type: "RequestEdit", jobId, ownerId: "ghost-owner", operation: "upscale", params: { scale: 2 }, flow: "direct", input });
  await images.write(input, photo, "image/jpeg");
  await handleCommand(deps, jobId, { type: "RecordUpload", ...input, sizeBytes: photo.length });
  submitted.push(jobId);
  return jobId;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const types = async (jobId: string) => (await clients.store.load(jobId)).map((event) => event.type);

describe("ghost jobs", () => {
  it("requeues a job whose worker died mid-run, and a live worker finishes it", async () => {
    const jobId = await queuedJob();
    // A worker takes the job and dies at once: no heartbeat, and its message is gone.
    await handleCommand(deps, jobId, { type: "StartEdit", workerId: "dead-worker", leaseMs: 2_000 });
    const [job] = (await waitForEnd(clients.firestore, [jobId], 90_000)).values();
    expect(job?.status).toBe("succeeded");
    const events = await clients.store.load(jobId);
    expect(events.map((event) => event.type)).toEqual([
      "EditRequested",
      "ImageUploaded",
      "EditQueued",
      "EditStarted",
      "EditAttemptFailed",
      "EditStarted",
      "EditSucceeded",
    ]);
    expect(events[4]?.data).toMatchObject({ code: "worker_lost", workerId: "dead-worker" });
    expect((events[5]?.data as { workerId: string }).workerId).not.toBe("dead-worker");
  });

  it("fails a ghost job whose attempts are used up, saying why", async () => {
    const jobId = await queuedJob();
    // Ten workers in turn took it and died (MAX_ATTEMPTS is 10 on this stack).
    for (let attempt = 0; attempt < 10; attempt += 1) {
      await handleCommand(deps, jobId, { type: "StartEdit", workerId: `dead-${attempt}`, leaseMs: 1 });
      await sleep(5);
    }
    const [job] = (await waitForEnd(clients.firestore, [jobId], 60_000)).values();
    expect(job).toMatchObject({ status: "failed", attempts: 10, error: { code: "worker_lost" } });
    expect(job?.error?.message).toMatch(/stopped responding.*No attempts are left/);
  });

  it("leaves a job whose worker still beats to that worker: neither the sweeper nor a duplicate takes it", async () => {
    const jobId = await queuedJob();
    await handleCommand(deps, jobId, { type: "StartEdit", workerId: "slow-but-alive", leaseMs: 3_000 });
    let beating = true;
    const heart = (async () => {
      while (beating) {
        await handleCommand(deps, jobId, { type: "RenewLease", workerId: "slow-but-alive", leaseMs: 3_000 });
        await sleep(1_000);
      }
    })();
    // A duplicate delivery arrives while the holder lives: the worker that gets it waits.
    await clients.pubsub.topic(stack.names.jobsTopic).publishMessage({ json: { jobId, operation: "upscale" } });
    await sleep(12_000);
    expect(await clients.store.getProjection(jobId)).toMatchObject({ status: "running", workerId: "slow-but-alive", attempts: 1 });
    expect((await types(jobId)).filter((type) => type === "EditStarted")).toHaveLength(1);
    // The holder dies: its lease lapses, and the waiting delivery (or the sweeper) takes over.
    beating = false;
    await heart;
    const [job] = (await waitForEnd(clients.firestore, [jobId], 90_000)).values();
    expect(job?.status).toBe("succeeded");
    const starts = (await clients.store.load(jobId)).filter((event) => event.type === "EditStarted");
    expect(starts).toHaveLength(2);
    expect((starts[1]?.data as { workerId: string }).workerId).not.toBe("slow-but-alive");
  });
});
