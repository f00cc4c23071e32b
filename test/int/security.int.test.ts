/**
 * Security of the API against the real emulators and firebase-admin verifying the Auth emulator's ID tokens: every endpoint wants
 * a valid token; one user cannot see or touch another's job; upload and output URLs are signed
 * narrowly and briefly; per-user quotas answer 429 with Retry-After; and no token reaches a log.
 */
import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { Storage } from "@google-cloud/storage";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createFirebaseTokenVerifier } from "../../adapters/auth/firebaseTokenVerifier.js";
import { createFirestoreEventStore } from "../../adapters/firestore/firestoreEventStore.js";
import { createFirestoreRequestCounter } from "../../adapters/firestore/firestoreRequestCounter.js";
import { createJsonLogger } from "../../adapters/logging/jsonLogger.js";
import { createPubsubJobQueue } from "../../adapters/pubsub/pubsubJobQueue.js";
import { createGcsImageStore } from "../../adapters/storage/gcsImageStore.js";
import { handleCommand } from "../../events/handleCommand.js";
import { createEditApi, type ApiRequest, type ApiResponse } from "../../functions/editApi.js";
import { createQuota } from "../../functions/quota.js";
import { disableUser, emulatorIdToken } from "../../local/auth/emulatorUsers.js";
import { ensureUrlSignerKey } from "../../local/stack/urlSignerKey.js";
import { foreignSignedToken, forgedIdToken } from "../support/forgedTokens.js";
import { emulatorClients } from "../support/clients.js";
import { secretLines } from "../support/faultKit.js";

const services = inject("services");
const { firestore, pubsub, storage } = emulatorClients(services);
const uploadsBucket = `uploads-${randomUUID()}`;
const resultsBucket = `results-${randomUUID()}`;
const topicName = `jobs-${randomUUID()}`;
const config = { uploadsBucket, signedUrlTtlSeconds: 300, resultUrlTtlSeconds: 120, maxDirectUploadBytes: 200_000, maxUploadBytes: 1_000_000 };
const store = createFirestoreEventStore(firestore);
const logLines: string[] = [];
const tokens: string[] = [];
let deps: Parameters<typeof createEditApi>[0];
let api: (request: ApiRequest) => Promise<ApiResponse>;

beforeAll(async () => {
  await pubsub.createTopic(topicName);
  await storage.createBucket(uploadsBucket);
  await storage.createBucket(resultsBucket);
  const signer = JSON.parse(await readFile(ensureUrlSignerKey(), "utf8")) as { client_email: string; private_key: string };
  const signing = new Storage({ projectId: services.projectId, apiEndpoint: services.storageUrl, credentials: signer });
  deps = {
    store,
    images: createGcsImageStore(signing),
    queue: createPubsubJobQueue(pubsub, topicName),
    clock: { now: () => new Date() },
    verifier: createFirebaseTokenVerifier({ projectId: services.projectId, emulatorHost: services.authHost }),
    newJobId: randomUUID,
    config,
    log: createJsonLogger("functions", (line) => logLines.push(line)),
  };
  api = createEditApi(deps);
});

afterAll(async () => {
  await Promise.all([firestore.terminate(), pubsub.close()]);
});

/** A real emulator user's ID token, remembered so that the log test can look for it. */
async function tokenFor(userId: string): Promise<string> {
  const token = await emulatorIdToken(services.authHost, userId);
  tokens.push(token);
  return token;
}

function call(method: string, path: string, options: { token?: string; json?: unknown; body?: Buffer; query?: Record<string, string>; via?: typeof api } = {}) {
  const headers: Record<string, string | undefined> = {};
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  if (options.json !== undefined) headers["content-type"] = "application/json";
  if (options.body !== undefined) headers["content-type"] = "image/jpeg";
  const rawBody = options.json !== undefined ? Buffer.from(JSON.stringify(options.json)) : options.body;
  return (options.via ?? api)({ method, path, query: options.query ?? {}, headers, ...(rawBody ? { rawBody } : {}) });
}

const createSigned = (token: string, via?: typeof api) =>
  call("POST", "/v1/edits", { token, json: { operation: "upscale", params: { scale: 2 }, contentType: "image/jpeg" }, ...(via ? { via } : {}) });

describe("authentication", () => {
  const badTokens: Array<[string, () => Promise<string | undefined>]> = [
    ["no token", async () => undefined],
    ["an expired token", async () => forgedIdToken(services.projectId, { exp: Math.floor(Date.now() / 1000) - 600 })],
    ["a token for another audience", async () => forgedIdToken(services.projectId, { aud: "another-project" })],
    ["a token from another issuer", async () => forgedIdToken(services.projectId, { iss: "https://securetoken.google.com/another-project" })],
    ["a token with an array of audiences", async () => forgedIdToken(services.projectId, { aud: [services.projectId, "another-project"] })],
    ["a token without a subject", async () => forgedIdToken(services.projectId, { sub: "" })],
    ["a wrongly signed token", () => foreignSignedToken(services.projectId)],
  ];
  const endpoints: Array<[string, string, { json?: unknown; body?: Buffer; query?: Record<string, string> }]> = [
    ["GET", "/v1/models", {}],
    ["GET", "/v1/edits", {}],
    ["POST", "/v1/edits", { json: { operation: "upscale", contentType: "image/jpeg" } }],
    ["POST", "/v1/edits", { body: Buffer.from([0xff, 0xd8, 0xff, 0xe0]), query: { operation: "upscale" } }],
    ["GET", `/v1/edits/${randomUUID()}`, {}],
    ["GET", `/v1/edits/${randomUUID()}/events`, {}],
    ["POST", `/v1/edits/${randomUUID()}/cancel`, {}],
  ];
  const cases = badTokens.flatMap(([what, token]) => endpoints.map(([method, path, init]) => [what, method, path, token, init] as const));

  it.each(cases)("answers 401 to %s on %s %s", async (_, method, path, token, init) => {
    const value = await token();
    const response = await call(method, path, { ...init, ...(value === undefined ? {} : { token: value }) });
    expect(response.status).toBe(401);
    expect((response.body as { error: { code: string; message: string } }).error).toMatchObject({ code: "unauthenticated", message: expect.stringMatching(/token/) });
  });
});

describe("isolation", () => {
  it("answers 404 to another user's read, events and cancel, exactly as to a missing job, and lists nothing of it", async () => {
    const alice = await tokenFor(`alice-${randomUUID()}`);
    const bob = await tokenFor(`bob-${randomUUID()}`);
    const created = await createSigned(alice);
    const jobId = (created.body as { jobId: string }).jobId;
    const missing = randomUUID();
    for (const [method, suffix] of [["GET", ""], ["GET", "/events"], ["POST", "/cancel"]] as const) {
      const theirs = await call(method, `/v1/edits/${jobId}${suffix}`, { token: bob });
      const nobodys = await call(method, `/v1/edits/${missing}${suffix}`, { token: bob });
      expect(theirs.status).toBe(404);
      expect(JSON.stringify(theirs.body).replace(jobId, "ID")).toBe(JSON.stringify(nobodys.body).replace(missing, "ID"));
    }
    const listed = await call("GET", "/v1/edits", { token: bob });
    expect(JSON.stringify(listed.body)).not.toContain(jobId);
    expect((await store.getProjection(jobId))?.status).toBe("awaiting_upload");
  });
});

describe("revocation", () => {
  it("refuses a disabled account's still-unexpired token on cancel, where revocation is checked", async () => {
    // (In production only such requests ask; firebase-admin asks the emulator on every request.)
    const userId = `revoked-${randomUUID()}`;
    const token = await tokenFor(userId);
    const jobId = ((await createSigned(token)).body as { jobId: string }).jobId;
    await disableUser(services.authHost, services.projectId, userId);
    const cancel = await call("POST", `/v1/edits/${jobId}/cancel`, { token });
    expect(cancel.status).toBe(401);
    expect((cancel.body as { error: { message: string } }).error.message).toMatch(/disabled/);
    expect((await store.getProjection(jobId))?.status).toBe("awaiting_upload");
  });
});

describe("signed URLs", () => {
  it("signs an upload for one object, the declared content type and the size limit, for minutes", async () => {
    const token = await tokenFor(`uploader-${randomUUID()}`);
    const before = Date.now();
    const created = await createSigned(token);
    const body = created.body as { jobId: string; upload: { url: string; method: string; headers: Record<string, string>; expiresAt: string } };
    const url = new URL(body.upload.url);
    expect(body.upload.method).toBe("PUT");
    expect(decodeURIComponent(url.pathname)).toMatch(new RegExp(`/${uploadsBucket}/uploads/${body.jobId}$`));
    expect(url.searchParams.get("X-Goog-Algorithm")).toBe("GOOG4-RSA-SHA256");
    expect(url.searchParams.get("X-Goog-Expires")).toBe(String(config.signedUrlTtlSeconds));
    expect(url.searchParams.get("X-Goog-Signature")).toMatch(/^[0-9a-f]{256,}$/);
    expect(url.searchParams.get("X-Goog-SignedHeaders")?.split(";").sort()).toEqual(["content-type", "host", "x-goog-content-length-range", "x-goog-if-generation-match"]);
    expect(body.upload.headers).toEqual({ "Content-Type": "image/jpeg", "x-goog-content-length-range": `0,${config.maxUploadBytes}`, "x-goog-if-generation-match": "0" });
    const lifetime = Date.parse(body.upload.expiresAt) - before;
    expect(lifetime).toBeGreaterThan((config.signedUrlTtlSeconds - 5) * 1000);
    expect(lifetime).toBeLessThanOrEqual((config.signedUrlTtlSeconds + 5) * 1000);
  });

  it("signs an output URL for reading only, for the short result lifetime", async () => {
    const userId = `reader-${randomUUID()}`;
    const token = await tokenFor(userId);
    const jobId = (( await createSigned(token)).body as { jobId: string }).jobId;
    const clock = { now: () => new Date() };
    const input = { bucket: uploadsBucket, object: `uploads/${jobId}` };
    await handleCommand({ store, clock }, jobId, { type: "RecordUpload", ...input, contentType: "image/jpeg", sizeBytes: 10 });
    await handleCommand({ store, clock }, jobId, { type: "StartEdit", workerId: "w", leaseMs: 60_000 });
    const output = { bucket: resultsBucket, object: `results/${jobId}/output.png`, contentType: "image/png", width: 2, height: 2, sizeBytes: 10 };
    await handleCommand({ store, clock }, jobId, { type: "CompleteEdit", workerId: "w", output, processingMs: 1, inferenceMs: 1 });
    const job = await call("GET", `/v1/edits/${jobId}`, { token });
    const url = new URL((job.body as { output: { url: string } }).output.url);
    expect(decodeURIComponent(url.pathname)).toMatch(new RegExp(`/${resultsBucket}/results/${jobId}/output.png$`));
    expect(url.searchParams.get("X-Goog-Expires")).toBe(String(config.resultUrlTtlSeconds));
    expect(url.searchParams.get("X-Goog-SignedHeaders")).toBe("host");
  });
});

describe("quotas", () => {
  // One fixed instant, so that every request of the test falls in the same one-minute window.
  const frozen = new Date();
  const quotaApi = () =>
    createEditApi({
      ...deps,
      quota: createQuota({
        counter: createFirestoreRequestCounter(firestore),
        clock: { now: () => frozen },
        config: { quotaRequestsPerMinute: 5, quotaJobsInFlight: 2 },
      }),
    });

  it("answers 429 with Retry-After past the requests per minute", async () => {
    const via = quotaApi();
    const token = await tokenFor(`busy-${randomUUID()}`);
    const statuses: number[] = [];
    for (let index = 0; index < 6; index += 1) statuses.push((await call("GET", "/v1/edits", { token, via })).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
    const refused = await call("GET", "/v1/edits", { token, via });
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers?.["Retry-After"]);
    expect(retryAfter).toBe(Math.ceil((60_000 - (frozen.getTime() % 60_000)) / 1000) || 60);
    expect((refused.body as { error: { code: string; message: string } }).error).toMatchObject({ code: "rate_limited", message: expect.stringMatching(/more than 5 requests in a minute/) });
    // Another user is not held back by this one.
    expect((await call("GET", "/v1/edits", { token: await tokenFor(`calm-${randomUUID()}`), via })).status).toBe(200);
  });

  it("answers 429 with Retry-After past the jobs in flight, and admits again once one has ended", async () => {
    const via = quotaApi();
    const userId = `greedy-${randomUUID()}`;
    const token = await tokenFor(userId);
    const first = await createSigned(token, via);
    const second = await createSigned(token, via);
    const third = await createSigned(token, via);
    expect([first.status, second.status, third.status]).toEqual([202, 202, 429]);
    expect(third.headers?.["Retry-After"]).toMatch(/^\d+$/);
    expect((third.body as { error: { message: string } }).error.message).toMatch(/2 edits that have not ended; the limit is 2/);
    await call("POST", `/v1/edits/${(first.body as { jobId: string }).jobId}/cancel`, { token, via });
    // Four requests so far in this window; the fifth is still within the per-minute limit.
    expect((await createSigned(token, via)).status).toBe(202);
  });
});

describe("what a client sees of a job", () => {
  it("names no worker, bucket, object, idempotency key or request digest in the events, the job, or the projection document", async () => {
    const userId = `curious-${randomUUID()}`;
    const token = await tokenFor(userId);
    const created = await call("POST", "/v1/edits", { token, json: { operation: "upscale", params: { scale: 2 }, contentType: "image/jpeg" } });
    const jobId = (created.body as { jobId: string }).jobId;
    const clock = { now: () => new Date() };
    await handleCommand({ store, clock }, jobId, { type: "RecordUpload", bucket: uploadsBucket, object: `uploads/${jobId}`, contentType: "image/jpeg", sizeBytes: 10 });
    await handleCommand({ store, clock }, jobId, { type: "StartEdit", workerId: "worker-host-4242", leaseMs: 60_000 });
    const key = randomUUID();
    const keyedAnswer = await api({
      method: "POST",
      path: "/v1/edits",
      query: {},
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "idempotency-key": key },
      rawBody: Buffer.from(JSON.stringify({ operation: "upscale", contentType: "image/jpeg" })),
    });
    const keyed = { key, jobId: (keyedAnswer.body as { jobId: string }).jobId };
    const secrets = ["worker-host-4242", uploadsBucket, `uploads/${jobId}`, keyed.key, "requestFingerprint", "workerId", "idempotencyKey"];
    const seen = [
      JSON.stringify((await call("GET", `/v1/edits/${jobId}/events`, { token })).body),
      JSON.stringify((await call("GET", `/v1/edits/${jobId}`, { token })).body),
      JSON.stringify((await call("GET", `/v1/edits/${keyed.jobId}/events`, { token })).body),
      JSON.stringify((await firestore.collection("jobs").doc(jobId).get()).data()),
      JSON.stringify((await firestore.collection("jobs").doc(keyed.jobId).get()).data()),
    ];
    for (const text of seen) for (const secret of secrets) expect(text).not.toContain(secret);
    // The server still has them.
    expect(await store.getProjection(jobId)).toMatchObject({ workerId: "worker-host-4242", input: { bucket: uploadsBucket, object: `uploads/${jobId}` } });
    expect((await store.getProjection(keyed.jobId))?.idempotencyKey).toBe(keyed.key);
  });
});

describe("the in-flight limit under parallel creates", () => {
  it("admits at most the limit of 30 parallel creates, and keeps the owner's count equal to the jobs that have not ended", async () => {
    const limit = 20;
    const via = createEditApi({
      ...deps,
      quota: createQuota({ counter: createFirestoreRequestCounter(firestore), clock: { now: () => new Date() }, config: { quotaRequestsPerMinute: 1000, quotaJobsInFlight: limit } }),
    });
    const userId = `rush-${randomUUID()}`;
    const token = await tokenFor(userId);
    const answers = await Promise.all(Array.from({ length: 30 }, () => createSigned(token, via)));
    const statuses = answers.map((answer) => answer.status);
    expect(statuses.filter((status) => status === 202)).toHaveLength(limit);
    expect(statuses.filter((status) => status === 429)).toHaveLength(30 - limit);
    expect(await store.countInFlight(userId)).toBe(limit);
    const listed = await store.listByOwner(userId, 50);
    expect(listed.filter((job) => job.status === "awaiting_upload")).toHaveLength(limit);
    // Ending one frees exactly one slot.
    const first = answers.find((answer) => answer.status === 202)?.body as { jobId: string };
    expect((await call("POST", `/v1/edits/${first.jobId}/cancel`, { token, via })).status).toBe(202);
    expect(await store.countInFlight(userId)).toBe(limit - 1);
    const [again, over] = [await createSigned(token, via), await createSigned(token, via)];
    expect([again.status, over.status]).toEqual([202, 429]);
  });
});

describe("logs", () => {
  it("carry no token, bearer header or key in any line the API wrote during these tests", () => {
    expect(logLines.length).toBeGreaterThan(5);
    expect(tokens.length).toBeGreaterThan(5);
    expect(secretLines(logLines, tokens)).toEqual([]);
  });
});
