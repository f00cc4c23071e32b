/**
 * `npm start`: installs what is missing on first run, brings the local stack up, prints its
 * endpoints, and stops every part it started on Ctrl-C.
 *
 * Settings (environment): API_PORT (default 8080), UPLOAD_FUNCTION_PORT (8082),
 * DEAD_LETTER_FUNCTION_PORT (8083), SWEEP_FUNCTION_PORT (8084),
 * FIRESTORE_PORT (8085), PUBSUB_PORT (8086), AUTH_EMULATOR_PORT (9099), STORAGE_PORT (4443), TRITON_GRPC_PORT (8001),
 * TRITON_HTTP_PORT (8000), TRITON_METRICS_PORT (8002), WEB_PORT (8090), WORKER_METRICS_PORT (9464),
 * API_METRICS_PORT (9465).
 */
import { rmSync, writeFileSync } from "node:fs";
import { RUNNING_STACK_FILE, type RunningStack } from "../auth/runningStack.js";
import { startLocalStack, type StackPorts } from "./localStack.js";

const DEFAULTS: Record<keyof StackPorts, [string, number]> = {
  api: ["API_PORT", 8080],
  uploadFunction: ["UPLOAD_FUNCTION_PORT", 8082],
  deadLetterFunction: ["DEAD_LETTER_FUNCTION_PORT", 8083],
  sweepFunction: ["SWEEP_FUNCTION_PORT", 8084],
  webhookFunction: ["WEBHOOK_FUNCTION_PORT", 8087],
  firestore: ["FIRESTORE_PORT", 8085],
  pubsub: ["PUBSUB_PORT", 8086],
  auth: ["AUTH_EMULATOR_PORT", 9099],
  storage: ["STORAGE_PORT", 4443],
  tritonGrpc: ["TRITON_GRPC_PORT", 8001],
  tritonHttp: ["TRITON_HTTP_PORT", 8000],
  tritonMetrics: ["TRITON_METRICS_PORT", 8002],
  web: ["WEB_PORT", 8090],
  workerMetrics: ["WORKER_METRICS_PORT", 9464],
  apiMetrics: ["API_METRICS_PORT", 9465],
};

const ports = {} as StackPorts;
for (const [key, [variable, fallback]] of Object.entries(DEFAULTS) as Array<[keyof StackPorts, [string, number]]>) {
  const raw = process.env[variable];
  const port = raw === undefined || raw === "" ? fallback : Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    console.error(`${variable} must be a TCP port, not "${raw}"`);
    process.exit(2);
  }
  ports[key] = port;
}

const began = performance.now();
// With the production Firestore rules, so that the web app's listener is checked as it will be.
const stack = await startLocalStack({ ports, firestoreRules: true, log: (line) => console.log(`[stack] ${line}`) });
const seconds = ((performance.now() - began) / 1000).toFixed(1);
// Where `npm run token` finds this stack's Auth emulator.
const running: RunningStack = { projectId: stack.names.projectId, authEmulatorHost: stack.emulatorEnv.FIREBASE_AUTH_EMULATOR_HOST, apiUrl: stack.apiUrl };
writeFileSync(RUNNING_STACK_FILE, JSON.stringify(running, null, 2));

console.log(`
The local stack is up (${seconds} s).
  Web app             ${stack.webUrl}   (sign up with any email and password, or try it anonymously)
  HTTP API            ${stack.apiUrl}   (with a token from npm run token; described at ${stack.apiUrl}/v1/openapi.json)
  Firestore emulator  127.0.0.1:${stack.ports.firestore}
  Pub/Sub emulator    127.0.0.1:${stack.ports.pubsub}
  Auth emulator       http://127.0.0.1:${stack.ports.auth}   (Firebase Auth; its users live until the stack stops)
  Storage emulator    http://127.0.0.1:${stack.ports.storage}
  Triton              gRPC 127.0.0.1:${stack.ports.tritonGrpc}, HTTP http://127.0.0.1:${stack.ports.tritonHttp}, metrics http://127.0.0.1:${stack.ports.tritonMetrics}/metrics
  Upload trigger      http://127.0.0.1:${stack.ports.uploadFunction}/ (fed by the local Eventarc bridge)
  Dead-letter handler http://127.0.0.1:${stack.ports.deadLetterFunction}/ (fed from the dead-letter topic)
  Sweeper             http://127.0.0.1:${stack.ports.sweepFunction}/ (POSTed every 10 s, Cloud Scheduler's part)
  Webhook trigger     http://127.0.0.1:${stack.ports.webhookFunction}/ (fed by polling jobs/*/events every 2 s)
  Metrics             worker ${stack.metricsUrls.worker}, API ${stack.metricsUrls.api}
  Logs                ${stack.logDir}
A token for the API:  npm run token -- <userId>
Command line:         EDIT_TOKEN=$(npm run -s token -- alice) npm run edit -- upscale photo.jpg --param scale=2
Press Ctrl-C to stop everything.`);

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    console.log("\n[stack] stopping every part");
    rmSync(RUNNING_STACK_FILE, { force: true });
    void stack.stop().finally(() => process.exit(0));
  });
}
