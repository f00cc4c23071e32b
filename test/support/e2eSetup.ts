/**
 * Global setup of the e2e tier: the whole local stack (the same code `npm start` runs), on free
 * loopback ports, stopped by PID when the run ends. Tests reach it only through its public
 * surfaces: the HTTP API, the signed URLs, Firestore listeners, the /metrics endpoints, the logs,
 * and the spans its processes export to an OTLP receiver started here.
 */
import type { TestProject } from "vitest/node";
import { startLocalStack } from "../../local/stack/localStack.js";
import { startOtlpReceiver } from "../../local/stack/otlpReceiver.js";

export interface E2eStack {
  apiUrl: string;
  webUrl: string;
  projectId: string;
  firestoreHost: string;
  /** host:port of the stack's Firebase Auth emulator, where tests sign their users in. */
  authHost: string;
  logDir: string;
  /** GET {otlpUrl}/spans: every span the stack's processes exported. */
  otlpUrl: string;
  metricsUrls: { worker: string; api: string; triton: string };
}

declare module "vitest" {
  export interface ProvidedContext {
    stack: E2eStack;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const began = performance.now();
  const receiver = await startOtlpReceiver();
  const stack = await startLocalStack({
    log: (line) => console.log(`[e2e setup] ${line}`),
    // Spans leave every process within half a second, so that tests need not wait long for them.
    telemetryEnv: { TRACES_EXPORTER: "otlp", OTLP_ENDPOINT: receiver.url, TRACES_EXPORT_DELAY_MS: "500" },
  }).catch(async (error: unknown) => {
    await receiver.stop();
    throw error;
  });
  console.log(`[e2e setup] local stack up in ${((performance.now() - began) / 1000).toFixed(1)} s`);
  project.provide("stack", {
    apiUrl: stack.apiUrl,
    webUrl: stack.webUrl,
    projectId: stack.names.projectId,
    firestoreHost: stack.emulatorEnv.FIRESTORE_EMULATOR_HOST,
    authHost: stack.emulatorEnv.FIREBASE_AUTH_EMULATOR_HOST,
    logDir: stack.logDir,
    otlpUrl: receiver.url,
    metricsUrls: stack.metricsUrls,
  });
  return async () => {
    await stack.stop();
    await receiver.stop();
  };
}
