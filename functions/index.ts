/**
 * The functions' entry file: reads the configuration, creates the real clients, and registers
 * the four functions with the Functions Framework:
 * - `api`, the HTTP API;
 * - `uploadFinalized`, the Cloud Storage object-finalized CloudEvent handler;
 * - `deadLetter`, the Pub/Sub messagePublished CloudEvent handler of the dead-letter topic;
 * - `sweepJobs`, the sweeper of ghost jobs and of webhook retries, an HTTP function Cloud Scheduler calls;
 * - `webhookEvents`, the Firestore document-created CloudEvent handler of `jobs/{jobId}/events/{seq}`,
 *   which owes a job's webhook its messages (functions/webhookDelivery.ts).
 */
import { randomUUID } from "node:crypto";
import { lookup } from "node:dns/promises";
import { readFileSync } from "node:fs";
import { Firestore } from "@google-cloud/firestore";
import * as functions from "@google-cloud/functions-framework";
import { PubSub } from "@google-cloud/pubsub";
import { Storage } from "@google-cloud/storage";
import { createFirebaseTokenVerifier } from "../adapters/auth/firebaseTokenVerifier.js";
import { createFirestoreEventStore } from "../adapters/firestore/firestoreEventStore.js";
import { createJsonLogger } from "../adapters/logging/jsonLogger.js";
import { createPubsubJobQueue } from "../adapters/pubsub/pubsubJobQueue.js";
import { createGcsImageStore } from "../adapters/storage/gcsImageStore.js";
import { createFirestoreRequestCounter } from "../adapters/firestore/firestoreRequestCounter.js";
import { createFirestoreWebhookOutbox } from "../adapters/firestore/firestoreWebhookOutbox.js";
import { createFirestoreWebhookSecrets } from "../adapters/firestore/firestoreWebhookSecrets.js";
import { createHttpWebhookSender } from "../adapters/webhooks/httpWebhookSender.js";
import { createWebhookGuard } from "../adapters/webhooks/webhookGuard.js";
import { toJobView } from "./jobView.js";
import { createWebhookDeliverer } from "./webhookDelivery.js";
import { jobEventOfDocument } from "./webhookTrigger.js";
import { newWebhookSecret } from "./webhookSignature.js";
import { createDeadLetterHandler, type PubsubMessageData } from "./deadLetterHandler.js";
import { createJobSweeper } from "./jobSweeper.js";
import { createQuota } from "./quota.js";
import { createAdmission } from "./admission.js";
import { createDimensionCheck } from "./imageDimensions.js";
import { instrumentEventHandler, instrumentHttpHandler } from "../observability/instrumentedHandlers.js";
import { instrumentEventStore, instrumentImageStore, instrumentJobQueue } from "../observability/instrumentedPorts.js";
import { createPipelineMetrics } from "../observability/pipelineMetrics.js";
import { activeLogContext, startTelemetry } from "../observability/telemetry.js";
import { parseConfig } from "./config.js";
import { createEditApi, type ApiRequest } from "./editApi.js";
import { createBodyGuard, installBodyGuard, securityHeaders } from "./bodyGuard.js";
import { createUploadFinalizedHandler, type StorageObjectData } from "./uploadFinalized.js";
import { jobIdOfUpload } from "./uploadObject.js";

const config = parseConfig(process.env);
// Before the clients, so that every hop they make is in a trace.
const telemetry = startTelemetry(config.telemetry);
const instruments = { tracer: telemetry.tracer, metrics: createPipelineMetrics(telemetry.meter) };
const log = createJsonLogger("functions", undefined, { projectId: config.projectId, context: activeLogContext });

const firestore = new Firestore({ projectId: config.projectId, ignoreUndefinedProperties: true });
const storage = new Storage({
  projectId: config.projectId,
  // A deadline on every request; the library retries idempotent ones (reads) within it.
  timeout: config.storageTimeoutMs,
  retryOptions: { maxRetries: 3, totalTimeout: Math.ceil(config.storageTimeoutMs / 1000) * 2 },
  ...(config.storageApiEndpoint === undefined ? {} : { apiEndpoint: config.storageApiEndpoint }),
  ...(config.storageSignerKeyFile === undefined
    ? {}
    : { credentials: JSON.parse(readFileSync(config.storageSignerKeyFile, "utf8")) as { client_email: string; private_key: string } }),
});
const pubsub = new PubSub({ projectId: config.projectId });

const store = instrumentEventStore(createFirestoreEventStore(firestore, { deadlineMs: config.storeDeadlineMs }), instruments);
const images = instrumentImageStore(createGcsImageStore(storage), instruments);
const queue = instrumentJobQueue(createPubsubJobQueue(pubsub, config.jobsTopic, config.jobsBatchTopic, { deadlineMs: config.storeDeadlineMs }), config.jobsTopic, instruments);
const clock = { now: () => new Date() };

const webhookGuard = createWebhookGuard({
  allowLoopbackHttp: config.webhookAllowLoopbackHttp,
  resolve: async (hostname) => (await lookup(hostname, { all: true, verbatim: true })).map((entry) => entry.address),
});
const webhookOutbox = createFirestoreWebhookOutbox(firestore);
const webhookSecrets = createFirestoreWebhookSecrets(firestore);
const webhooks = createWebhookDeliverer({
  store,
  outbox: webhookOutbox,
  secrets: webhookSecrets,
  sender: createHttpWebhookSender(webhookGuard),
  clock,
  view: (job) => toJobView(job, { images, clock, config }),
  newSecret: newWebhookSecret,
  config,
  log,
});

const verifier = createFirebaseTokenVerifier(config.auth);
// Before the Functions Framework creates its server (after loading this module): no body is
// parsed but by the guard, within its limits.
installBodyGuard(createBodyGuard({ verifier, config, log }), config);

const api = instrumentHttpHandler(
  createEditApi({
    store,
    images,
    queue,
    clock,
    verifier,
    admission: createAdmission(config),
    newJobId: randomUUID,
    quota: createQuota({ counter: createFirestoreRequestCounter(firestore, { deadlineMs: config.storeDeadlineMs }), clock, config }),
    checkDimensions: createDimensionCheck(config.maxInputPixels, config.maxOutputPixels),
    config,
    log,
    webhooks: { checkUrl: webhookGuard.check, secrets: webhookSecrets, outbox: webhookOutbox, newSecret: newWebhookSecret },
  }),
  instruments,
);

functions.http("api", async (req, res) => {
  res.set(securityHeaders());
  const origin = req.get("origin");
  if (origin && (config.corsOrigins.includes("*") || config.corsOrigins.includes(origin))) {
    res.set("Access-Control-Allow-Origin", origin);
    res.set("Vary", "Origin");
    res.set("Access-Control-Allow-Headers", "Authorization, Content-Type, Idempotency-Key");
    res.set("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
  }
  if (req.method === "OPTIONS") {
    res.status(204).end();
    return;
  }
  const query: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(req.query)) query[name] = Array.isArray(value) ? String(value[0]) : String(value);
  const headers: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(req.headers)) headers[name] = Array.isArray(value) ? value.join(", ") : value;
  const request: ApiRequest = { method: req.method, path: req.path, query, headers, ...(req.rawBody ? { rawBody: req.rawBody } : {}) };
  const response = await api(request);
  res.status(response.status);
  for (const [name, value] of Object.entries(response.headers ?? {})) res.set(name, value);
  if (response.body === undefined) res.end();
  else res.json(response.body);
});

const onUpload = instrumentEventHandler(
  "uploadFinalized",
  createUploadFinalizedHandler({ store, images, queue, clock, config, log }),
  (data) => ({ jobId: data.bucket === config.uploadsBucket ? jobIdOfUpload(data.name) : undefined, trace: data.metadata }),
  instruments,
);

functions.cloudEvent<StorageObjectData>("uploadFinalized", async (event: functions.CloudEvent<StorageObjectData>) => {
  if (!event.data) throw new Error(`event ${event.id} has no data`);
  await onUpload(event.data);
});

const onDeadLetter = createDeadLetterHandler({ store, clock, log });

functions.cloudEvent<PubsubMessageData>("deadLetter", async (event: functions.CloudEvent<PubsubMessageData>) => {
  await onDeadLetter(event.data ?? {});
});

const sweep = createJobSweeper({ store, queue, clock, config, log });

functions.http("sweepJobs", async (req, res) => {
  if (req.method !== "POST") {
    res.status(405).json({ error: { code: "method_not_allowed", message: "use POST" } });
    return;
  }
  const result = await sweep();
  // The webhook outbox's retries, due by their backoff.
  const hooks = await webhooks.deliverDue();
  res.status(200).json({
    overdue: result.overdue.length,
    requeued: result.requeued.length,
    failed: result.failed.length,
    republished: result.republished.length,
    expired: result.expired.length,
    webhooksAttempted: hooks.attempted,
    webhooksDelivered: hooks.delivered,
  });
});

// Eventarc's google.cloud.firestore.document.v1.created on jobs/{jobId}/events/{seq}. Its data is
// a protobuf we need not decode: the subject names the document, and the event is read from the
// log. A throw makes Eventarc retry (the trigger has retries on), and a repeat adds nothing.
functions.cloudEvent("webhookEvents", async (event: functions.CloudEvent<unknown>) => {
  const at = jobEventOfDocument(event.subject ?? "");
  if (!at) return;
  await webhooks.enqueue(at.jobId, at.seq);
});
