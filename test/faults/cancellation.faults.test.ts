/**
 * Cancellation without races, through the public API: canceled while queued, it never runs;
 * canceled while running, its tile work stops within a second and no output is left; canceled
 * at the moment of success, exactly one terminal event wins and the API's answers agree with it.
 */
import { randomUUID } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
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
let userId: string;
let token: string;
let tiny: Buffer;
let large: Buffer;
const submitted: string[] = [];

beforeAll(async () => {
  inputsBucket = await privateInputsBucket(clients);
  const photos = await ensurePhotos();
  tiny = await sharp(join(photos, "chelsea.png")).resize(40, 32).jpeg().toBuffer();
  // 512×512 ×4 in 64-pixel tiles: over a hundred tiles, several seconds of work on this CPU.
  // 480×480, ×4: a 3.7 MP output, under the faults stack's 4 MP limit that the API enforces.
  large = await sharp(join(photos, "astronaut.png")).resize(480, 480).jpeg().toBuffer();
  userId = `cancel-${randomUUID()}`;
  token = await emulatorIdToken(stack.emulatorEnv.FIREBASE_AUTH_EMULATOR_HOST!, userId);
});

afterAll(async () => {
  const verdicts = await Promise.all(submitted.map((jobId) => checkOnce(clients, stack.names.resultsBucket, jobId)));
  recordCounts(stack, {
    suite: "cancellation",
    jobsSubmitted: submitted.length,
    lost: verdicts.filter((verdict) => verdict.lost).length,
    doubled: verdicts.filter((verdict) => verdict.doubled).length,
  });
  await Promise.all([clients.firestore.terminate(), clients.pubsub.close()]);
});

async function submit(bytes: Buffer, scale: 2 | 4): Promise<string> {
  const created = await callApi<{ jobId: string }>(stack, token, "POST", `/v1/edits?operation=upscale&params.scale=${scale}&cache=false`, {
    body: bytes,
    headers: { "content-type": "image/jpeg" },
  });
  expect(created.status).toBe(202);
  submitted.push(created.body.jobId);
  return created.body.jobId;
}

/** The instant of the first line about the job that says `text`, in any of the stack's logs. */
function loggedAt(jobId: string, text: string): number | undefined {
  for (const name of readdirSync(stack.logDir).filter((file) => file.endsWith(".log"))) {
    for (const line of readFileSync(join(stack.logDir, name), "utf8").split("\n")) {
      if (line.includes(jobId) && line.includes(text)) return Date.parse((JSON.parse(line) as { time: string }).time);
    }
  }
  return undefined;
}

describe("cancellation", () => {
  it("never runs a job canceled while it waits in the queue", async () => {
    // Queued, its message not yet out: then canceled, then the message arrives.
    const jobId = randomUUID();
    const input = { bucket: inputsBucket, object: `uploads/${jobId}`, contentType: "image/jpeg" };
    await handleCommand(deps, jobId, { type: "RequestEdit", jobId, ownerId: userId, operation: "upscale", params: { scale: 2 }, flow: "direct", input });
    await createGcsImageStore(clients.storage).write(input, tiny, "image/jpeg");
    await handleCommand(deps, jobId, { type: "RecordUpload", ...input, sizeBytes: tiny.length });
    submitted.push(jobId);
    const canceled = await callApi(stack, token, "POST", `/v1/edits/${jobId}/cancel`);
    expect(canceled.status).toBe(202);
    await clients.pubsub.topic(stack.names.jobsTopic).publishMessage({ json: { jobId, operation: "upscale" } });
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    const events = (await clients.store.load(jobId)).map((event) => event.type);
    expect(events).toEqual(["EditRequested", "ImageUploaded", "EditQueued", "EditCanceled"]);
    expect(loggedAt(jobId, "delivery needs no work")).toBeDefined();
  });

  it("stops a running edit's tile work within a second of the cancel, and leaves no output", async () => {
    const jobId = await submit(large, 4);
    const deadline = Date.now() + 60_000;
    while ((await clients.store.getProjection(jobId))?.status !== "running") {
      if (Date.now() > deadline) throw new Error("the job never started");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
    const canceled = await callApi<{ status: string }>(stack, token, "POST", `/v1/edits/${jobId}/cancel`);
    expect(canceled.status).toBe(202);
    expect(canceled.body.status).toBe("canceled");
    const [job] = (await waitForEnd(clients.firestore, [jobId], 30_000)).values();
    expect(job?.status).toBe("canceled");
    const events = await clients.store.load(jobId);
    const canceledAt = Date.parse(events.find((event) => event.type === "EditCanceled")?.at ?? "");
    // The worker logs when it stops the edit's work, and again once its tile calls have unwound.
    let stoppedAt: number | undefined;
    const until = Date.now() + 10_000;
    while ((stoppedAt = loggedAt(jobId, '"message":"edit stopped"')) === undefined && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(stoppedAt).toBeDefined();
    expect((stoppedAt as number) - canceledAt).toBeLessThan(1_000);
    expect(events.map((event) => event.type).filter((type) => type === "EditSucceeded")).toEqual([]);
    const verdict = await checkOnce(clients, stack.names.resultsBucket, jobId);
    expect(verdict.terminal).toEqual(["EditCanceled"]);
    expect(verdict.outputs).toEqual([]);
  });

  it("lets exactly one terminal event win when the cancel meets the success, and answers accordingly", async () => {
    const jobIds = await Promise.all(Array.from({ length: 20 }, () => submit(tiny, 2)));
    // Cancels spread over the time a tiny job takes, so some land before, some after, some at the end.
    const answers = await Promise.all(
      jobIds.map(async (jobId, index) => {
        await new Promise((resolve) => setTimeout(resolve, index * 60));
        return (await callApi(stack, token, "POST", `/v1/edits/${jobId}/cancel`)).status;
      }),
    );
    await waitForEnd(clients.firestore, jobIds, 120_000);
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const outcomes = { canceled: 0, succeeded: 0 };
    for (const [index, jobId] of jobIds.entries()) {
      const verdict = await checkOnce(clients, stack.names.resultsBucket, jobId);
      expect(verdict.terminal, jobId).toHaveLength(1);
      if (verdict.terminal[0] === "EditCanceled") {
        outcomes.canceled += 1;
        expect(answers[index], jobId).toBe(202);
        expect(verdict.outputs, jobId).toEqual([]);
      } else {
        outcomes.succeeded += 1;
        expect(verdict.terminal[0], jobId).toBe("EditSucceeded");
        expect(answers[index], jobId).toBe(409);
        expect(verdict.outputs, jobId).toEqual([`results/${jobId}/output.png`]);
      }
    }
    expect(outcomes.canceled + outcomes.succeeded).toBe(20);
  });
});
