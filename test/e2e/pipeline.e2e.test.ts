/**
 * One photo the whole way, through the public API only: request, upload (signed PUT, or the bytes
 * in the request), the upload trigger, the worker, Triton, the result in Cloud Storage, and every
 * state change seen live by a Firestore listener, as a person's app would see it.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Firestore } from "@google-cloud/firestore";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createFirestoreEventStore } from "../../adapters/firestore/firestoreEventStore.js";
import { foldEvents, type JobStatus } from "../../events/jobState.js";
import { emulatorIdToken } from "../../local/auth/emulatorUsers.js";
import { LOCAL_DIR } from "../../local/stack/paths.js";
import { ensurePhotos } from "../../local/bench/photos.js";

const stack = inject("stack");
process.env.FIRESTORE_EMULATOR_HOST = stack.firestoreHost;
process.env.METADATA_SERVER_DETECTION = "none";
const firestore = new Firestore({ projectId: stack.projectId });

let token: string;
let photos: string;
const timings: Record<string, number> = {};

beforeAll(async () => {
  token = await emulatorIdToken(stack.authHost, `person-${Date.now()}`);
  photos = await ensurePhotos();
});

afterAll(async () => {
  await firestore.terminate();
  mkdirSync(LOCAL_DIR, { recursive: true });
  writeFileSync(join(LOCAL_DIR, "e2e-timings.json"), JSON.stringify(timings, null, 2));
  console.log(`[e2e] timings: ${JSON.stringify(timings)}`);
});

async function api<T = Record<string, unknown>>(method: string, path: string, init: { json?: unknown; body?: Buffer; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, ...init.headers };
  let body: Blob | string | undefined;
  if (init.json !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(init.json);
  } else if (init.body) {
    body = new Blob([new Uint8Array(init.body)]);
  }
  const response = await fetch(`${stack.apiUrl}${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
  return { status: response.status, body: (await response.json()) as T };
}

/** Watches the job's projection document and records each status a listener is shown. */
function watch(jobId: string) {
  const seen: JobStatus[] = [];
  let resolveEnd: (data: Record<string, unknown>) => void;
  let resolveListening: () => void;
  const ended = new Promise<Record<string, unknown>>((resolve) => (resolveEnd = resolve));
  /** Resolves with the listener's first snapshot, so that nothing it should see happens before. */
  const listening = new Promise<void>((resolve) => (resolveListening = resolve));
  const stop = firestore.doc(`jobs/${jobId}`).onSnapshot((snapshot) => {
    resolveListening();
    const data = snapshot.data();
    if (!data) return;
    const status = data.status as JobStatus;
    if (seen.at(-1) !== status) seen.push(status);
    if (["succeeded", "failed", "canceled"].includes(status)) resolveEnd(data);
  });
  return { seen, ended, listening, stop };
}

const LIFECYCLE: JobStatus[] = ["awaiting_upload", "queued", "running", "succeeded"];

async function checkResult(jobId: string, finalDoc: Record<string, unknown>, expectWidth: number, expectHeight: number) {
  const job = await api<{ status: string; output: { url: string; width: number; height: number; contentType: string } }>("GET", `/v1/edits/${jobId}`);
  expect(job.status).toBe(200);
  expect(job.body).toMatchObject({ status: "succeeded", output: { width: expectWidth, height: expectHeight, contentType: "image/png" } });
  const download = await fetch(job.body.output.url);
  expect(download.status).toBe(200);
  const meta = await sharp(Buffer.from(await download.arrayBuffer())).metadata();
  expect([meta.width, meta.height, meta.format]).toEqual([expectWidth, expectHeight, "png"]);

  const events = await api<Array<{ seq: number; type: string; at: string; data: unknown }>>("GET", `/v1/edits/${jobId}/events`);
  // Tile progress may be recorded in between, at most once a second, and a job that outlasts a
  // heartbeat renews its lease.
  const steps = events.body.map((event) => event.type).filter((type) => type !== "EditProgressed" && type !== "LeaseRenewed");
  expect(steps).toEqual(["EditRequested", "ImageUploaded", "EditQueued", "EditStarted", "EditSucceeded"]);
  expect(events.body.map((event) => event.seq)).toEqual(events.body.map((_, index) => index + 1));

  // The projection can be rebuilt from the stored event log. The API shows clients its events
  // without the server's fields, so the fold reads the log as the server does.
  const store = createFirestoreEventStore(firestore);
  const rebuilt = foldEvents(await store.load(jobId));
  expect(rebuilt).toEqual(await store.getProjection(jobId));
  // What the listener saw is that projection's document, which holds none of the server's fields.
  expect((await firestore.doc(`jobs/${jobId}`).get()).data()).toEqual(finalDoc);
  for (const field of ["workerId", "idempotencyKey", "requestFingerprint"]) expect(Object.keys(finalDoc)).not.toContain(field);
  const output = rebuilt?.output as { bucket: string; object: string };
  expect((finalDoc.output as { url: string }).url).toBe(`gs://${output.bucket}/${output.object}`);
  return events.body.at(-1)?.data as { processingMs: number; inferenceMs: number };
}

describe("the pipeline, end to end", () => {
  it("takes a 256×256 photo through a signed upload to a 1024×1024 result, watched live", async () => {
    const bytes = await sharp(join(photos, "astronaut.png")).resize(256, 256).png().toBuffer();
    const began = performance.now();
    const created = await api<{ jobId: string; status: string; upload: { url: string; method: string; headers: Record<string, string> } }>("POST", "/v1/edits", {
      json: { operation: "upscale", contentType: "image/png" },
    });
    expect(created.status).toBe(202);
    expect(created.body.status).toBe("awaiting_upload");
    const { jobId, upload } = created.body;
    const watcher = watch(jobId);
    await watcher.listening;

    const put = await fetch(upload.url, { method: upload.method, headers: upload.headers, body: new Uint8Array(bytes) });
    expect(put.status).toBe(200);
    const finalDoc = await watcher.ended;
    timings.signedUpload256x4EndToEndMs = Math.round(performance.now() - began);
    watcher.stop();

    expect(finalDoc.status).toBe("succeeded");
    expect(watcher.seen[0]).toBe("awaiting_upload");
    expect(watcher.seen).toContain("running");
    expect(watcher.seen.at(-1)).toBe("succeeded");
    const order = watcher.seen.map((status) => LIFECYCLE.indexOf(status));
    expect(order).toEqual([...order].sort((a, b) => a - b));

    const succeeded = await checkResult(jobId, finalDoc, 1024, 1024);
    timings.signedUpload256x4ProcessingMs = succeeded.processingMs;
    timings.signedUpload256x4InferenceMs = succeeded.inferenceMs;
  });

  it("takes a photo sent in the request body to a result 4× its size", async () => {
    const bytes = await sharp(join(photos, "coffee.png")).resize(300).jpeg({ quality: 90 }).toBuffer();
    const { width, height } = await sharp(bytes).metadata();
    const began = performance.now();
    const created = await api<{ jobId: string; status: string }>("POST", "/v1/edits?operation=upscale&params.scale=4", {
      body: bytes,
      headers: { "content-type": "image/jpeg" },
    });
    expect(created.status).toBe(202);
    // The upload trigger may record the upload first, and a worker may start before this answer.
    expect(["queued", "running"]).toContain(created.body.status);
    const watcher = watch(created.body.jobId);
    const finalDoc = await watcher.ended;
    timings.directUploadEndToEndMs = Math.round(performance.now() - began);
    watcher.stop();
    expect(finalDoc.status).toBe("succeeded");
    await checkResult(created.body.jobId, finalDoc, (width as number) * 4, (height as number) * 4);
  });

  it("returns the same job for a repeated request with the same Idempotency-Key", async () => {
    const key = `e2e-${Date.now()}`;
    const request = { json: { operation: "upscale", contentType: "image/jpeg" }, headers: { "idempotency-key": key } };
    const first = await api<{ jobId: string }>("POST", "/v1/edits", request);
    const second = await api<{ jobId: string }>("POST", "/v1/edits", request);
    expect(first.status).toBe(202);
    expect(second.body.jobId).toBe(first.body.jobId);
  });

  it("answers 401 without a token", async () => {
    const response = await fetch(`${stack.apiUrl}/v1/edits`);
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ error: { code: "unauthenticated" } });
  });
});
