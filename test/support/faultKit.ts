/**
 * What the fault suites share: clients on the stack's emulators, calls to the public API, worker
 * processes to start and SIGKILL, waiting for jobs to end, the exactly-once check, and the counts
 * behind the summary line.
 */
import { appendFileSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Firestore } from "@google-cloud/firestore";
import { PubSub } from "@google-cloud/pubsub";
import { Storage } from "@google-cloud/storage";
import { createFirestoreEventStore } from "../../adapters/firestore/firestoreEventStore.js";
import type { RecordedEvent } from "../../events/editEvents.js";
import { isTerminal, type JobState } from "../../events/jobState.js";
import { REPO_ROOT } from "../../local/stack/paths.js";
import { logContains, startProcess, type RunningProcess } from "../../local/stack/processes.js";
import type { FaultStack } from "./faultsSetup.js";

export function stackClients(stack: FaultStack) {
  Object.assign(process.env, stack.emulatorEnv);
  const firestore = new Firestore({ projectId: stack.names.projectId, ignoreUndefinedProperties: true });
  const pubsub = new PubSub({ projectId: stack.names.projectId });
  const storage = new Storage({ projectId: stack.names.projectId, apiEndpoint: stack.emulatorEnv.STORAGE_API_ENDPOINT });
  // The tests' own reads and writes are not what is under test: a deadline long enough for a
  // starved emulator (seen: appends of the test's own jobs past 20 s with two stacks running).
  return { firestore, pubsub, storage, store: createFirestoreEventStore(firestore, { deadlineMs: 120_000 }) };
}

export interface ApiAnswer<T> {
  status: number;
  headers: Headers;
  body: T;
}

export async function callApi<T = Record<string, unknown>>(
  stack: FaultStack,
  token: string | undefined,
  method: string,
  path: string,
  init: { json?: unknown; body?: Uint8Array; headers?: Record<string, string> } = {},
): Promise<ApiAnswer<T>> {
  const headers: Record<string, string> = { ...init.headers };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  let body: string | Blob | undefined;
  if (init.json !== undefined) {
    headers["content-type"] ??= "application/json";
    body = JSON.stringify(init.json);
  } else if (init.body) {
    body = new Blob([new Uint8Array(init.body)]);
  }
  const response = await fetch(`${stack.apiUrl}${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not JSON: kept as text.
  }
  return { status: response.status, headers: response.headers, body: parsed as T };
}

/**
 * A bucket of the test's own for inputs of jobs it records itself: unlike the uploads bucket, it
 * sends no finalize notifications, so no upload trigger publishes those jobs behind the test's back.
 */
export async function privateInputsBucket(clients: ReturnType<typeof stackClients>): Promise<string> {
  const name = `fault-inputs-${Math.random().toString(36).slice(2, 10)}`;
  await clients.storage.createBucket(name);
  return name;
}

/** Starts one more worker process on the stack (its own log in the stack's log folder). */
export async function startWorkerProcess(stack: FaultStack, name: string, env: Record<string, string> = {}): Promise<RunningProcess> {
  const logFile = join(stack.logDir, `${name}.log`);
  return startProcess({
    name,
    command: process.execPath,
    args: ["--import", "tsx", join(REPO_ROOT, "workers", "main.ts")],
    env: { ...process.env, ...stack.workerEnv, WORKER_ID: name, ...env },
    cwd: REPO_ROOT,
    logFile,
    ready: () => logContains(logFile, "worker pulling jobs"),
    timeoutMs: 120_000,
  });
}

/** SIGKILL, by PID: no chance to finish, ack, or say goodbye. */
export function killHard(worker: RunningProcess): void {
  process.kill(worker.pid, "SIGKILL");
}

/** Polls the projections until every job has ended or `ms` passes; answers the last states seen. */
export async function waitForEnd(firestore: Firestore, jobIds: readonly string[], ms: number): Promise<Map<string, JobState | undefined>> {
  const deadline = Date.now() + ms;
  const states = new Map<string, JobState | undefined>();
  let open = [...jobIds];
  // At least one read, however short `ms`.
  for (let first = true; open.length > 0 && (first || Date.now() < deadline); first = false) {
    for (let start = 0; start < open.length; start += 100) {
      const refs = open.slice(start, start + 100).map((jobId) => firestore.doc(`jobs/${jobId}`));
      const snapshots = await firestore.getAll(...refs);
      for (const snapshot of snapshots) states.set(snapshot.id, snapshot.exists ? (snapshot.data() as JobState) : undefined);
    }
    open = open.filter((jobId) => {
      const state = states.get(jobId);
      return !state || !isTerminal(state.status);
    });
    if (open.length > 0) await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return states;
}

export interface OnceVerdict {
  jobId: string;
  /** No terminal event at all: the job was lost (or is still stuck). */
  lost: boolean;
  /** More than one terminal event, more than one EditSucceeded, or more than one output object. */
  doubled: boolean;
  terminal: string[];
  outputs: string[];
  events: RecordedEvent[];
}

const TERMINAL_EVENTS = new Set(["EditSucceeded", "EditFailed", "EditCanceled"]);

/** Reads the job's log and its results folder: exactly one end, at most one result. */
export async function checkOnce(
  clients: ReturnType<typeof stackClients>,
  resultsBucket: string,
  jobId: string,
): Promise<OnceVerdict> {
  const events = await clients.store.load(jobId);
  const terminal = events.filter((event) => TERMINAL_EVENTS.has(event.type)).map((event) => event.type);
  const [files] = await clients.storage.bucket(resultsBucket).getFiles({ prefix: `results/${jobId}/` });
  const outputs = files.map((file) => file.name);
  const succeeded = terminal.filter((type) => type === "EditSucceeded").length;
  return {
    jobId,
    lost: terminal.length === 0,
    doubled: terminal.length > 1 || succeeded > 1 || outputs.length > 1,
    terminal,
    outputs,
    events,
  };
}

export interface FaultCounts {
  suite: string;
  jobsSubmitted?: number;
  duplicatesInjected?: number;
  crashesInjected?: number;
  lost?: number;
  doubled?: number;
  badInputs?: number;
  badInputsRejected?: number;
  networkFaultsInjected?: number;
}

/** Records a suite's counts for the summary line (`npm run test:faults` prints it after the run). */
export function recordCounts(stack: FaultStack, counts: FaultCounts): void {
  appendFileSync(stack.countsFile, `${JSON.stringify(counts)}\n`);
}

/** Every log line the stack's processes wrote in this run. */
export function stackLogLines(stack: FaultStack): string[] {
  return readdirSync(stack.logDir)
    .filter((name) => name.endsWith(".log"))
    .flatMap((name) => readFileSync(join(stack.logDir, name), "utf8").split("\n").map((line) => `${name}: ${line}`));
}

/** Lines that carry a token, a bearer header or a private key. */
export function secretLines(lines: readonly string[], tokens: readonly string[]): string[] {
  const signatures = tokens.map((token) => token.split(".")[2] ?? token).filter((part) => part.length > 16);
  return lines.filter(
    (line) =>
      /bearer\s+[A-Za-z0-9_-]+\./i.test(line) ||
      /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(line) ||
      /"private_key"/.test(line) ||
      /eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\./.test(line) ||
      signatures.some((signature) => line.includes(signature)),
  );
}
