/**
 * The worker's entry file: reads the configuration, creates the real clients, waits for Triton
 * and checks its models, then pulls jobs until SIGTERM, when it stops pulling and finishes the
 * jobs in hand before exiting.
 */
import { hostname } from "node:os";
import { setFlagsFromString } from "node:v8";
import { Firestore } from "@google-cloud/firestore";
import { PubSub } from "@google-cloud/pubsub";
import { Storage } from "@google-cloud/storage";
import { createFirestoreEventStore } from "../adapters/firestore/firestoreEventStore.js";
import { createJsonLogger } from "../adapters/logging/jsonLogger.js";
import { createPubsubJobSubscription } from "../adapters/pubsub/pubsubJobQueue.js";
import { createGcsImageStore } from "../adapters/storage/gcsImageStore.js";
import { OPERATION_SPECS } from "../events/operations.js";
import {
  createStageTimer,
  instrumentEventStore,
  instrumentImageStore,
  instrumentInferenceClient,
  instrumentJobSubscription,
  watchTritonReadiness,
} from "../observability/instrumentedPorts.js";
import { createPipelineMetrics } from "../observability/pipelineMetrics.js";
import { activeLogContext, startTelemetry } from "../observability/telemetry.js";
import { parseWorkerConfig } from "./config.js";
import { MODEL_CONTRACTS } from "./edits/editModels.js";
import { createWorker } from "./jobWorker.js";
import { createPrioritySubscription } from "./prioritySubscription.js";
import type { JobSubscription } from "../events/jobQueue.js";
import { checkModels } from "./checkModels.js";
import { createTritonClient } from "../adapters/triton/tritonClient.js";

// Every tile's answer, band and filtered band is a large ArrayBuffer, hundreds of MB a second.
// By default V8 counts that memory apart from the heap and starts a full garbage collection
// (marking the whole ~70 MB heap) at every ~64 MB of it: about 3 a second, 27 of the worker's
// ~64 CPU ms per output MP. Counted within the heap's global limit instead, most buffers go with
// the scavenges that free them. That limit grows with the memory in use (live buffers included),
// by as much again rather than V8's default of up to four times: with the default, the 40 MP case
// peaked at 1.3 GB; with 100% at 0.71 GB (0.82 before tiles were received into pooled buffers),
// and with 50% at 0.63 GB but half again as many full collections (3 more CPU ms per output MP).
// V8 reads both flags at each limit check, so setting them here, before any edit runs, is enough
// (docs/benchmarks.md, the worker's ceiling).
setFlagsFromString("--external-memory-accounted-in-global-limit");
setFlagsFromString("--heap-growing-percent=100");

const config = parseWorkerConfig(process.env, `${hostname()}-${process.pid}`);
// Before the clients, so that every hop they make is in a trace; /metrics is served from here on.
const telemetry = startTelemetry(config.telemetry);
const instruments = { tracer: telemetry.tracer, metrics: createPipelineMetrics(telemetry.meter) };
const log = createJsonLogger("worker", undefined, { projectId: config.projectId, context: activeLogContext });

const firestore = new Firestore({ projectId: config.projectId, ignoreUndefinedProperties: true });
const storage = new Storage({
  projectId: config.projectId,
  // A deadline on every request; the library retries idempotent ones (reads) within it.
  timeout: config.storageTimeoutMs,
  retryOptions: { maxRetries: 3, totalTimeout: Math.ceil(config.storageTimeoutMs / 1000) * 2 },
  ...(config.storageApiEndpoint === undefined ? {} : { apiEndpoint: config.storageApiEndpoint }),
});
/**
 * A Pub/Sub client on a connection of its own: each subscription has one, and a new one when its
 * pull's connection goes silent (grpc-js otherwise shares one connection among every client of
 * the same address). The subscriptions close them.
 */
const ownConnection = { "grpc.use_local_subchannel_pool": 1 };
const freshPubsub = () => new PubSub({ projectId: config.projectId, ...ownConnection });
const inference = instrumentInferenceClient(
  createTritonClient({ url: config.tritonUrl, defaultTimeoutMs: config.tritonTimeoutMs }),
  instruments,
);
const stopWatchingTriton = watchTritonReadiness(inference, instruments.metrics);

await waitForTriton();
// Every edit this worker offers must have its model ready, with the tensors the worker sends.
await checkModels(
  inference,
  Object.values(OPERATION_SPECS)
    .filter((spec) => spec.available)
    .map((spec) => ({ model: spec.model, ...MODEL_CONTRACTS[spec.operation] })),
);

const worker = createWorker({
  store: instrumentEventStore(createFirestoreEventStore(firestore, { deadlineMs: config.storeDeadlineMs }), instruments),
  images: instrumentImageStore(createGcsImageStore(storage), instruments),
  subscription: jobSubscription(),
  inference,
  timeStage: createStageTimer(instruments),
  clock: { now: () => new Date() },
  config,
  log,
});
worker.start();

let stopping = false;
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    log({ message: `${signal}: finishing the jobs in hand` });
    void worker
      .stop()
      .then(() => firestore.terminate())
      .then(() => {
        stopWatchingTriton();
        return telemetry.shutdown();
      })
      .finally(() => {
        inference.close();
        process.exit(0);
      });
  });
}

/**
 * The interactive subscription alone, or, with JOBS_BATCH_SUBSCRIPTION, both lanes drained into
 * one set of WORKER_MAX_MESSAGES slots, interactive first (workers/prioritySubscription.ts).
 */
function jobSubscription(): JobSubscription {
  const lane = (name: string, maxInFlight: number) =>
    instrumentJobSubscription(
      createPubsubJobSubscription(freshPubsub(), name, {
        maxInFlight,
        // The ack deadline is extended while the edit runs, up to the longest edit; the lease and
        // its heartbeat, not the message, tell a live worker from a dead one.
        maxExtensionSeconds: config.maxEditSeconds,
        maxAckDeadlineSeconds: config.ackDeadlineMaxSeconds,
        onMalformed: (reason) => log({ severity: "WARNING", message: "message dropped", reason }),
        onError: (error) => log({ severity: "ERROR", message: "pulling jobs failed", error: error.message }),
        pullCheck: {
          everySeconds: config.pullCheckSeconds,
          reconnect: freshPubsub,
          onReconnect: () => log({ severity: "WARNING", message: "pulling jobs again on a new connection", subscription: name }),
        },
      }),
      name,
      instruments,
    );
  const interactive = lane(config.jobsSubscription, config.maxMessages);
  if (config.jobsBatchSubscription === undefined) return interactive;
  return createPrioritySubscription(
    { interactive, batch: lane(config.jobsBatchSubscription, config.batchMaxMessages) },
    { slots: config.maxMessages, batchSlots: config.batchMaxMessages },
  );
}

async function waitForTriton(): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (!(await inference.isReady().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`Triton at ${config.tritonUrl} was not ready within 120 s`);
    log({ message: "waiting for Triton", tritonUrl: config.tritonUrl });
    await new Promise((resolve) => setTimeout(resolve, 2_000));
  }
}
