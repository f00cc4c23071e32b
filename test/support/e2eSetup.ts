/**
 * Global setup of the e2e tier: the whole local stack (the same code `npm start` runs), on free
 * loopback ports, stopped by PID when the run ends. Tests reach it only through its public
 * surfaces: the HTTP API, the signed URLs, and Firestore listeners.
 */
import type { TestProject } from "vitest/node";
import { startLocalStack } from "../../local/localStack.js";

export interface E2eStack {
  apiUrl: string;
  webUrl: string;
  projectId: string;
  firestoreHost: string;
  logDir: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    stack: E2eStack;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const began = performance.now();
  const stack = await startLocalStack({ log: (line) => console.log(`[e2e setup] ${line}`) });
  console.log(`[e2e setup] local stack up in ${((performance.now() - began) / 1000).toFixed(1)} s`);
  project.provide("stack", {
    apiUrl: stack.apiUrl,
    webUrl: stack.webUrl,
    projectId: stack.names.projectId,
    firestoreHost: stack.emulatorEnv.FIRESTORE_EMULATOR_HOST,
    logDir: stack.logDir,
  });
  return () => stack.stop();
}
