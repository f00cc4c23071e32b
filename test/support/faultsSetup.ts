/**
 * Global setup of the faults tier: the whole local stack (the code `npm start` runs), with the
 * timings shortened so that faults resolve in seconds: 6 s leases with a 1 s heartbeat, the
 * sweeper every 2 s, 5 deliveries before a message is dead-lettered, and ack deadlines of at most
 * 10 s. Workers may try a job
 * 10 times, more than the deliveries, so that the dead-letter path is the one a poison message
 * takes. Tests start and SIGKILL further worker processes themselves, with `workerEnv`.
 */
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { startLocalStack, type StackNames } from "../../local/stack/localStack.js";
import { LOCAL_DIR } from "../../local/stack/paths.js";

export interface FaultStack {
  apiUrl: string;
  uploadFunctionUrl: string;
  names: StackNames;
  emulatorEnv: Record<string, string>;
  workerEnv: Record<string, string>;
  logDir: string;
  /** Where each test file records its counts for the summary line (JSON lines). */
  countsFile: string;
  /**
   * Toxiproxy sits between the stack's functions and worker and what they call (`proxies`);
   * suites make proxies of their own in front of `upstream` for workers of their own.
   */
  network: {
    toxiproxyUrl: string;
    proxies: { firestore: string; pubsub: string; storage: string; triton: string };
    upstream: { firestore: string; pubsub: string; storage: string; triton: string };
    /** How long a blackout lasts (FAULTS_BLACKOUT_SECONDS, default 10; the soak keeps 30). */
    blackoutSeconds: number;
    /** The functions' deadline on one Firestore call. */
    storeDeadlineMs: number;
  };
  /** Limits the stack runs with, for the bad-input rows. */
  limits: { maxDirectUploadBytes: number; maxInputPixels: number; maxOutputPixels: number };
}

declare module "vitest" {
  export interface ProvidedContext {
    faultStack: FaultStack;
  }
}

export const FAULT_COUNTS_FILE = join(LOCAL_DIR, "faults", "counts.jsonl");

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  rmSync(FAULT_COUNTS_FILE, { force: true });
  mkdirSync(join(LOCAL_DIR, "faults"), { recursive: true });
  const limits = { maxDirectUploadBytes: 65_536, maxInputPixels: 1_000_000, maxOutputPixels: 4_000_000 };
  const logDir = join(LOCAL_DIR, "logs", "faults");
  rmSync(logDir, { recursive: true, force: true });
  const began = performance.now();
  // The functions' deadline on one Firestore call: long enough that an emulator starved by a
  // busy 2-core machine (seen: an append past 5 s, answered 503 to a suite that expected 202) is
  // not taken for one that is down; a blackout still ends in 503. The worker keeps 5 s: a missed
  // deadline there costs an attempt, not a test.
  const storeDeadlineMs = 15_000;
  const stack = await startLocalStack({
    logDir,
    log: (line) => console.log(`[faults setup] ${line}`),
    networkFaults: true,
    sweepIntervalMs: 2_000,
    maxDeliveryAttempts: 5,
    workerEnv: {
      JOB_LEASE_SECONDS: "6",
      JOB_HEARTBEAT_SECONDS: "1",
      // The Pub/Sub client grows each ack deadline to how long its acks took (minutes, with a
      // backlog), and the emulator hands a SIGKILLed worker's messages out again only once their
      // deadline passes; at most 10 s, they come back within seconds of the kill.
      ACK_DEADLINE_MAX_SECONDS: "10",
      MAX_ATTEMPTS: "10",
      TILE_SIZE: "64",
      TILE_OVERLAP: "8",
      WORKER_MAX_MESSAGES: "4",
      MAX_INPUT_PIXELS: String(limits.maxInputPixels),
      MAX_OUTPUT_PIXELS: String(limits.maxOutputPixels),
      STORE_DEADLINE_MS: "5000",
      // A pull that has delivered nothing for 3 s is checked, and started again on a new
      // connection when that connection no longer answers (the Pub/Sub stall's test).
      PULL_CHECK_SECONDS: "3",
    },
    functionsEnv: {
      STORE_DEADLINE_MS: String(storeDeadlineMs),
      MAX_ATTEMPTS: "10",
      // A queued job whose message was lost (the emulator keeps what it sent on a stalled pull's
      // connection) is published again after 20 s.
      QUEUED_REPUBLISH_SECONDS: "20",
      MAX_INPUT_PIXELS: String(limits.maxInputPixels),
      MAX_OUTPUT_PIXELS: String(limits.maxOutputPixels),
      MAX_DIRECT_UPLOAD_BYTES: String(limits.maxDirectUploadBytes),
      MAX_UPLOAD_BYTES: "1048576",
      // The suites submit hundreds of jobs; quotas have their own test with small limits.
      QUOTA_REQUESTS_PER_MINUTE: "100000",
      QUOTA_JOBS_IN_FLIGHT: "10000",
    },
  });
  console.log(`[faults setup] local stack up in ${((performance.now() - began) / 1000).toFixed(1)} s`);
  if (!stack.faultProxies) throw new Error("the faults stack started without Toxiproxy");
  project.provide("faultStack", {
    apiUrl: stack.apiUrl,
    uploadFunctionUrl: `http://127.0.0.1:${stack.ports.uploadFunction}/`,
    names: stack.names,
    emulatorEnv: { ...stack.emulatorEnv },
    workerEnv: stack.workerEnv,
    logDir: stack.logDir,
    countsFile: FAULT_COUNTS_FILE,
    network: {
      toxiproxyUrl: stack.faultProxies.toxiproxy.apiUrl,
      proxies: stack.faultProxies.proxies,
      upstream: {
        firestore: stack.emulatorEnv.FIRESTORE_EMULATOR_HOST,
        pubsub: stack.emulatorEnv.PUBSUB_EMULATOR_HOST,
        storage: `127.0.0.1:${stack.ports.storage}`,
        triton: `127.0.0.1:${stack.ports.tritonGrpc}`,
      },
      blackoutSeconds: Number(process.env.FAULTS_BLACKOUT_SECONDS ?? "10"),
      storeDeadlineMs,
    },
    limits,
  });
  return () => stack.stop();
}
