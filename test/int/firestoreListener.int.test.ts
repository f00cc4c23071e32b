/**
 * The typed client's listener (Firebase JS SDK, signed in to the emulator with a mock token) on a
 * Firestore emulator that enforces infra/firestore.rules, the rules production deploys. The job
 * is driven by the real event store and command rules, as the API and the worker drive it; a
 * progress field is written the way a worker reports tiles. The owner sees every state, typed,
 * progress included; anyone else is refused.
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { Firestore } from "@google-cloud/firestore";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFirestoreEventStore } from "../../adapters/firestore/firestoreEventStore.js";
import { createEditClient } from "../../client/editClient.js";
import type { Job } from "../../client/editTypes.js";
import { connectEmulatorFirestore } from "../../client/firestoreConnection.js";
import { handleCommand } from "../../events/handleCommand.js";
import { startFirestoreEmulator } from "../../local/stack/emulators.js";
import { LOCAL_DIR, REPO_ROOT } from "../../local/stack/paths.js";
import { freePort, type RunningProcess } from "../../local/stack/processes.js";

const projectId = `listener-${randomUUID().slice(0, 8)}`;
let emulator: RunningProcess;
let host: string;
let admin: Firestore;
const connections: Array<{ close(): Promise<void> }> = [];

beforeAll(async () => {
  const port = await freePort();
  host = `127.0.0.1:${port}`;
  emulator = await startFirestoreEmulator(port, join(LOCAL_DIR, "logs", "int-listener"), join(REPO_ROOT, "infra", "firestore.rules"));
  // The admin client (as the API and the worker use it) is not subject to the rules.
  process.env.FIRESTORE_EMULATOR_HOST = host;
  process.env.METADATA_SERVER_DETECTION = "none";
  admin = new Firestore({ projectId, ignoreUndefinedProperties: true });
});

afterAll(async () => {
  await Promise.all(connections.map((connection) => connection.close()));
  await admin?.terminate();
  await emulator?.stop();
});

/** A client whose only source of state is the listener (its API is never called here). */
function listenerFor(userId: string) {
  const connection = connectEmulatorFirestore({ projectId, emulatorHost: host, userId });
  connections.push(connection);
  return createEditClient({ apiUrl: "http://127.0.0.1:9", getToken: () => "unused", firestore: connection.firestore });
}

describe("the client's Firestore listener under the production rules", () => {
  it("shows the owner every state of the job, typed, with tile progress while running", async () => {
    const owner = `owner-${randomUUID()}`;
    const jobId = randomUUID();
    const deps = { store: createFirestoreEventStore(admin), clock: { now: () => new Date() } };
    await handleCommand(deps, jobId, {
      type: "RequestEdit",
      jobId,
      ownerId: owner,
      operation: "upscale",
      params: { scale: 2 },
      flow: "signed_upload",
      input: { bucket: "uploads", object: `uploads/${jobId}`, contentType: "image/png" },
    });

    const seen: Job[] = [];
    let notify = () => {};
    const stop = listenerFor(owner).watch(jobId, (job) => {
      seen.push(job);
      notify();
    });
    const until = (test: (job: Job) => boolean) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`not seen; saw ${JSON.stringify(seen.map((job) => job.status))}`)), 30_000);
        notify = () => seen.some(test) && (clearTimeout(timer), resolve());
        notify();
      });

    await until((job) => job.status === "awaiting_upload");
    await handleCommand(deps, jobId, { type: "RecordUpload", bucket: "uploads", object: `uploads/${jobId}`, contentType: "image/png", sizeBytes: 1000 });
    await until((job) => job.status === "queued");
    await handleCommand(deps, jobId, { type: "StartEdit", workerId: "w1", leaseMs: 60_000 });
    await until((job) => job.status === "running");
    // A worker's tile report: a field on the projection, no event.
    await admin.doc(`jobs/${jobId}`).update({ progress: { tilesDone: 3, tilesTotal: 8 } });
    await until((job) => job.status === "running" && job.progress?.tilesDone === 3);
    await handleCommand(deps, jobId, {
      type: "CompleteEdit",
      workerId: "w1",
      output: { bucket: "results", object: `results/${jobId}.png`, contentType: "image/png", width: 64, height: 64, sizeBytes: 500 },
      processingMs: 10,
      inferenceMs: 5,
    });
    await until((job) => job.status === "succeeded");
    stop();

    const statuses = seen.map((job) => job.status).filter((status, i, all) => all[i - 1] !== status);
    expect(statuses).toEqual(["awaiting_upload", "queued", "running", "succeeded"]);
    expect(seen.find((job) => job.status === "running" && job.progress)).toMatchObject({ progress: { tilesDone: 3, tilesTotal: 8 }, attempts: 1 });
    expect(seen.at(-1)).toMatchObject({ status: "succeeded", version: 5, output: { url: `gs://results/results/${jobId}.png`, width: 64, sizeBytes: 500 } });
  });

  it("refuses someone else's listener with permission-denied", async () => {
    const jobId = randomUUID();
    await handleCommand({ store: createFirestoreEventStore(admin), clock: { now: () => new Date() } }, jobId, {
      type: "RequestEdit",
      jobId,
      ownerId: `owner-${randomUUID()}`,
      operation: "upscale",
      params: { scale: 4 },
      flow: "direct",
      input: { bucket: "uploads", object: `uploads/${jobId}`, contentType: "image/jpeg" },
    });
    const outcome = await new Promise<unknown>((resolve) => listenerFor(`stranger-${randomUUID()}`).watch(jobId, (job) => resolve(job), resolve));
    expect(outcome).toMatchObject({ code: "permission-denied" });
  });
});
