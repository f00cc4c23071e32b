/**
 * Worker crashes under load: 60 jobs, three extra worker processes, and six SIGKILLs at random
 * moments, each aimed at a worker that holds a running job, with a fresh worker started after
 * each. The dead worker's heartbeat stops, its lease lapses, and the sweeper (or a redelivery)
 * hands the job to a live worker. Every job must end exactly once; none may be lost.
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { emulatorIdToken } from "../../local/auth/emulatorUsers.js";
import { ensurePhotos } from "../../local/bench/photos.js";
import type { RunningProcess } from "../../local/stack/processes.js";
import { callApi, checkOnce, killHard, recordCounts, stackClients, startWorkerProcess, waitForEnd } from "../support/faultKit.js";

const stack = inject("faultStack");
const clients = stackClients(stack);
const JOBS = 60;
const KILLS = 6;
const workers = new Map<string, RunningProcess>();
let token: string;
let image: Buffer;
let started = 0;

async function addWorker(): Promise<void> {
  const name = `crash-worker-${(started += 1)}`;
  workers.set(name, await startWorkerProcess(stack, name));
}

beforeAll(async () => {
  // 96×96, ×4: four tiles, long enough for a kill to land mid-job.
  image = await sharp(join(await ensurePhotos(), "astronaut.png")).resize(96, 96).jpeg().toBuffer();
  token = await emulatorIdToken(stack.emulatorEnv.FIREBASE_AUTH_EMULATOR_HOST!, `crash-${randomUUID()}`);
  await Promise.all([addWorker(), addWorker(), addWorker()]);
});

afterAll(async () => {
  await Promise.all([...workers.values()].map((worker) => worker.stop()));
  await Promise.all([clients.firestore.terminate(), clients.pubsub.close()]);
});

describe("worker crashes", () => {
  it("ends every job exactly once while workers are SIGKILLed mid-job and replaced", async () => {
    const jobIds: string[] = [];
    let submitting = true;
    const submission = (async () => {
      for (let index = 0; index < JOBS; index += 1) {
        const created = await callApi<{ jobId: string }>(stack, token, "POST", "/v1/edits?operation=upscale&params.scale=4&cache=false", {
          body: image,
          headers: { "content-type": "image/jpeg" },
        });
        expect(created.status).toBe(202);
        jobIds.push(created.body.jobId);
      }
      submitting = false;
    })();

    // Meanwhile, at random moments, the worker of a running job dies; a new one is started.
    const killed: Array<{ worker: string; jobId: string }> = [];
    const replacements: Array<Promise<void>> = [];
    const giveUp = Date.now() + 240_000;
    const allEnded = async () => !submitting && [...(await waitForEnd(clients.firestore, jobIds, 1)).values()].every((job) => job && ["succeeded", "failed", "canceled"].includes(job.status));
    while (killed.length < KILLS && Date.now() < giveUp && !(await allEnded())) {
      await new Promise((resolve) => setTimeout(resolve, 300 + Math.random() * 1_500));
      const running = await clients.firestore.collection("jobs").where("status", "==", "running").get();
      // The worker holding a job is server-side state, beside the projection clients read.
      const holders = await Promise.all(
        running.docs.filter((doc) => jobIds.includes(doc.id)).map(async (doc) => ({ jobId: doc.id, worker: (await clients.store.getProjection(doc.id))?.workerId as string })),
      );
      const targets = holders.filter((target) => workers.get(target.worker)?.isRunning());
      const target = targets[Math.floor(Math.random() * targets.length)];
      if (!target) continue;
      killHard(workers.get(target.worker) as RunningProcess);
      killed.push(target);
      replacements.push(addWorker());
    }
    await submission;
    await Promise.all(replacements);

    const ended = await waitForEnd(clients.firestore, jobIds, 300_000);
    const verdicts = await Promise.all(jobIds.map((jobId) => checkOnce(clients, stack.names.resultsBucket, jobId)));
    const lost = verdicts.filter((verdict) => verdict.lost);
    const doubled = verdicts.filter((verdict) => verdict.doubled);
    recordCounts(stack, { suite: "crash", jobsSubmitted: JOBS, crashesInjected: killed.length, lost: lost.length, doubled: doubled.length });

    expect(killed).toHaveLength(KILLS);
    expect(lost.map((verdict) => [verdict.jobId, ended.get(verdict.jobId)?.status])).toEqual([]);
    expect(doubled.map((verdict) => [verdict.jobId, verdict.terminal])).toEqual([]);
    for (const verdict of verdicts) expect(verdict.terminal, verdict.jobId).toEqual(["EditSucceeded"]);
    // Each job whose worker was killed under it was taken up again by another worker (unless
    // it had finished in the instant between the query and the kill).
    let takenOver = 0;
    for (const { worker, jobId } of killed) {
      const events = (verdicts.find((verdict) => verdict.jobId === jobId) as (typeof verdicts)[number]).events;
      const starts = events.filter((event) => event.type === "EditStarted").map((event) => (event.data as { workerId: string }).workerId);
      const winner = (events.find((event) => event.type === "EditSucceeded")?.data as { workerId: string }).workerId;
      expect(starts, jobId).toContain(worker);
      if (winner === worker) continue;
      expect(starts.length, jobId).toBeGreaterThan(1);
      takenOver += 1;
    }
    expect(takenOver).toBeGreaterThan(0);
  });
});
