/**
 * Conformance of the HTTP API to its OpenAPI document (functions/openApiDocument.ts): every route
 * is driven on the real emulators with real JWTs, and every answer's status must be listed for its
 * route and method, and its body must validate (ajv, JSON Schema 2020-12) against the schema the
 * document gives. A method a path does not list must answer 405; a path not listed, 404 or 401.
 * Every method a path does not list is tried on every path and must answer 405 with `Allow`
 * naming exactly the listed ones; a header the document marks required must be in the answer.
 * At the end, every documented operation must have been answered with its success status, and
 * every error status the document lists for `POST /v1/edits` (429 included) must have been seen.
 */
import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Storage } from "@google-cloud/storage";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createFirebaseTokenVerifier } from "../../adapters/auth/firebaseTokenVerifier.js";
import { createFirestoreEventStore } from "../../adapters/firestore/firestoreEventStore.js";
import { createFirestoreRequestCounter } from "../../adapters/firestore/firestoreRequestCounter.js";
import { createPubsubJobQueue } from "../../adapters/pubsub/pubsubJobQueue.js";
import { createGcsImageStore } from "../../adapters/storage/gcsImageStore.js";
import { createFirestoreWebhookOutbox } from "../../adapters/firestore/firestoreWebhookOutbox.js";
import { createFirestoreWebhookSecrets } from "../../adapters/firestore/firestoreWebhookSecrets.js";
import { createWebhookGuard } from "../../adapters/webhooks/webhookGuard.js";
import { newWebhookSecret } from "../../functions/webhookSignature.js";
import { handleCommand } from "../../events/handleCommand.js";
import { createEditApi, type ApiRequest, type ApiResponse } from "../../functions/editApi.js";
import { idempotentJobId } from "../../functions/editHandlers.js";
import { createQuota } from "../../functions/quota.js";
import { OPENAPI_DOCUMENT } from "../../functions/openApiDocument.js";
import { emulatorIdToken } from "../../local/auth/emulatorUsers.js";
import { ensureUrlSignerKey } from "../../local/stack/urlSignerKey.js";
import { ensurePhotos } from "../../local/bench/photos.js";
import { freePort } from "../../local/stack/processes.js";
import { emulatorClients } from "../support/clients.js";

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;
const services = inject("services");
const { firestore, pubsub, storage } = emulatorClients(services);
const uploadsBucket = `uploads-${randomUUID()}`;
const resultsBucket = `results-${randomUUID()}`;
const topicName = `jobs-${randomUUID()}`;
const config = { uploadsBucket, signedUrlTtlSeconds: 300, resultUrlTtlSeconds: 300, maxDirectUploadBytes: 200_000, maxUploadBytes: 1_000_000 };

type Method = "get" | "post" | "put" | "delete" | "patch";
const METHODS: readonly Method[] = ["get", "post", "put", "delete", "patch"];
type Operation = { responses: Record<string, { headers?: Record<string, { required?: boolean }>; content?: Record<string, { schema: object }> }> };
const paths = OPENAPI_DOCUMENT.paths as unknown as Record<string, Partial<Record<Method, Operation>>>;
const ajv = addFormats(new Ajv2020({ strict: false, allErrors: true }));
ajv.addSchema(OPENAPI_DOCUMENT, "api");
const answered = new Set<string>();
/** What the API logged of its failures, shown beside any 5xx answer. */
const failures: string[] = [];

let api: (request: ApiRequest) => Promise<ApiResponse>;
let apiWithStorageDown: (request: ApiRequest) => Promise<ApiResponse>;
/** The same API with a quota of 2 requests a minute. */
let apiWithQuota: (request: ApiRequest) => Promise<ApiResponse>;
let alice: string;
let bob: string;
const aliceId = `alice-${randomUUID()}`;
let jpeg: Buffer;
let store: ReturnType<typeof createFirestoreEventStore>;
let outbox: ReturnType<typeof createFirestoreWebhookOutbox>;

beforeAll(async () => {
  await pubsub.createTopic(topicName);
  await storage.createBucket(uploadsBucket);
  await storage.createBucket(resultsBucket);
  const signer = JSON.parse(await readFile(ensureUrlSignerKey(), "utf8")) as { client_email: string; private_key: string };
  store = createFirestoreEventStore(firestore);
  outbox = createFirestoreWebhookOutbox(firestore);
  // The production guard, with a DNS of the test's own (no network here).
  const guard = createWebhookGuard({ allowLoopbackHttp: false, resolve: async (host) => (host === "hooks.example.com" ? ["93.184.215.14"] : []) });
  const deps = {
    webhooks: { checkUrl: guard.check, secrets: createFirestoreWebhookSecrets(firestore), outbox, newSecret: newWebhookSecret },
    store,
    queue: createPubsubJobQueue(pubsub, topicName),
    clock: { now: () => new Date() },
    verifier: createFirebaseTokenVerifier({ projectId: services.projectId, emulatorHost: services.authHost }),
    newJobId: randomUUID,
    config,
    log: (entry: Record<string, unknown>) => {
      if (entry.severity === "ERROR") failures.push(String(entry.error));
    },
  };
  api = createEditApi({ ...deps, images: createGcsImageStore(new Storage({ projectId: services.projectId, apiEndpoint: services.storageUrl, credentials: signer })) });
  // Storage on a port where nothing listens: the API must answer 503, as its document says.
  const deadStorage = new Storage({
    projectId: services.projectId,
    apiEndpoint: `http://127.0.0.1:${await freePort()}`,
    credentials: signer,
    retryOptions: { autoRetry: false },
  });
  apiWithStorageDown = createEditApi({ ...deps, images: createGcsImageStore(deadStorage) });
  const quota = createQuota({ counter: createFirestoreRequestCounter(firestore), clock: deps.clock, config: { quotaRequestsPerMinute: 2, quotaJobsInFlight: 20 } });
  apiWithQuota = createEditApi({ ...deps, images: createGcsImageStore(new Storage({ projectId: services.projectId, apiEndpoint: services.storageUrl, credentials: signer })), quota });
  alice = await emulatorIdToken(services.authHost, aliceId);
  bob = await emulatorIdToken(services.authHost, `bob-${randomUUID()}`);
  jpeg = await sharp(join(await ensurePhotos(), "chelsea.png")).resize(64).jpeg().toBuffer();
});

afterAll(async () => {
  await Promise.all([firestore.terminate(), pubsub.close()]);
});

/** Every route that needs a token, besides the model list (tested on its own for 401). */
const TOKEN_ROUTES = [
  ["GET", "/v1/edits"],
  ["POST", "/v1/edits"],
  ["GET", "/v1/edits/x"],
  ["GET", "/v1/edits/x/events"],
  ["POST", "/v1/edits/x/cancel"],
  ["GET", "/v1/edits/x/webhooks"],
  ["GET", "/v1/webhooks/secret"],
  ["POST", "/v1/webhooks/secret"],
] as const;

/** The documented path template a concrete path falls under, if any. */
function templateOf(path: string): string | undefined {
  return Object.keys(paths).find((template) => new RegExp(`^${template.replace(/\{[^}]+\}/g, "[^/]+")}$`).test(path));
}

/** Makes one call and checks its answer against the document. */
async function call(
  method: string,
  path: string,
  options: { token?: string; json?: unknown; body?: Buffer; headers?: Record<string, string>; query?: Record<string, string>; via?: typeof api } = {},
): Promise<ApiResponse> {
  const headers: Record<string, string | undefined> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.json !== undefined) headers["content-type"] = "application/json";
  const rawBody = options.json !== undefined ? Buffer.from(JSON.stringify(options.json)) : options.body;
  const response = await (options.via ?? api)({ method, path, query: options.query ?? {}, headers, ...(rawBody ? { rawBody } : {}) });
  const logged = response.status >= 500 ? ` (the API logged: ${failures.at(-1) ?? "nothing"})` : "";
  const where = `${method} ${path} → ${response.status} ${JSON.stringify(response.body).slice(0, 300)}${logged}`;
  const template = templateOf(path);
  const errorSchema = ajv.getSchema("api#/components/schemas/Error");
  if (!template) {
    expect([401, 404], where).toContain(response.status);
    expect(errorSchema?.(response.body), where).toBe(true);
    return response;
  }
  const operation = paths[template]?.[method.toLowerCase() as Method];
  if (!operation) {
    expect(response.status, where).toBe(405);
    expect(errorSchema?.(response.body), where).toBe(true);
    const listed = METHODS.filter((name) => paths[template]?.[name]).map((name) => name.toUpperCase());
    expect(response.headers?.Allow?.split(", ").sort(), `${where}: Allow`).toEqual(listed.sort());
    answered.add(`${method.toUpperCase()} ${template} 405`);
    return response;
  }
  const documented = operation.responses[String(response.status)];
  expect(documented, `${where}: status not in the document`).toBeDefined();
  for (const [name, header] of Object.entries(documented?.headers ?? {})) {
    if (header.required) expect(response.headers?.[name], `${where}: header ${name}`).toBeDefined();
  }
  const pointer = `api#/paths/${template.replaceAll("~", "~0").replaceAll("/", "~1")}/${method.toLowerCase()}/responses/${response.status}/content/application~1json/schema`;
  const validate = ajv.getSchema(pointer) ?? ajv.compile({ $ref: pointer });
  const valid = validate(response.body);
  expect(valid, `${where}: ${ajv.errorsText(validate.errors)}`).toBe(true);
  answered.add(`${method.toUpperCase()} ${template} ${response.status}`);
  return response;
}

const jobIdOf = (response: ApiResponse) => (response.body as { jobId: string }).jobId;

async function succeededJob(): Promise<string> {
  const created = await call("POST", "/v1/edits", { token: alice, query: { operation: "upscale", "params.scale": "2" }, body: jpeg, headers: { "content-type": "image/jpeg" } });
  const jobId = jobIdOf(created);
  const clock = { store, clock: { now: () => new Date() } };
  await handleCommand(clock, jobId, { type: "StartEdit", workerId: "w-openapi", leaseMs: 60_000 });
  const object = `results/${jobId}.png`;
  await storage.bucket(resultsBucket).file(object).save(await sharp(jpeg).resize(128).png().toBuffer(), { contentType: "image/png" });
  await handleCommand(clock, jobId, {
    type: "CompleteEdit",
    workerId: "w-openapi",
    output: { bucket: resultsBucket, object, contentType: "image/png", width: 128, height: 85, sizeBytes: 1234 },
    processingMs: 5,
    inferenceMs: 3,
  });
  return jobId;
}

describe("the API answers as its OpenAPI document says", () => {
  it("serves the document without a token, the model list only with one, and 405 to other methods", async () => {
    const document = await call("GET", "/v1/openapi.json");
    expect(document.status).toBe(200);
    expect(document.body).toEqual(OPENAPI_DOCUMENT);
    expect((await call("GET", "/v1/models")).status).toBe(401);
    expect((await call("GET", "/v1/models", { token: alice })).status).toBe(200);
    expect((await call("POST", "/v1/openapi.json")).status).toBe(405);
    expect((await call("DELETE", "/v1/models", { token: alice })).status).toBe(405);
  });

  it("creates edits by both flows, and replays a key without a second upload", async () => {
    const signed = await call("POST", "/v1/edits", { token: alice, json: { operation: "upscale", params: { scale: 4, model: "perceptual" }, contentType: "image/jpeg" }, headers: { "idempotency-key": `k-${randomUUID()}` } });
    expect(signed.status).toBe(202);
    expect(signed.body).toHaveProperty("upload");
    const direct = await call("POST", "/v1/edits", { token: alice, query: { operation: "upscale" }, body: jpeg, headers: { "content-type": "image/jpeg", "idempotency-key": "d1" } });
    expect(direct.body).toMatchObject({ status: "queued" });
    const replay = await call("POST", "/v1/edits", { token: alice, query: { operation: "upscale" }, body: jpeg, headers: { "content-type": "image/jpeg", "idempotency-key": "d1" } });
    expect(replay.body).toEqual(direct.body);
  });

  it.each<[string, number, Parameters<typeof call>[2]]>([
    ["a body that is not JSON", 400, { body: Buffer.from("{nope"), headers: { "content-type": "application/json" } }],
    ["an unknown operation", 400, { json: { operation: "sharpen", contentType: "image/png" } }],
    ["a strength out of range", 400, { json: { operation: "comic", params: { strength: 2 }, contentType: "image/png" } }],
    ["a parameter out of range", 400, { json: { operation: "upscale", params: { scale: 3 }, contentType: "image/png" } }],
    ["an unknown upscale model", 400, { json: { operation: "upscale", params: { model: "gan" }, contentType: "image/png" } }],
    ["a bad Idempotency-Key", 400, { json: { operation: "upscale", contentType: "image/png" }, headers: { "idempotency-key": "has space" } }],
    ["an empty direct body", 400, { query: { operation: "upscale" }, body: Buffer.alloc(0), headers: { "content-type": "image/jpeg" } }],
    ["an unsupported content type", 415, { json: { operation: "upscale", contentType: "image/gif" } }],
    ["bytes that are not the declared type", 415, { query: { operation: "upscale" }, body: Buffer.from("GIF89a........"), headers: { "content-type": "image/png" } }],
    ["a direct body over the limit", 413, { query: { operation: "upscale" }, body: Buffer.alloc(config.maxDirectUploadBytes + 1, 1), headers: { "content-type": "image/jpeg" } }],
  ])("refuses %s with %i", async (_, status, options) => {
    expect((await call("POST", "/v1/edits", { token: alice, ...options })).status).toBe(status);
  });

  it("answers 422 to a key reused for a different request, and 503 when storage is down", async () => {
    const key = `k-${randomUUID()}`;
    await call("POST", "/v1/edits", { token: alice, json: { operation: "upscale", contentType: "image/png" }, headers: { "idempotency-key": key } });
    const reused = await call("POST", "/v1/edits", { token: alice, json: { operation: "upscale", contentType: "image/jpeg" }, headers: { "idempotency-key": key } });
    expect(reused.status).toBe(422);
    const down = await call("POST", "/v1/edits", { token: alice, query: { operation: "upscale" }, body: jpeg, headers: { "content-type": "image/jpeg" }, via: apiWithStorageDown });
    expect(down.status).toBe(503);
  });

  it("reads, lists, and gives the history of a succeeded edit with a download URL", async () => {
    const jobId = await succeededJob();
    const job = await call("GET", `/v1/edits/${jobId}`, { token: alice });
    expect(job.body).toMatchObject({ status: "succeeded", output: { width: 128, height: 85 } });
    const list = await call("GET", "/v1/edits", { token: alice });
    expect((list.body as { edits: Array<{ jobId: string }> }).edits.map((edit) => edit.jobId)).toContain(jobId);
    const events = await call("GET", `/v1/edits/${jobId}/events`, { token: alice });
    expect((events.body as Array<{ type: string }>).map((event) => event.type)).toEqual(["EditRequested", "ImageUploaded", "EditQueued", "EditStarted", "EditSucceeded"]);
    expect((await call("POST", `/v1/edits/${jobId}/cancel`, { token: alice })).status).toBe(409);
  });

  it("cancels, then refuses a second cancel; hides other people's edits; 405 to wrong methods", async () => {
    const jobId = jobIdOf(await call("POST", "/v1/edits", { token: alice, json: { operation: "upscale", contentType: "image/png" } }));
    const canceled = await call("POST", `/v1/edits/${jobId}/cancel`, { token: alice });
    expect(canceled.status).toBe(202);
    expect(canceled.body).toMatchObject({ status: "canceled" });
    expect((await call("POST", `/v1/edits/${jobId}/cancel`, { token: alice })).status).toBe(409);
    for (const path of [`/v1/edits/${jobId}`, `/v1/edits/${jobId}/events`]) expect((await call("GET", path, { token: bob })).status).toBe(404);
    expect((await call("POST", `/v1/edits/${jobId}/cancel`, { token: bob })).status).toBe(404);
    expect((await call("DELETE", `/v1/edits/${jobId}`, { token: alice })).status).toBe(405);
    expect((await call("POST", `/v1/edits/${jobId}/events`, { token: alice })).status).toBe(405);
    expect((await call("GET", `/v1/edits/${jobId}/cancel`, { token: alice })).status).toBe(405);
    expect((await call("PUT", "/v1/edits", { token: alice })).status).toBe(405);
  });

  it("takes a webhook, refuses a private one, shows the deliveries, and serves and rotates the secret", async () => {
    const jobId = jobIdOf(
      await call("POST", "/v1/edits", { token: alice, json: { operation: "upscale", contentType: "image/png", webhook: { url: "https://hooks.example.com/e", events: ["running", "succeeded"] } } }),
    );
    const job = await call("GET", `/v1/edits/${jobId}`, { token: alice });
    expect(job.body).toMatchObject({ webhook: { url: "https://hooks.example.com/e", events: ["running", "succeeded"] } });
    const refused = await call("POST", "/v1/edits", { token: alice, query: { operation: "upscale", "webhook.url": "https://169.254.169.254/" }, body: jpeg, headers: { "content-type": "image/jpeg" } });
    expect(refused).toMatchObject({ status: 400, body: { error: { code: "invalid_webhook" } } });
    const now = new Date().toISOString();
    await outbox.add({ id: `msg_${jobId}_9`, jobId, ownerId: aliceId, url: "https://hooks.example.com/e", type: "edit.succeeded", body: "{}", createdAt: now, state: "pending", nextAttemptAt: now, attempts: [] });
    await outbox.record(`msg_${jobId}_9`, { at: now, durationMs: 12, status: 503, error: "the receiver answered 503" }, { state: "pending", nextAttemptAt: new Date(Date.now() + 5000).toISOString() });
    const deliveries = await call("GET", `/v1/edits/${jobId}/webhooks`, { token: alice });
    expect(deliveries.body).toMatchObject({ deliveries: [{ id: `msg_${jobId}_9`, state: "pending", attempts: [{ status: 503 }] }] });
    expect((await call("GET", `/v1/edits/${jobId}/webhooks`, { token: bob })).status).toBe(404);
    expect((await call("POST", `/v1/edits/${jobId}/webhooks`, { token: alice })).status).toBe(405);
    const secret = await call("GET", "/v1/webhooks/secret", { token: alice });
    const rotated = await call("POST", "/v1/webhooks/secret", { token: alice });
    expect(rotated.body).not.toEqual(secret.body);
    expect((await call("GET", "/v1/webhooks/secret", { token: alice })).body).toEqual(rotated.body);
    expect((await call("DELETE", "/v1/webhooks/secret", { token: alice })).status).toBe(405);
    expect((await call("GET", "/v1/webhooks/secret")).status).toBe(401);
  });

  it("answers 401 without a token on every route that needs one, and 404 to a path it does not have", async () => {
    for (const [method, path] of TOKEN_ROUTES) {
      expect((await call(method, path)).status).toBe(401);
    }
    expect((await call("GET", "/v1/nothing-here", { token: alice })).status).toBe(404);
    expect((await call("GET", "/v1/nothing-here")).status).toBe(401);
  });

  it("answers 405 with Allow to every method a path does not list, on every path", async () => {
    for (const template of Object.keys(paths)) {
      const path = template.replace("{jobId}", randomUUID());
      for (const method of METHODS.filter((name) => !paths[template]?.[name])) {
        expect((await call(method.toUpperCase(), path, { token: alice })).status, `${method} ${path}`).toBe(405);
      }
    }
  });

  it("answers 200 with Preference-Applied when a direct edit ends within Prefer: wait, and 202 when it does not", async () => {
    const key = `wait-${randomUUID()}`;
    const jobId = idempotentJobId(aliceId, key);
    const waiting = call("POST", "/v1/edits", {
      token: alice,
      query: { operation: "upscale", "output.format": "webp", "output.quality": "70" },
      body: jpeg,
      headers: { "content-type": "image/jpeg", "idempotency-key": key, prefer: "wait=10" },
    });
    // A worker's part, played by the test: the job ends while the request waits.
    const deps = { store, clock: { now: () => new Date() } };
    while ((await store.getProjection(jobId))?.status !== "queued") await new Promise((resolve) => setTimeout(resolve, 50));
    await handleCommand(deps, jobId, { type: "StartEdit", workerId: "w-wait", leaseMs: 60_000 });
    const object = `results/${jobId}/output.webp`;
    const webp = await sharp(jpeg).webp({ quality: 70 }).toBuffer();
    await storage.bucket(resultsBucket).file(object).save(webp, { contentType: "image/webp" });
    await handleCommand(deps, jobId, {
      type: "CompleteEdit",
      workerId: "w-wait",
      output: { bucket: resultsBucket, object, contentType: "image/webp", width: 64, height: 43, sizeBytes: webp.length },
      processingMs: 5,
      inferenceMs: 3,
    });
    const ended = await waiting;
    expect(ended.status).toBe(200);
    expect(ended.headers?.["Preference-Applied"]).toBe("wait=10");
    expect(ended.body).toMatchObject({ jobId, status: "succeeded", outputFormat: { format: "webp", quality: 70 }, output: { contentType: "image/webp" } });
    const notYet = await call("POST", "/v1/edits", { token: alice, query: { operation: "upscale" }, body: jpeg, headers: { "content-type": "image/jpeg", prefer: "wait=1" } });
    expect(notYet.status).toBe(202);
    expect(notYet.headers?.["Preference-Applied"]).toBeUndefined();
  });

  it.each<[string, number, Parameters<typeof call>[2]]>([
    ["a JSON body with ?operation=", 400, { query: { operation: "upscale" }, json: { operation: "upscale", contentType: "image/png" } }],
    ["JPEG for background removal without a background", 400, { json: { operation: "remove_background", contentType: "image/png", output: { format: "jpeg" } } }],
    ["a quality for PNG", 400, { query: { operation: "upscale", "output.format": "png", "output.quality": "80" }, body: Buffer.from("x"), headers: { "content-type": "image/jpeg" } }],
    ["a HEIC content type", 415, { json: { operation: "upscale", contentType: "image/heic" } }],
  ])("refuses %s with %i", async (_, status, options) => {
    expect((await call("POST", "/v1/edits", { token: alice, ...options })).status).toBe(status);
  });

  it("accepts JPEG with a background for background removal, and an AVIF photo directly", async () => {
    const signed = await call("POST", "/v1/edits", { token: alice, json: { operation: "remove_background", contentType: "image/avif", output: { format: "jpeg", background: "#FFFFFF" } } });
    expect(signed.status).toBe(202);
    const avif = await sharp(jpeg).avif().toBuffer();
    const direct = await call("POST", "/v1/edits", { token: alice, query: { operation: "enhance" }, body: avif, headers: { "content-type": "image/avif" } });
    expect(direct.status).toBe(202);
    const heic = await readFile(join(import.meta.dirname, "../support/samples/gradient-64x48.heic"));
    const refused = await call("POST", "/v1/edits", { token: alice, query: { operation: "enhance" }, body: heic, headers: { "content-type": "image/jpeg" } });
    expect(refused.status).toBe(415);
    expect((refused.body as { error: { message: string } }).error.message).toMatch(/Send a JPEG, PNG, WebP or AVIF/);
  });

  it("answers 429 with Retry-After on every route that needs a token, once over the requests per minute", async () => {
    for (const [method, path] of [["GET", "/v1/models"] as const, ...TOKEN_ROUTES]) {
      const token = await emulatorIdToken(services.authHost, `busy-${randomUUID()}`);
      for (let i = 0; i < 2; i += 1) await apiWithQuota({ method: "GET", path: "/v1/models", query: {}, headers: { authorization: `Bearer ${token}` } });
      const limited = await call(method, path, { token, via: apiWithQuota, json: {} });
      expect(limited.status, `${method} ${path}`).toBe(429);
      expect(limited.headers?.["Retry-After"]).toMatch(/^\d+$/);
    }
  });

  it("has answered every documented operation with its success status", () => {
    const missing: string[] = [];
    for (const [template, operations] of Object.entries(paths)) {
      for (const [method, operation] of Object.entries(operations) as Array<[string, Operation]>) {
        const success = Object.keys(operation.responses).filter((status) => status.startsWith("2"));
        for (const status of success) if (!answered.has(`${method.toUpperCase()} ${template} ${status}`)) missing.push(`${method.toUpperCase()} ${template} ${status}`);
      }
    }
    expect(missing).toEqual([]);
    // And the error answers the routes give, each checked above against the document.
    for (const expected of ["POST /v1/edits 400", "POST /v1/edits 401", "POST /v1/edits 413", "POST /v1/edits 415", "POST /v1/edits 422", "POST /v1/edits 429", "POST /v1/edits 503", "GET /v1/edits/{jobId} 404", "POST /v1/edits/{jobId}/cancel 409"]) {
      expect(answered).toContain(expected);
    }
    // Every status each route documents for its callers' mistakes or limits has been seen.
    for (const template of Object.keys(paths)) {
      for (const method of METHODS.filter((name) => paths[template]?.[name])) {
        const shouldBeSeen = Object.keys(paths[template]?.[method]?.responses ?? {}).filter((status) => ["401", "429"].includes(status));
        for (const status of shouldBeSeen) expect(answered, `${method.toUpperCase()} ${template} ${status}`).toContain(`${method.toUpperCase()} ${template} ${status}`);
      }
    }
  });
});
