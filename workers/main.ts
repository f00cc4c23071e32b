/**
 * The worker's entry file: reads the configuration, creates the real clients, waits for Triton
 * and checks its models, then pulls jobs until SIGTERM, when it stops pulling and finishes the
 * jobs in hand before exiting.
 */
import { hostname } from "node:os";
import { Firestore } from "@google-cloud/firestore";
import { PubSub } from "@google-cloud/pubsub";
import { Storage } from "@google-cloud/storage";
import { createFirestoreEventStore } from "../adapters/firestore/firestoreEventStore.js";
import { createJsonLogger } from "../adapters/logging/jsonLogger.js";
import { createPubsubJobSubscription } from "../adapters/pubsub/pubsubJobQueue.js";
import { createGcsImageStore } from "../adapters/storage/gcsImageStore.js";
import { OPERATION_SPECS } from "../events/operations.js";
import { parseWorkerConfig } from "./config.js";
import { UPSCALE_MODEL_CONTRACT } from "./edits/upscaleEdit.js";
import { createWorker } from "./jobWorker.js";
import { checkModels } from "./triton/checkModels.js";
import { createTritonClient } from "./triton/tritonClient.js";

const config = parseWorkerConfig(process.env, `${hostname()}-${process.pid}`);
const log = createJsonLogger("worker");

const firestore = new Firestore({ projectId: config.projectId, ignoreUndefinedProperties: true });
const storage = new Storage({
  projectId: config.projectId,
  ...(config.storageApiEndpoint === undefined ? {} : { apiEndpoint: config.storageApiEndpoint }),
});
const pubsub = new PubSub({ projectId: config.projectId });
const inference = createTritonClient({ url: config.tritonUrl, defaultTimeoutMs: config.tritonTimeoutMs });

await waitForTriton();
await checkModels(inference, [{ model: OPERATION_SPECS.upscale.model, ...UPSCALE_MODEL_CONTRACT }]);

const worker = createWorker({
  store: createFirestoreEventStore(firestore),
  images: createGcsImageStore(storage),
  subscription: createPubsubJobSubscription(pubsub, config.jobsSubscription, {
    maxInFlight: config.maxMessages,
    // The ack deadline is extended while the edit runs, up to the longest edit; the lease and
    // its heartbeat, not the message, tell a live worker from a dead one.
    maxExtensionSeconds: config.maxEditSeconds,
    onMalformed: (reason) => log({ severity: "WARNING", message: "message dropped", reason }),
    onError: (error) => log({ severity: "ERROR", message: "pulling jobs failed", error: error.message }),
  }),
  inference,
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
      .then(() => Promise.all([firestore.terminate(), pubsub.close()]))
      .finally(() => {
        inference.close();
        process.exit(0);
      });
  });
}

async function waitForTriton(): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (!(await inference.isReady().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`Triton at ${config.tritonUrl} was not ready within 120 s`);
    log({ message: "waiting for Triton", tritonUrl: config.tritonUrl });
    await new Promise((resolve) => setTimeout(resolve, 2_000));
  }
}
