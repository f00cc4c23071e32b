/**
 * Triton unavailable: a Triton server of this test's own is SIGKILLed (by PID) in the middle of a
 * run, kept down for 30 seconds, and started again on the same ports. Its worker (a real worker
 * process on its own subscription, with the stack's dead-letter topic behind it) must stop taking
 * jobs while Triton is not ready, and every job must complete afterwards: none failed, none
 * dead-lettered early.
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createPubsubJobQueue } from "../../adapters/pubsub/pubsubJobQueue.js";
import { createGcsImageStore } from "../../adapters/storage/gcsImageStore.js";
import { handleCommand } from "../../events/handleCommand.js";
import { LOCAL_DIR } from "../../local/stack/paths.js";
import { ensurePhotos } from "../../local/bench/photos.js";
import { logContains, type RunningProcess } from "../../local/stack/processes.js";
import { startTriton } from "../../local/stack/triton.js";
import { checkOnce, privateInputsBucket, recordCounts, stackClients, startWorkerProcess, waitForEnd } from "../support/faultKit.js";
import { waitForLogLine } from "../support/stackLogs.js";
import { startTestTriton, type TestTriton } from "../support/tritonServer.js";

const stack = inject("faultStack");
let inputsBucket: string;
const clients = stackClients(stack);
const deps = { store: clients.store, clock: { now: () => new Date() } };
const images = createGcsImageStore(clients.storage);
const topicName = `outage-jobs-${randomUUID()}`;
let triton: TestTriton;
let restarted: RunningProcess | undefined;
let worker: RunningProcess;
let photo: Buffer;
const submitted: string[] = [];

const port = (url: string) => Number(url.split(":").at(-1));

beforeAll(async () => {
  inputsBucket = await privateInputsBucket(clients);
  photo = await sharp(join(await ensurePhotos(), "astronaut.png")).resize(96, 96).jpeg().toBuffer();
  triton = await startTestTriton();
  const [topic] = await clients.pubsub.createTopic(topicName);
  await topic.createSubscription(`${topicName}-worker`, {
    ackDeadlineSeconds: 60,
    deadLetterPolicy: { deadLetterTopic: `projects/${stack.names.projectId}/topics/${stack.names.deadLetterTopic}`, maxDeliveryAttempts: 5 },
    retryPolicy: { minimumBackoff: { seconds: 1 }, maximumBackoff: { seconds: 10 } },
  });
  worker = await startWorkerProcess(stack, `outage-worker-${randomUUID().slice(0, 8)}`, {
    JOBS_SUBSCRIPTION: `${topicName}-worker`,
    TRITON_GRPC_URL: triton.grpcUrl,
    // The attempt limit of production (5): an outage must not spend it.
    MAX_ATTEMPTS: "5",
  });
});

afterAll(async () => {
  const verdicts = await Promise.all(submitted.map((jobId) => checkOnce(clients, stack.names.resultsBucket, jobId)));
  recordCounts(stack, {
    suite: "triton-outage",
    jobsSubmitted: submitted.length,
    lost: verdicts.filter((verdict) => verdict.lost).length,
    doubled: verdicts.filter((verdict) => verdict.doubled).length,
  });
  await worker?.stop();
  await restarted?.stop();
  await triton?.stop();
  await Promise.all([clients.firestore.terminate(), clients.pubsub.close()]);
});

async function publishJobs(count: number): Promise<string[]> {
  const queue = createPubsubJobQueue(clients.pubsub, topicName);
  return Promise.all(
    Array.from({ length: count }, async () => {
      const jobId = randomUUID();
      const input = { bucket: inputsBucket, object: `uploads/${jobId}`, contentType: "image/jpeg" };
      await handleCommand(deps, jobId, { type: "RequestEdit", jobId, ownerId: "outage-owner", operation: "upscale", params: { scale: 4 }, flow: "direct", input });
      await images.write(input, photo, "image/jpeg");
      await handleCommand(deps, jobId, { type: "RecordUpload", ...input, sizeBytes: photo.length });
      submitted.push(jobId);
      await queue.publish({ jobId, operation: "upscale" });
      return jobId;
    }),
  );
}

describe("Triton unavailable", () => {
  it("holds jobs while Triton is down for 30 s, then completes every one, none failed or dead-lettered", async () => {
    // Six jobs for a worker that runs four at once: some are mid-edit when Triton dies, some wait.
    const before = await publishJobs(6);
    // Let the first jobs get going, then take Triton away under them.
    const deadline = Date.now() + 60_000;
    while (![...(await waitForEnd(clients.firestore, before, 1)).values()].some((job) => job?.status === "running" || job?.status === "succeeded")) {
      if (Date.now() > deadline) throw new Error("no job started");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    process.kill(-triton.process.pid, "SIGKILL");
    const downAt = Date.now();

    // Jobs that arrive while Triton is down are held: not started, no attempt spent. They are
    // looked at 12 s after they arrive, within the tier's QUEUED_REPUBLISH_SECONDS (20): past it
    // the sweeper publishes them again to the stack's own topic, whose worker has a Triton.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const during = await publishJobs(4);
    await new Promise((resolve) => setTimeout(resolve, 12_000));
    const held = await waitForEnd(clients.firestore, during, 1);
    for (const jobId of during) expect(held.get(jobId), jobId).toMatchObject({ status: "queued", attempts: 0 });
    expect(await logContains(worker.logFile, "Triton is not ready; holding new jobs until it is")).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, 30_000 - (Date.now() - downAt))));

    restarted = await startTriton({
      grpcPort: port(triton.grpcUrl),
      httpPort: port(triton.httpUrl),
      metricsPort: port(triton.metricsUrl),
      install: triton.install,
      logFile: join(LOCAL_DIR, "logs", `triton-restarted-${randomUUID()}.log`),
    });
    const all = [...before, ...during];
    const ended = await waitForEnd(clients.firestore, all, 240_000);
    expect(all.filter((jobId) => ended.get(jobId)?.status !== "succeeded").map((jobId) => [jobId, ended.get(jobId)?.status, ended.get(jobId)?.error])).toEqual([]);
    for (const jobId of all) {
      const verdict = await checkOnce(clients, stack.names.resultsBucket, jobId);
      expect(verdict.terminal, jobId).toEqual(["EditSucceeded"]);
      // An outage costs a job at most the one attempt it was in the middle of.
      expect(verdict.events.filter((event) => event.type === "EditStarted").length, jobId).toBeLessThanOrEqual(2);
    }
    // The held jobs may have been run by the stack's worker after the sweeper's republish, before
    // this worker's next look at Triton: wait for that look.
    await waitForLogLine(worker.logFile, (line) => line.message === "Triton is ready; taking jobs again", 60_000);
  });
});
