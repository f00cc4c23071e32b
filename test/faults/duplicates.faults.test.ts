/**
 * Duplicate delivery at scale: 60 jobs through the public API, from eight clients at once, and two
 * more copies of every job's message published straight to the Pub/Sub emulator: one at once
 * (racing the original across three worker processes), one after the job has ended. Every job
 * must end exactly once, with one EditSucceeded and one output object, and the late copies must
 * change nothing. (Sixty keep three workers racing on every job's copies; more jobs only take
 * longer.)
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { emulatorIdToken } from "../../local/auth/emulatorUsers.js";
import { ensurePhotos } from "../../local/bench/photos.js";
import type { RunningProcess } from "../../local/stack/processes.js";
import { callApi, checkOnce, recordCounts, secretLines, stackClients, stackLogLines, startWorkerProcess, waitForEnd } from "../support/faultKit.js";

const stack = inject("faultStack");
const clients = stackClients(stack);
const JOBS = 60;
const USERS = 10;
const workers: RunningProcess[] = [];
const tokens: string[] = [];
let images: Buffer[] = [];

beforeAll(async () => {
  const photo = join(await ensurePhotos(), "chelsea.png");
  // Twenty different 40×32 crops, so that the jobs are not all the same bytes.
  images = await Promise.all(
    Array.from({ length: 20 }, (_, index) => sharp(photo).extract({ left: index * 8, top: index * 5, width: 160, height: 128 }).resize(40, 32).jpeg().toBuffer()),
  );
  for (let user = 0; user < USERS; user += 1) tokens.push(await emulatorIdToken(stack.emulatorEnv.FIREBASE_AUTH_EMULATOR_HOST!, `dup-${user}-${randomUUID()}`));
  workers.push(...(await Promise.all([startWorkerProcess(stack, `dup-worker-a`), startWorkerProcess(stack, `dup-worker-b`)])));
});

afterAll(async () => {
  await Promise.all(workers.map((worker) => worker.stop()));
  await Promise.all([clients.firestore.terminate(), clients.pubsub.close()]);
});

describe("duplicate delivery", () => {
  it(`turns ${JOBS} jobs with ${2 * JOBS} injected duplicate messages into exactly ${JOBS} results`, async () => {
    const topic = clients.pubsub.topic(stack.names.jobsTopic);
    const duplicate = (jobId: string) => topic.publishMessage({ json: { jobId, operation: "upscale" } });
    const jobIds: string[] = [];
    let duplicates = 0;
    let next = 0;
    // Eight clients at once; each job's first duplicate goes out right behind the original.
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < JOBS) {
          const index = next;
          next += 1;
          const created = await callApi<{ jobId: string }>(stack, tokens[index % USERS], "POST", "/v1/edits?operation=upscale&params.scale=2&cache=false", {
            body: images[index % images.length] as Buffer,
            headers: { "content-type": "image/jpeg" },
          });
          expect(created.status).toBe(202);
          jobIds.push(created.body.jobId);
          await duplicate(created.body.jobId);
          duplicates += 1;
        }
      }),
    );

    const ended = await waitForEnd(clients.firestore, jobIds, 480_000);
    const versions = new Map([...ended].map(([jobId, state]) => [jobId, state?.version]));
    // The second duplicate of every job, after it has ended: nothing may change. Every job's
    // copies beyond the one that ran it end in "delivery needs no work"; wait until each job has
    // two such lines (its first copy or original, and this late copy), for at most 10 s.
    await Promise.all(jobIds.map(async (jobId) => (await duplicate(jobId), (duplicates += 1))));
    const settledWithoutWork = () => {
      const lines = stackLogLines(stack).filter((line) => line.includes("delivery needs no work"));
      return jobIds.every((jobId) => lines.filter((line) => line.includes(jobId)).length >= 2);
    };
    for (const giveUpAt = Date.now() + 10_000; !settledWithoutWork() && Date.now() < giveUpAt; ) await new Promise((resolve) => setTimeout(resolve, 500));

    const verdicts = await Promise.all(jobIds.map((jobId) => checkOnce(clients, stack.names.resultsBucket, jobId)));
    const after = await waitForEnd(clients.firestore, jobIds, 1_000);
    const lost = verdicts.filter((verdict) => verdict.lost);
    const doubled = verdicts.filter((verdict) => verdict.doubled);
    recordCounts(stack, { suite: "duplicates", jobsSubmitted: JOBS, duplicatesInjected: duplicates, lost: lost.length, doubled: doubled.length });

    expect(duplicates).toBe(2 * JOBS);
    expect(lost.map((verdict) => verdict.jobId)).toEqual([]);
    expect(doubled.map((verdict) => [verdict.jobId, verdict.terminal, verdict.outputs])).toEqual([]);
    for (const verdict of verdicts) {
      expect(verdict.terminal, verdict.jobId).toEqual(["EditSucceeded"]);
      expect(verdict.outputs, verdict.jobId).toEqual([`results/${verdict.jobId}/output.png`]);
    }
    const changed = jobIds.filter((jobId) => after.get(jobId)?.version !== versions.get(jobId));
    expect(changed).toEqual([]);
    // The copies were really taken: workers logged deliveries that needed no work.
    const needless = stackLogLines(stack).filter((line) => line.includes("delivery needs no work"));
    expect(needless.length).toBeGreaterThan(0);
  });

  it("writes no token, bearer header or key into any log line of the run", () => {
    const lines = stackLogLines(stack);
    // Enough lines to search: each job alone logs its request, start, success and needless copies.
    expect(lines.length).toBeGreaterThan(5 * JOBS);
    expect(secretLines(lines, tokens)).toEqual([]);
  });
});
