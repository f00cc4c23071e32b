/**
 * The typed client (client/) against the whole local stack, as an app uses it: the Firebase JS
 * SDK's Firestore listener on the emulator, signed in with a mock token for the same user as the
 * API token. (test/int/firestoreListener.int.test.ts checks the same listener under the rules.)
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createEditClient, type EditClient } from "../../client/editClient.js";
import { EditApiError } from "../../client/editErrors.js";
import type { Job, JobStatus } from "../../client/editTypes.js";
import { connectEmulatorFirestore } from "../../client/firestoreConnection.js";
import { emulatorIdToken } from "../../local/auth/emulatorUsers.js";
import { ensurePhotos } from "../../local/bench/photos.js";

const stack = inject("stack");
const userId = `client-${randomUUID()}`;
const connections: Array<{ close(): Promise<void> }> = [];
let client: EditClient;
let photo: Buffer;

function connect(user: string) {
  const connection = connectEmulatorFirestore({ projectId: stack.projectId, emulatorHost: stack.firestoreHost, userId: user });
  connections.push(connection);
  return connection.firestore;
}

beforeAll(async () => {
  const token = await emulatorIdToken(stack.authHost, userId);
  client = createEditClient({ apiUrl: stack.apiUrl, getToken: () => token, firestore: connect(userId) });
  photo = await sharp(join(await ensurePhotos(), "chelsea.png")).resize(160).jpeg({ quality: 90 }).toBuffer();
});

afterAll(async () => {
  await Promise.all(connections.map((connection) => connection.close()));
});

const ORDER: JobStatus[] = ["awaiting_upload", "queued", "running", "succeeded"];

describe("the typed client on the local stack", () => {
  it("creates an edit, uploads with progress, follows it live to succeeded, and fetches the result", async () => {
    const progress: Array<[number, number]> = [];
    const created = await client.createEdit({ operation: "upscale", params: { scale: 2 }, image: photo, contentType: "image/jpeg", onUploadProgress: (sent, total) => progress.push([sent, total]) });
    expect(created.status).toBe("awaiting_upload");
    expect(progress.at(-1)).toEqual([photo.length, photo.length]);
    expect(progress.map(([sent]) => sent)).toEqual([...progress.map(([sent]) => sent)].sort((a, b) => a - b));

    const seen: Job[] = [];
    const ended = await client.waitUntilEnded(created.jobId, (job) => seen.push(job));
    expect(ended.status).toBe("succeeded");
    const statuses = seen.map((job) => job.status).filter((status, i, all) => all[i - 1] !== status);
    expect(statuses).toContain("running");
    expect(statuses.map((status) => ORDER.indexOf(status))).toEqual([...statuses.map((status) => ORDER.indexOf(status))].sort((a, b) => a - b));
    // Versions only grow, one per event, as the listener delivers them.
    expect(seen.map((job) => job.version)).toEqual([...seen.map((job) => job.version)].sort((a, b) => a - b));
    if (ended.status !== "succeeded") throw new Error("unreachable");
    expect(ended.output.url).toMatch(/^gs:\/\//);

    const { width, height } = await sharp(photo).metadata();
    const result = await client.fetchResult(created.jobId);
    const meta = await sharp(Buffer.from(result.bytes)).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(["png", (width as number) * 2, (height as number) * 2]);
    expect(result).toMatchObject({ width: (width as number) * 2, height: (height as number) * 2, contentType: "image/png" });

    const mine = await client.listEdits();
    expect(mine.map((job) => job.jobId)).toContain(created.jobId);
    const events = await client.events(created.jobId);
    // Tile progress may be recorded between the steps, at most once a second, and a job that
    // outlasts a heartbeat renews its lease (SRMD on two busy cores can take that long).
    const steps = events.map((event) => event.type).filter((type) => type !== "EditProgressed" && type !== "LeaseRenewed");
    expect(steps).toEqual(["EditRequested", "ImageUploaded", "EditQueued", "EditStarted", "EditSucceeded"]);
  });

  it("sends a small photo in the request itself, with progress", async () => {
    const progress: number[] = [];
    const created = await client.createEdit({ operation: "upscale", params: { scale: 2 }, image: photo, contentType: "image/jpeg", flow: "direct", onUploadProgress: (sent) => progress.push(sent) });
    // The upload trigger may record the upload first, and a worker may start before this answer.
    expect(["queued", "running"]).toContain(created.status);
    expect(progress.at(-1)).toBe(photo.length);
    expect((await client.waitUntilEnded(created.jobId)).status).toBe("succeeded");
  });

  it("cancels an edit, sees it canceled live, and refuses a second cancel with a typed error", async () => {
    const created = await client.createEdit({ operation: "upscale", image: photo, contentType: "image/jpeg", idempotencyKey: randomUUID() });
    // The photo is already up; cancel races the worker, and either outcome must be final and typed.
    const canceled = await client.cancel(created.jobId).catch((error: unknown) => error);
    const ended = await client.waitUntilEnded(created.jobId);
    if (canceled instanceof EditApiError) {
      expect(canceled).toMatchObject({ status: 409, code: "conflict" });
      expect(ended.status).toBe("succeeded");
    } else {
      expect(ended.status).toBe("canceled");
      await expect(client.cancel(created.jobId)).rejects.toMatchObject({ name: "EditApiError", status: 409, code: "conflict" });
    }
  });

  it("cancels an edit whose photo never came, before any worker sees it", async () => {
    const token = await emulatorIdToken(stack.authHost, userId);
    // The signed flow's first step alone: the job waits for its upload.
    const response = await fetch(`${stack.apiUrl}/v1/edits`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ operation: "upscale", contentType: "image/png" }),
    });
    const { jobId } = (await response.json()) as { jobId: string };
    const seen: JobStatus[] = [];
    const stop = client.watch(jobId, (job) => seen.push(job.status));
    expect((await client.cancel(jobId)).status).toBe("canceled");
    expect((await client.waitUntilEnded(jobId)).status).toBe("canceled");
    stop();
    expect(seen.at(-1)).toBe("canceled");
    await expect(client.cancel(jobId)).rejects.toMatchObject({ status: 409 });
  });

  it("does not show someone else's edit to them", async () => {
    const created = await client.createEdit({ operation: "upscale", params: { scale: 2 }, image: photo, contentType: "image/jpeg" });
    const strangerToken = await emulatorIdToken(stack.authHost, `stranger-${randomUUID()}`);
    const stranger = createEditClient({ apiUrl: stack.apiUrl, getToken: () => strangerToken });
    await expect(stranger.getEdit(created.jobId)).rejects.toMatchObject({ status: 404, code: "not_found" });
    await expect(stranger.cancel(created.jobId)).rejects.toMatchObject({ status: 404 });
    await client.waitUntilEnded(created.jobId);
  });

  it("reads the model catalogue, and the API's OpenAPI document through the Functions Framework", async () => {
    const models = await client.models();
    expect(models.find((model) => model.operation === "upscale")).toMatchObject({ available: true, params: { scale: { default: 4 } } });
    const document = await fetch(`${stack.apiUrl}/v1/openapi.json`);
    expect(document.status).toBe(200);
    expect(await document.json()).toMatchObject({ openapi: "3.1.0", paths: { "/v1/edits": {}, "/v1/edits/{jobId}/cancel": {} } });
  });
});
