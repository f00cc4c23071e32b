/**
 * The HTTP API's rules through the in-memory doubles: creating edits by both flows, reading,
 * cancelling, idempotency keys, authentication and quotas. The same API against the emulators,
 * with real JWTs and signed URLs, is test/int/editApi.int.test.ts and test/int/security.int.test.ts.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { withStoreDeadlines } from "../../adapters/firestore/storeDeadline.js";
import { QueueUnavailableError } from "../../events/errors.js";
import { handleCommand } from "../../events/handleCommand.js";
import { createEditApi, type ApiRequest, type ApiResponse } from "../../functions/editApi.js";
import { createMemoryRequestCounter } from "../doubles/memoryRequestCounter.js";
import { createQuota } from "../../functions/quota.js";
import { createFixedTokenVerifier } from "../doubles/fixedTokenVerifier.js";
import { memoryCore, testJpeg, type MemoryCore } from "../support/coreFixtures.js";

const config = {
  uploadsBucket: "uploads",
  signedUrlTtlSeconds: 300,
  resultUrlTtlSeconds: 300,
  maxDirectUploadBytes: 200_000,
  maxUploadBytes: 1_000_000,
};

function apiOn(core: MemoryCore, limits?: { quotaRequestsPerMinute: number; quotaJobsInFlight: number }) {
  const alice = `alice-${randomUUID()}`;
  const bob = `bob-${randomUUID()}`;
  const api = createEditApi({
    store: core.store,
    images: core.images,
    queue: core.queue,
    clock: core.clock,
    verifier: createFixedTokenVerifier({ "alice-token": alice, "bob-token": bob }),
    newJobId: randomUUID,
    config,
    log: core.log,
    ...(limits === undefined ? {} : { quota: createQuota({ counter: createMemoryRequestCounter(), clock: core.clock, config: limits }) }),
  });
  const call = (method: string, path: string, init: Partial<ApiRequest> & { token?: string } = {}): Promise<ApiResponse> => {
    const { token = "alice-token", ...rest } = init;
    return api({ method, path, query: {}, ...rest, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...rest.headers } });
  };
  const json = (value: unknown) => Buffer.from(JSON.stringify(value));
  return { call, json, alice, bob };
}

const signedEdit = { operation: "upscale", params: { scale: 2 }, contentType: "image/jpeg" };

describe("creating an edit", () => {
  it("accepts a signed-upload edit with an upload URL and queues nothing until the upload", async () => {
    const core = memoryCore();
    const { call, json } = apiOn(core);
    const response = await call("POST", "/v1/edits", { rawBody: json(signedEdit) });
    expect(response.status).toBe(202);
    const body = response.body as { jobId: string; status: string; upload: { url: string; method: string; headers: Record<string, string>; expiresAt: string } };
    expect(body).toMatchObject({ status: "awaiting_upload", upload: { method: "PUT", headers: { "Content-Type": "image/jpeg" } } });
    expect(body.upload.url).toContain(`uploads/${body.jobId}`);
    expect(Date.parse(body.upload.expiresAt) - core.clock.now().getTime()).toBe(300_000);
    expect(core.queue.published).toEqual([]);
  });

  it("takes a direct upload's bytes, queues the job and publishes it once", async () => {
    const core = memoryCore();
    const { call } = apiOn(core);
    const bytes = await testJpeg();
    const response = await call("POST", "/v1/edits", { query: { operation: "upscale", "params.scale": "4" }, headers: { "content-type": "image/jpeg" }, rawBody: bytes });
    expect(response.status).toBe(202);
    const { jobId } = response.body as { jobId: string };
    expect(response.body).toMatchObject({ status: "queued" });
    expect(core.queue.published).toEqual([{ jobId, operation: "upscale", priority: "interactive" }]);
    expect((await core.images.read({ bucket: "uploads", object: `uploads/${jobId}` }, 1_000_000)).equals(bytes)).toBe(true);
  });

  it.each([
    ["an unknown operation", { ...signedEdit, operation: "sharpen" }, 400, "unknown_operation"],
    ["a parameter out of range", { ...signedEdit, params: { scale: 3 } }, 400, "invalid_param"],
    ["an unknown upscale model", { ...signedEdit, params: { model: "sharpest" } }, 400, "invalid_param"],
    ["a content type it cannot edit", { ...signedEdit, contentType: "image/gif" }, 415, "unsupported_media_type"],
  ])("refuses %s", async (_what, body, status, code) => {
    const core = memoryCore();
    const { call, json } = apiOn(core);
    const response = await call("POST", "/v1/edits", { rawBody: json(body) });
    expect([response.status, (response.body as { error: { code: string } }).error.code]).toEqual([status, code]);
    expect(await core.store.listByOwner("anyone", 10)).toEqual([]);
  });

  it("refuses a direct upload whose bytes are not what Content-Type says", async () => {
    const core = memoryCore();
    const { call } = apiOn(core);
    const response = await call("POST", "/v1/edits", { query: { operation: "upscale", priority: "interactive" }, headers: { "content-type": "image/png" }, rawBody: await testJpeg() });
    expect(response.status).toBe(415);
    expect(core.queue.published).toEqual([]);
  });
});

describe("idempotency keys", () => {
  it("gives the same job for the same key and request; publishes again only while no worker has started it", async () => {
    const core = memoryCore();
    const { call } = apiOn(core);
    const bytes = await testJpeg();
    const request = { query: { operation: "upscale", priority: "interactive" }, headers: { "content-type": "image/jpeg", "idempotency-key": `key-${randomUUID()}` }, rawBody: bytes };
    const first = await call("POST", "/v1/edits", request);
    const { jobId } = first.body as { jobId: string };
    // The first request may have failed between recording the upload and publishing: a retry publishes.
    const again = await call("POST", "/v1/edits", request);
    expect(again.status).toBe(202);
    expect((again.body as { jobId: string }).jobId).toBe(jobId);
    expect(core.queue.published).toEqual([{ jobId, operation: "upscale", priority: "interactive" }, { jobId, operation: "upscale", priority: "interactive" }]);
    expect((await core.store.load(jobId)).filter((event) => event.type === "ImageUploaded")).toHaveLength(1);
    await handleCommand(core, jobId, { type: "StartEdit", workerId: "w1", leaseMs: 60_000 });
    await call("POST", "/v1/edits", request);
    expect(core.queue.published).toHaveLength(2);
    expect(core.logger.messages()).toEqual(["edit requested", "edit request replayed", "edit request replayed"]);
  });

  it("gives another user their own job for the same key", async () => {
    const core = memoryCore();
    const { call, json } = apiOn(core);
    const headers = { "idempotency-key": "same-key" };
    const mine = await call("POST", "/v1/edits", { headers, rawBody: json(signedEdit) });
    const theirs = await call("POST", "/v1/edits", { headers, rawBody: json(signedEdit), token: "bob-token" });
    expect((theirs.body as { jobId: string }).jobId).not.toBe((mine.body as { jobId: string }).jobId);
  });

  it("refuses a key reused for a different request, and a malformed key", async () => {
    const core = memoryCore();
    const { call, json } = apiOn(core);
    const headers = { "idempotency-key": `key-${randomUUID()}` };
    await call("POST", "/v1/edits", { headers, rawBody: json(signedEdit) });
    const reused = await call("POST", "/v1/edits", { headers, rawBody: json({ ...signedEdit, params: { scale: 4 } }) });
    expect([reused.status, (reused.body as { error: { code: string } }).error.code]).toEqual([422, "idempotency_key_reused"]);
    const malformed = await call("POST", "/v1/edits", { headers: { "idempotency-key": "has spaces" }, rawBody: json(signedEdit) });
    expect(malformed.status).toBe(400);
  });
});

describe("reading and cancelling", () => {
  it("shows the owner their job, and answers another user exactly as for a missing job", async () => {
    const core = memoryCore();
    const { call, json, alice } = apiOn(core);
    const { jobId } = (await call("POST", "/v1/edits", { rawBody: json(signedEdit) })).body as { jobId: string };
    const read = await call("GET", `/v1/edits/${jobId}`);
    expect(read).toMatchObject({ status: 200, body: { jobId, ownerId: alice, status: "awaiting_upload", operation: "upscale", params: { scale: 2 }, version: 1 } });
    const history = await call("GET", `/v1/edits/${jobId}/events`);
    expect((history.body as Array<{ type: string }>).map((event) => event.type)).toEqual(["EditRequested"]);
    const listed = await call("GET", "/v1/edits");
    expect((listed.body as { edits: Array<{ jobId: string }> }).edits.map((edit) => edit.jobId)).toEqual([jobId]);

    const missing = await call("GET", `/v1/edits/${randomUUID()}`, { token: "bob-token" });
    for (const [method, path] of [["GET", `/v1/edits/${jobId}`], ["GET", `/v1/edits/${jobId}/events`], ["POST", `/v1/edits/${jobId}/cancel`]] as const) {
      const answer = await call(method, path, { token: "bob-token" });
      expect(answer.status).toBe(404);
      expect((answer.body as { error: { message: string } }).error.message).toBe((missing.body as { error: { message: string } }).error.message.replace(/[0-9a-f-]{36}/, jobId));
    }
    expect((await call("GET", "/v1/edits", { token: "bob-token" })).body).toEqual({ edits: [] });
  });

  it("cancels a job once, and answers 409 once it has ended", async () => {
    const core = memoryCore();
    const { call, json } = apiOn(core);
    const { jobId } = (await call("POST", "/v1/edits", { rawBody: json(signedEdit) })).body as { jobId: string };
    const canceled = await call("POST", `/v1/edits/${jobId}/cancel`);
    expect(canceled).toMatchObject({ status: 202, body: { jobId, status: "canceled" } });
    const again = await call("POST", `/v1/edits/${jobId}/cancel`);
    expect(again.status).toBe(409);
    expect((await core.store.load(jobId)).map((event) => event.type)).toEqual(["EditRequested", "EditCanceled"]);
  });
});

describe("authentication", () => {
  it.each([
    ["no token", ""],
    ["a token nobody issued", "forged"],
  ])("answers 401 to %s, on every route but the OpenAPI document", async (_what, token) => {
    const core = memoryCore();
    const { call, json } = apiOn(core);
    for (const [method, path] of [["GET", "/v1/models"], ["GET", "/v1/edits"], ["POST", "/v1/edits"], ["GET", `/v1/edits/${randomUUID()}`]] as const) {
      expect((await call(method, path, { token, rawBody: json(signedEdit) })).status).toBe(401);
    }
    expect((await call("GET", "/v1/openapi.json", { token })).status).toBe(200);
  });
});

describe("quotas", () => {
  it("answers 429 with Retry-After past the requests per minute, and admits again in the next minute", async () => {
    const core = memoryCore();
    const { call } = apiOn(core, { quotaRequestsPerMinute: 3, quotaJobsInFlight: 10 });
    for (let i = 0; i < 3; i += 1) expect((await call("GET", "/v1/edits")).status).toBe(200);
    const refused = await call("GET", "/v1/edits");
    expect(refused.status).toBe(429);
    expect(Number(refused.headers?.["Retry-After"])).toBeGreaterThan(0);
    // Another user has their own count.
    expect((await call("GET", "/v1/edits", { token: "bob-token" })).status).toBe(200);
    core.clock.advance(60_000);
    expect((await call("GET", "/v1/edits")).status).toBe(200);
  });

  it("answers 429 past the jobs in flight, and admits again once one has ended", async () => {
    const core = memoryCore();
    const { call, json } = apiOn(core, { quotaRequestsPerMinute: 100, quotaJobsInFlight: 2 });
    const first = (await call("POST", "/v1/edits", { rawBody: json(signedEdit) })).body as { jobId: string };
    await call("POST", "/v1/edits", { rawBody: json(signedEdit) });
    const refused = await call("POST", "/v1/edits", { rawBody: json(signedEdit) });
    expect(refused).toMatchObject({ status: 429, headers: { "Retry-After": "5" } });
    // Reading is not creating: still admitted.
    expect((await call("GET", "/v1/edits")).status).toBe(200);
    await call("POST", `/v1/edits/${first.jobId}/cancel`);
    expect((await call("POST", "/v1/edits", { rawBody: json(signedEdit) })).status).toBe(202);
  });
});

describe("a store that is down", () => {
  it("answers 503 with Retry-After, never a 500 or a hang, when the job store does not answer in time", async () => {
    const core = memoryCore();
    // The memory store, behind the Firestore adapter's deadline, with every call hanging.
    const hanging = withStoreDeadlines(
      Object.fromEntries(Object.keys(core.store).map((name) => [name, () => new Promise(() => {})])) as unknown as typeof core.store,
      50,
    );
    const { call, json } = apiOn({ ...core, store: hanging });
    const began = performance.now();
    const created = await call("POST", "/v1/edits", { rawBody: json(signedEdit) });
    const read = await call("GET", `/v1/edits/${randomUUID()}`);
    expect(performance.now() - began).toBeLessThan(2_000);
    expect(created).toMatchObject({ status: 503, headers: { "Retry-After": "5" }, body: { error: { code: "unavailable" } } });
    expect(read).toMatchObject({ status: 503, headers: { "Retry-After": "5" } });
  });

  it("answers 503 when the store reports gRPC UNAVAILABLE, and 503 when the queue will not take the job", async () => {
    const core = memoryCore();
    const unavailable = withStoreDeadlines({ ...core.store, getProjection: () => Promise.reject(Object.assign(new Error("14 UNAVAILABLE: no connection"), { code: 14 })) }, 1_000);
    const { call } = apiOn({ ...core, store: unavailable });
    expect((await call("GET", `/v1/edits/${randomUUID()}`)).status).toBe(503);
    const stuck = apiOn({ ...core, queue: { ...core.queue, publish: () => Promise.reject(new QueueUnavailableError("Pub/Sub did not take the job")) } });
    const direct = await stuck.call("POST", "/v1/edits", {
      query: { operation: "upscale", "params.scale": "2" },
      rawBody: await testJpeg(),
      headers: { "content-type": "image/jpeg" },
    });
    expect(direct).toMatchObject({ status: 503, headers: { "Retry-After": "5" } });
  });
});
