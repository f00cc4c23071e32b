/**
 * The HTTP API and the upload handler against the real emulators (Firestore, Pub/Sub, Cloud
 * Storage, Firebase Auth) with firebase-admin verifying the Auth emulator's ID tokens. The API runs in-process here; the e2e tier runs it under
 * the Functions Framework.
 */
import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Message, Subscription } from "@google-cloud/pubsub";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createFirebaseTokenVerifier } from "../../adapters/auth/firebaseTokenVerifier.js";
import { createFirestoreEventStore } from "../../adapters/firestore/firestoreEventStore.js";
import { createPubsubJobQueue } from "../../adapters/pubsub/pubsubJobQueue.js";
import { createGcsImageStore } from "../../adapters/storage/gcsImageStore.js";
import { handleCommand } from "../../events/handleCommand.js";
import type { JobQueue } from "../../events/jobQueue.js";
import { createEditApi, type ApiRequest, type ApiResponse } from "../../functions/editApi.js";
import { createUploadFinalizedHandler } from "../../functions/uploadFinalized.js";
import { createJobSweeper, UPLOAD_GRACE_MS } from "../../functions/jobSweeper.js";
import { createQuota } from "../../functions/quota.js";
import { createDimensionCheck } from "../../functions/imageDimensions.js";
import { createFirestoreRequestCounter } from "../../adapters/firestore/firestoreRequestCounter.js";
import { emulatorIdToken } from "../../local/auth/emulatorUsers.js";
import { ensureUrlSignerKey } from "../../local/stack/urlSignerKey.js";
import { foreignSignedToken, forgedIdToken } from "../support/forgedTokens.js";
import { emulatorClients } from "../support/clients.js";
import { ensurePhotos } from "../../local/bench/photos.js";

const services = inject("services");
const { firestore, pubsub, storage } = emulatorClients(services);
const uploadsBucket = `uploads-${randomUUID()}`;
const resultsBucket = `results-${randomUUID()}`;
const topicName = `jobs-${randomUUID()}`;
const config = {
  uploadsBucket,
  signedUrlTtlSeconds: 300,
  resultUrlTtlSeconds: 300,
  maxDirectUploadBytes: 200_000,
  maxUploadBytes: 1_000_000,
};

let subscription: Subscription;
const published: Array<{ jobId: string; operation: string }> = [];
let api: (request: ApiRequest) => Promise<ApiResponse>;
let apiDeps: Parameters<typeof createEditApi>[0];
let onUpload: ReturnType<typeof createUploadFinalizedHandler>;
let jpeg: Buffer;
let png: Buffer;
let alice: string;
let bob: string;
const aliceId = `alice-${randomUUID()}`;

beforeAll(async () => {
  const [topic] = await pubsub.createTopic(topicName);
  [subscription] = await topic.createSubscription(`${topicName}-probe`);
  subscription.on("message", (message: Message) => {
    published.push(JSON.parse(message.data.toString()) as { jobId: string; operation: string });
    message.ack();
  });
  await storage.createBucket(uploadsBucket);
  await storage.createBucket(resultsBucket);
  const signer = JSON.parse(await readFile(ensureUrlSignerKey(), "utf8")) as { client_email: string; private_key: string };
  const signingStorage = new (storage.constructor as typeof import("@google-cloud/storage").Storage)({
    projectId: services.projectId,
    apiEndpoint: services.storageUrl,
    credentials: signer,
  });
  const deps = {
    store: createFirestoreEventStore(firestore),
    images: createGcsImageStore(signingStorage),
    queue: createPubsubJobQueue(pubsub, topicName),
    clock: { now: () => new Date() },
  };
  apiDeps = {
    ...deps,
    verifier: createFirebaseTokenVerifier({ projectId: services.projectId, emulatorHost: services.authHost }),
    newJobId: randomUUID,
    config,
  };
  api = createEditApi(apiDeps);
  onUpload = createUploadFinalizedHandler({ ...deps, config });
  const photos = await ensurePhotos();
  jpeg = await sharp(join(photos, "chelsea.png")).resize(96).jpeg().toBuffer();
  png = await sharp(join(photos, "coffee.png")).resize(64).png().toBuffer();
  alice = await emulatorIdToken(services.authHost, aliceId);
  bob = await emulatorIdToken(services.authHost, `bob-${randomUUID()}`);
});

afterAll(async () => {
  await subscription.close();
  await Promise.all([firestore.terminate(), pubsub.close()]);
});

/** Calls the API (or `options.via`, an API with other dependencies) as an HTTP client would. */
function call(method: string, path: string, options: { token?: string; json?: unknown; body?: Buffer; headers?: Record<string, string>; query?: Record<string, string>; via?: typeof api } = {}) {
  const headers: Record<string, string | undefined> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  const rawBody = options.json !== undefined ? Buffer.from(JSON.stringify(options.json)) : options.body;
  return (options.via ?? api)({ method, path, query: options.query ?? {}, headers, ...(rawBody ? { rawBody } : {}) });
}

const errorCode = (response: ApiResponse) => (response.body as { error: { code: string } }).error.code;
const body = <T = Record<string, unknown>>(response: ApiResponse) => response.body as T;

async function until<T>(read: () => T | undefined, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = read();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The real Pub/Sub queue, except that its first publish fails, as when Pub/Sub is briefly unreachable. */
function queueFailingOnce(): JobQueue {
  const realQueue = createPubsubJobQueue(pubsub, topicName);
  let failed = false;
  return {
    publish(message) {
      if (failed) return realQueue.publish(message);
      failed = true;
      return Promise.reject(new Error("injected: Pub/Sub unavailable"));
    },
  };
}

describe("authentication", () => {
  it.each([
    ["no token", async () => undefined],
    ["a token that is not a JWT", async () => "not-a-jwt"],
    ["an expired token", async () => forgedIdToken(services.projectId, { exp: Math.floor(Date.now() / 1000) - 300 })],
    ["a token for another audience", async () => forgedIdToken(services.projectId, { aud: "someone-else" })],
    ["a token from another issuer", async () => forgedIdToken(services.projectId, { iss: "https://evil.example" })],
    ["a token signed by another key", () => foreignSignedToken(services.projectId)],
  ])("answers 401 to %s", async (_, token) => {
    const response = await call("GET", "/v1/edits", { token: (await token()) ?? "" });
    expect(response.status).toBe(401);
    expect(errorCode(response)).toBe("unauthenticated");
  });
});

describe("signed upload flow", () => {
  it("accepts an edit, signs an upload URL, and the upload queues and publishes the job", async () => {
    const created = await call("POST", "/v1/edits", { token: alice, json: { operation: "upscale", contentType: "image/jpeg" } });
    expect(created.status).toBe(202);
    const { jobId, status, upload } = body<{ jobId: string; status: string; upload: { url: string; method: string; headers: Record<string, string>; expiresAt: string } }>(created);
    expect(status).toBe("awaiting_upload");
    expect(upload.method).toBe("PUT");
    expect(upload.headers["x-goog-content-length-range"]).toBe(`0,${config.maxUploadBytes}`);
    expect(Date.parse(upload.expiresAt) - Date.now()).toBeLessThanOrEqual(300_000);
    expect(new URL(upload.url).pathname).toBe(`/${uploadsBucket}/uploads/${jobId}`);

    const put = await fetch(upload.url, { method: "PUT", headers: upload.headers, body: new Uint8Array(jpeg) });
    expect(put.status).toBe(200);
    const outcome = await onUpload({ bucket: uploadsBucket, name: `uploads/${jobId}`, contentType: "image/jpeg", size: String(jpeg.length) });
    expect(outcome).toBe("queued");

    const job = await call("GET", `/v1/edits/${jobId}`, { token: alice });
    expect(body(job)).toMatchObject({ jobId, status: "queued", operation: "upscale", params: { scale: 4 }, ownerId: aliceId, version: 3 });
    await until(() => published.find((message) => message.jobId === jobId));
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(published.filter((message) => message.jobId === jobId)).toHaveLength(1);
  });

  it("publishes again when a notification is repeated after the publish failed, and not once a worker has started", async () => {
    const created = await call("POST", "/v1/edits", { token: alice, json: { operation: "upscale", contentType: "image/jpeg" } });
    const { jobId } = body<{ jobId: string }>(created);
    const notification = { bucket: uploadsBucket, name: `uploads/${jobId}`, contentType: "image/jpeg", size: String(jpeg.length) };
    await storage.bucket(uploadsBucket).file(`uploads/${jobId}`).save(jpeg, { contentType: "image/jpeg" });
    const store = createFirestoreEventStore(firestore);
    const flakyHandler = createUploadFinalizedHandler({ store, images: createGcsImageStore(storage), queue: queueFailingOnce(), clock: { now: () => new Date() }, config });

    // The first delivery records the upload, then fails to publish: Eventarc will repeat it.
    await expect(flakyHandler(notification)).rejects.toThrow("injected");
    expect(body(await call("GET", `/v1/edits/${jobId}`, { token: alice }))).toMatchObject({ status: "queued" });
    expect(await flakyHandler(notification)).toBe("republished");
    await until(() => published.find((message) => message.jobId === jobId));

    // Once a worker holds the job, a repeated notification publishes nothing more.
    await handleCommand({ store, clock: { now: () => new Date() } }, jobId, { type: "StartEdit", workerId: "w-test", leaseMs: 60_000 });
    expect(await flakyHandler(notification)).toBe("unchanged");
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(published.filter((message) => message.jobId === jobId)).toHaveLength(1);
  });

  it.each([
    ["an object outside the uploads prefix", (jobId: string) => ({ name: `uploads/../${jobId}` })],
    ["another bucket", (jobId: string) => ({ bucket: resultsBucket, name: `uploads/${jobId}` })],
  ])("ignores a notification for %s", async (_, shape) => {
    const created = await call("POST", "/v1/edits", { token: alice, json: { operation: "upscale", contentType: "image/jpeg" } });
    const { jobId } = body<{ jobId: string }>(created);
    const outcome = await onUpload({ bucket: uploadsBucket, contentType: "image/jpeg", size: "10", ...shape(jobId) });
    expect(outcome).toBe("ignored");
    expect(body(await call("GET", `/v1/edits/${jobId}`, { token: alice }))).toMatchObject({ status: "awaiting_upload" });
  });

  it.each([
    ["over the size limit", { contentType: "image/jpeg", size: String(config.maxUploadBytes + 1) }, "image_too_large"],
    ["of another content type than declared", { contentType: "image/png", size: "100" }, "content_type_mismatch"],
  ])("fails the edit for an upload %s, with a reason", async (_, upload, code) => {
    const created = await call("POST", "/v1/edits", { token: alice, json: { operation: "upscale", contentType: "image/jpeg" } });
    const { jobId } = body<{ jobId: string }>(created);
    expect(await onUpload({ bucket: uploadsBucket, name: `uploads/${jobId}`, ...upload })).toBe("refused");
    expect(body(await call("GET", `/v1/edits/${jobId}`, { token: alice }))).toMatchObject({ status: "failed", error: { code } });
  });
});

describe("signed uploads: what the bytes are", () => {
  const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64" fill="red"/></svg>');
  it.each([
    ["an SVG", async () => svg],
    ["a GIF", async () => sharp(png).gif().toBuffer()],
    ["a TIFF", async () => sharp(png).tiff().toBuffer()],
  ])("fails the edit for %s uploaded as image/png through the signed URL, before any decoder sees it, and deletes it", async (_, bytes) => {
    const created = await call("POST", "/v1/edits", { token: alice, json: { operation: "upscale", contentType: "image/png" } });
    const { jobId, upload } = body<{ jobId: string; upload: { url: string; headers: Record<string, string> } }>(created);
    const payload = await bytes();
    expect((await fetch(upload.url, { method: "PUT", headers: upload.headers, body: new Uint8Array(payload) })).status).toBe(200);
    expect(await onUpload({ bucket: uploadsBucket, name: `uploads/${jobId}`, contentType: "image/png", size: String(payload.length) })).toBe("refused");
    expect(body(await call("GET", `/v1/edits/${jobId}`, { token: alice }))).toMatchObject({
      status: "failed",
      error: { code: "unsupported_image", message: "The upload is not a JPEG, PNG, WebP or AVIF image, though it was sent as image/png." },
    });
    const [exists] = await storage.bucket(uploadsBucket).file(`uploads/${jobId}`).exists();
    expect(exists).toBe(false);
    expect(published.some((message) => message.jobId === jobId)).toBe(false);
  });

  it("fails the edit for a JPEG uploaded as image/png, naming what it is", async () => {
    const created = await call("POST", "/v1/edits", { token: alice, json: { operation: "upscale", contentType: "image/png" } });
    const { jobId, upload } = body<{ jobId: string; upload: { url: string; headers: Record<string, string> } }>(created);
    expect((await fetch(upload.url, { method: "PUT", headers: upload.headers, body: new Uint8Array(jpeg) })).status).toBe(200);
    expect(await onUpload({ bucket: uploadsBucket, name: `uploads/${jobId}`, contentType: "image/png", size: String(jpeg.length) })).toBe("refused");
    expect(body(await call("GET", `/v1/edits/${jobId}`, { token: alice }))).toMatchObject({
      status: "failed",
      error: { code: "content_type_mismatch", message: "The upload is image/jpeg, but the edit was requested for image/png." },
    });
  });

  it("signs the upload URL for one write (x-goog-if-generation-match: 0), which the client must send", async () => {
    const created = await call("POST", "/v1/edits", { token: alice, json: { operation: "upscale", contentType: "image/jpeg" } });
    const { upload } = body<{ upload: { url: string; headers: Record<string, string> } }>(created);
    expect(upload.headers["x-goog-if-generation-match"]).toBe("0");
    expect(new URL(upload.url).searchParams.get("X-Goog-SignedHeaders")?.split(";")).toContain("x-goog-if-generation-match");
    // Cloud Storage answers a second PUT with 412 Precondition Failed. fake-gcs-server does not
    // check this precondition on XML-API PUTs (a second PUT there answers 200), so what is tested
    // here is that the URL is signed for the header: a PUT without it does not match the signature.
    expect((await fetch(upload.url, { method: "PUT", headers: upload.headers, body: new Uint8Array(jpeg) })).status).toBe(200);
  });
});

describe("abandoned uploads", () => {
  const expiry = config.signedUrlTtlSeconds * 1000 + UPLOAD_GRACE_MS;
  const later = (ms: number) => ({ now: () => new Date(Date.now() + ms) });
  const store = () => createFirestoreEventStore(firestore);

  it("end by themselves once the upload URL has expired, freeing the owner's in-flight slot", async () => {
    const userId = `walked-away-${randomUUID()}`;
    const token = await emulatorIdToken(services.authHost, userId);
    const via = createEditApi({
      ...apiDeps,
      quota: createQuota({ counter: createFirestoreRequestCounter(firestore), clock: { now: () => new Date() }, config: { quotaRequestsPerMinute: 100, quotaJobsInFlight: 1 } }),
    });
    const first = await call("POST", "/v1/edits", { token, via, json: { operation: "upscale", contentType: "image/jpeg" } });
    expect(first.status).toBe(202);
    const { jobId } = body<{ jobId: string }>(first);
    expect((await call("POST", "/v1/edits", { token, via, json: { operation: "upscale", contentType: "image/jpeg" } })).status).toBe(429);

    // Before the URL (and its grace) expired, the sweeper leaves the job alone.
    const early = createJobSweeper({ store: store(), queue: apiDeps.queue, clock: later(expiry - 60_000), config: { maxAttempts: 3, queuedRepublishSeconds: 86_400, signedUrlTtlSeconds: config.signedUrlTtlSeconds, jobDeadlineSeconds: 300 } });
    expect((await early()).expired).not.toContain(jobId);
    expect((await store().getProjection(jobId))?.status).toBe("awaiting_upload");

    // The sweeper takes 200 jobs a run, oldest first; other tests' abandoned jobs come before.
    const sweep = createJobSweeper({ store: store(), queue: apiDeps.queue, clock: later(expiry + 1_000), config: { maxAttempts: 3, queuedRepublishSeconds: 86_400, signedUrlTtlSeconds: config.signedUrlTtlSeconds, jobDeadlineSeconds: 300 } });
    for (let run = 0; run < 20 && (await store().getProjection(jobId))?.status === "awaiting_upload"; run += 1) await sweep();
    expect(body(await call("GET", `/v1/edits/${jobId}`, { token }))).toMatchObject({
      status: "canceled",
      error: { code: "upload_expired", message: expect.stringMatching(/not uploaded before its upload URL expired/) },
    });
    const events = body<Array<{ type: string; data: Record<string, unknown> }>>(await call("GET", `/v1/edits/${jobId}/events`, { token }));
    expect(events.at(-1)).toMatchObject({ type: "EditCanceled", data: { by: "system", reason: "upload_expired" } });
    expect(await store().countInFlight(userId)).toBe(0);
    expect((await call("POST", "/v1/edits", { token, via, json: { operation: "upscale", contentType: "image/jpeg" } })).status).toBe(202);
  });

  it("refuse an upload that arrives after the URL expired, and delete its object", async () => {
    const created = await call("POST", "/v1/edits", { token: alice, json: { operation: "upscale", contentType: "image/jpeg" } });
    const { jobId } = body<{ jobId: string }>(created);
    await storage.bucket(uploadsBucket).file(`uploads/${jobId}`).save(jpeg, { contentType: "image/jpeg" });
    const late = createUploadFinalizedHandler({ store: store(), images: createGcsImageStore(storage), queue: apiDeps.queue, clock: later(expiry + 1_000), config });
    expect(await late({ bucket: uploadsBucket, name: `uploads/${jobId}`, contentType: "image/jpeg", size: String(jpeg.length) })).toBe("refused");
    expect(body(await call("GET", `/v1/edits/${jobId}`, { token: alice }))).toMatchObject({ status: "canceled", error: { code: "upload_expired" } });
    expect((await storage.bucket(uploadsBucket).file(`uploads/${jobId}`).exists())[0]).toBe(false);
    expect(published.some((message) => message.jobId === jobId)).toBe(false);
  });

  it("refuse an upload that arrives after the edit was canceled, and delete its object", async () => {
    const created = await call("POST", "/v1/edits", { token: alice, json: { operation: "upscale", contentType: "image/jpeg" } });
    const { jobId } = body<{ jobId: string }>(created);
    expect((await call("POST", `/v1/edits/${jobId}/cancel`, { token: alice })).status).toBe(202);
    await storage.bucket(uploadsBucket).file(`uploads/${jobId}`).save(jpeg, { contentType: "image/jpeg" });
    expect(await onUpload({ bucket: uploadsBucket, name: `uploads/${jobId}`, contentType: "image/jpeg", size: String(jpeg.length) })).toBe("refused");
    expect((await storage.bucket(uploadsBucket).file(`uploads/${jobId}`).exists())[0]).toBe(false);
    expect(body(await call("GET", `/v1/edits/${jobId}`, { token: alice }))).toMatchObject({ status: "canceled" });
  });
});

describe("direct flow", () => {
  it("refuses at once an image whose output at the edit's scale is over the output limit, from its header", async () => {
    const via = createEditApi({ ...apiDeps, checkDimensions: createDimensionCheck(1_000_000, 1_000_000) });
    const photo = await sharp({ create: { width: 400, height: 300, channels: 3, background: "gray" } }).jpeg().toBuffer();
    const send = (scale: string) => call("POST", "/v1/edits", { token: alice, via, body: photo, headers: { "content-type": "image/jpeg" }, query: { operation: "upscale", "params.scale": scale } });
    const refused = await send("4");
    expect(refused.status).toBe(413);
    expect(body<{ error: { message: string } }>(refused).error.message).toBe("scaling a 400×300 image 4 times gives 2 megapixels; the output limit is 1 megapixels");
    expect((await send("2")).status).toBe(202);
  });

  it("refuses unknown fields of a signed-upload request, naming them", async () => {
    const response = await call("POST", "/v1/edits", { token: alice, json: { operation: "upscale", contentType: "image/jpeg", ownerId: "someone-else", __proto__x: 1 } });
    expect(response.status).toBe(400);
    expect(body<{ error: { code: string; message: string } }>(response).error).toEqual({
      code: "invalid_param",
      message: 'unknown fields "ownerId", "__proto__x"; the body takes operation, params, contentType, priority, cache, webhook, output',
    });
    const proto = await call("POST", "/v1/edits", { token: alice, body: Buffer.from('{"operation":"upscale","contentType":"image/jpeg","params":{"__proto__":{"scale":4},"constructor":1}}'), headers: { "content-type": "application/json" } });
    expect(proto.status).toBe(400);
    expect(body<{ error: { message: string } }>(proto).error.message).toBe('params.__proto__: upscale has no parameter "__proto__"');
  });

  it("takes the bytes, queues the job and publishes it once", async () => {
    const response = await call("POST", "/v1/edits", {
      token: alice,
      body: jpeg,
      headers: { "content-type": "image/jpeg" },
      query: { operation: "upscale", "params.scale": "2" },
    });
    expect(response.status).toBe(202);
    const { jobId, status } = body<{ jobId: string; status: string }>(response);
    expect(status).toBe("queued");
    const [bytes] = await storage.bucket(uploadsBucket).file(`uploads/${jobId}`).download();
    expect(bytes.equals(jpeg)).toBe(true);
    expect(body(await call("GET", `/v1/edits/${jobId}`, { token: alice }))).toMatchObject({ params: { scale: 2, model: "psnr" } });
    await until(() => published.find((message) => message.jobId === jobId));
  });

  it("takes upscale's perceptual model as a query parameter and keeps it on the job", async () => {
    const query = { operation: "upscale", "params.scale": "4", "params.model": "perceptual" };
    const response = await call("POST", "/v1/edits", { token: alice, body: jpeg, headers: { "content-type": "image/jpeg" }, query });
    expect(response.status).toBe(202);
    const { jobId } = body<{ jobId: string }>(response);
    expect(body(await call("GET", `/v1/edits/${jobId}`, { token: alice }))).toMatchObject({ params: { scale: 4, model: "perceptual" } });
  });

  it("publishes the job when a request retried with its Idempotency-Key follows a failed publish", async () => {
    const via = createEditApi({ ...apiDeps, queue: queueFailingOnce() });
    const headers = { "content-type": "image/jpeg", "idempotency-key": randomUUID() };
    const send = () => call("POST", "/v1/edits", { token: alice, body: jpeg, headers, query: { operation: "upscale" }, via });
    expect((await send()).status).toBe(500);
    const retried = await send();
    expect(retried.status).toBe(202);
    const { jobId } = body<{ jobId: string }>(retried);
    expect(body(retried)).toMatchObject({ status: "queued" });
    await until(() => published.find((message) => message.jobId === jobId));
  });

  it.each([
    ["an empty body", { body: Buffer.alloc(0), headers: { "content-type": "image/jpeg" } }, 400, "bad_request"],
    ["PNG bytes sent as JPEG", { body: "png", headers: { "content-type": "image/jpeg" } }, 415, "unsupported_media_type"],
    ["HTML sent as an image", { body: Buffer.from("<html>hi</html>"), headers: { "content-type": "image/png" } }, 415, "unsupported_media_type"],
    ["a body over the limit", { body: Buffer.alloc(config.maxDirectUploadBytes + 1, 0xff), headers: { "content-type": "image/jpeg" } }, 413, "payload_too_large"],
    ["a scale out of range", { query: { "params.scale": "3" } }, 400, "invalid_param"],
    ["an unknown upscale model", { query: { "params.model": "gan" } }, 400, "invalid_param"],
    ["an unknown parameter", { query: { "params.sharpen": "1" } }, 400, "invalid_param"],
    ["an unknown operation", { query: { operation: "teleport" } }, 400, "unknown_operation"],
    ["a strength out of range", { query: { operation: "enhance", "params.strength": "1.5" } }, 400, "invalid_param"],
    ["a strength that is not a number", { query: { operation: "comic", "params.strength": "strong" } }, 400, "invalid_param"],
    ["a scale given to an edit without one", { query: { operation: "aged", "params.scale": "2" } }, 400, "invalid_param"],
  ] as const)("refuses %s", async (_, variant, status, code) => {
    const requestBody = "body" in variant ? (variant.body === "png" ? png : variant.body) : jpeg;
    const headers = "headers" in variant ? variant.headers : { "content-type": "image/jpeg" };
    const query = { operation: "upscale", ...("query" in variant ? variant.query : {}) };
    const response = await call("POST", "/v1/edits", { token: alice, body: requestBody, headers, query });
    expect(response.status).toBe(status);
    expect(errorCode(response)).toBe(code);
  });

  it("names the parameter that is wrong", async () => {
    const response = await call("POST", "/v1/edits", { token: alice, json: { operation: "upscale", contentType: "image/jpeg", params: { scale: 8 } } });
    expect(response.status).toBe(400);
    expect(body<{ error: { message: string } }>(response).error.message).toContain("scale");
    const strength = await call("POST", "/v1/edits", { token: alice, body: jpeg, headers: { "content-type": "image/jpeg" }, query: { operation: "enhance", "params.strength": "-1" } });
    expect(body<{ error: { message: string } }>(strength).error.message).toBe("params.strength: strength must be between 0 and 1");
  });
});

describe("idempotency keys", () => {
  const request = { operation: "upscale", contentType: "image/jpeg" };

  it("returns the same job for the same key and request from the same user", async () => {
    const key = randomUUID();
    const first = await call("POST", "/v1/edits", { token: alice, json: request, headers: { "idempotency-key": key } });
    const second = await call("POST", "/v1/edits", { token: alice, json: request, headers: { "idempotency-key": key } });
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    expect(body(second).jobId).toBe(body(first).jobId);
  });

  it("gives another user their own job for the same key", async () => {
    const key = randomUUID();
    const mine = await call("POST", "/v1/edits", { token: alice, json: request, headers: { "idempotency-key": key } });
    const theirs = await call("POST", "/v1/edits", { token: bob, json: request, headers: { "idempotency-key": key } });
    expect(body(theirs).jobId).not.toBe(body(mine).jobId);
  });

  it("refuses a key reused for a different request", async () => {
    const key = randomUUID();
    await call("POST", "/v1/edits", { token: alice, json: request, headers: { "idempotency-key": key } });
    const reused = await call("POST", "/v1/edits", { token: alice, json: { ...request, params: { scale: 2 } }, headers: { "idempotency-key": key } });
    expect(reused.status).toBe(422);
    expect(errorCode(reused)).toBe("idempotency_key_reused");
  });

  it("refuses a malformed key", async () => {
    const response = await call("POST", "/v1/edits", { token: alice, json: request, headers: { "idempotency-key": "has spaces in it" } });
    expect(response.status).toBe(400);
    expect(errorCode(response)).toBe("invalid_idempotency_key");
  });
});

describe("isolation and cancellation", () => {
  it("answers 404 to another user's job, exactly as to a missing one", async () => {
    const created = await call("POST", "/v1/edits", { token: alice, json: { operation: "upscale", contentType: "image/jpeg" } });
    const { jobId } = body<{ jobId: string }>(created);
    const missing = await call("GET", `/v1/edits/${randomUUID()}`, { token: bob });
    for (const [method, path] of [
      ["GET", `/v1/edits/${jobId}`],
      ["GET", `/v1/edits/${jobId}/events`],
      ["POST", `/v1/edits/${jobId}/cancel`],
    ] as const) {
      const response = await call(method, path, { token: bob });
      expect(response.status).toBe(404);
      expect(errorCode(response)).toBe(errorCode(missing));
    }
    const list = body<{ edits: Array<{ jobId: string }> }>(await call("GET", "/v1/edits", { token: bob }));
    expect(list.edits.map((edit) => edit.jobId)).not.toContain(jobId);
    expect(body(await call("GET", `/v1/edits/${jobId}`, { token: alice }))).toMatchObject({ status: "awaiting_upload" });
  });

  it("cancels a job once, and answers 409 when it has ended", async () => {
    const created = await call("POST", "/v1/edits", { token: alice, json: { operation: "upscale", contentType: "image/jpeg" } });
    const { jobId } = body<{ jobId: string }>(created);
    const canceled = await call("POST", `/v1/edits/${jobId}/cancel`, { token: alice });
    expect(canceled.status).toBe(202);
    expect(body(canceled)).toMatchObject({ status: "canceled" });
    const again = await call("POST", `/v1/edits/${jobId}/cancel`, { token: alice });
    expect(again.status).toBe(409);
    const events = body<Array<{ seq: number; type: string }>>(await call("GET", `/v1/edits/${jobId}/events`, { token: alice }));
    expect(events.map((event) => [event.seq, event.type])).toEqual([
      [1, "EditRequested"],
      [2, "EditCanceled"],
    ]);
  });
});

describe("models", () => {
  it("lists every edit with its parameters and whether it is learned or classical", async () => {
    expect((await call("GET", "/v1/models")).status).toBe(401);
    const response = await call("GET", "/v1/models", { token: alice });
    expect(response.status).toBe(200);
    const models = body<{ models: Array<{ operation: string; method: string }> }>(response).models;
    expect(models.map((model) => model.operation)).toEqual(["upscale", "enhance", "remove_background", "comic", "aged"]);
    expect(models.find((model) => model.operation === "comic")?.method).toBe("classical");
    expect(models.find((model) => model.operation === "aged")?.method).toBe("classical");
    expect(models.find((model) => model.operation === "upscale")).toMatchObject({
      method: "learned",
      params: {
        scale: { kind: "integer", default: 4, allowed: [2, 4] },
        model: {
          kind: "choice",
          default: "psnr",
          allowed: ["psnr", "perceptual"],
          choices: {
            psnr: { title: expect.stringMatching(/SRMD/), license: expect.stringMatching(/BSD-3-Clause/) },
            perceptual: { title: "Real-ESRGAN x4plus", description: expect.stringMatching(/by eye/), license: expect.stringMatching(/BSD-3-Clause/) },
          },
        },
      },
    });
    for (const operation of ["enhance", "comic", "aged"]) {
      expect(models.find((model) => model.operation === operation)).toMatchObject({
        params: { strength: { kind: "number", min: 0, max: 1, description: expect.any(String) } },
      });
    }
    expect(models.find((model) => model.operation === "remove_background")).toMatchObject({ license: expect.stringMatching(/AGPL-3.0/) });
  });
});
