/**
 * The official Firestore emulator, started with infra/firestore.rules loaded and pointed at the
 * tier's Auth emulator, and a REST client that talks to it as a signed-in user (with an ID token
 * the Auth emulator issued to a real user of it), as nobody, or as the admin (`Bearer owner`,
 * which bypasses the rules like the Admin SDK does).
 */
import { fileURLToPath } from "node:url";
import { firestoreAnswers } from "../../local/stack/emulators.js";
import { freePort, startProcess, type RunningProcess } from "../../local/stack/processes.js";

const emulatorJar = "/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar";
const rulesFile = fileURLToPath(new URL("../../infra/firestore.rules", import.meta.url));

/** `user`: a signed-in user of the Auth emulator, with the ID token it gave them. */
export type Caller = { kind: "user"; uid: string; idToken: string } | { kind: "anonymous" } | { kind: "admin" };

export interface RulesEmulator {
  readonly process: RunningProcess;
  /** A REST client for one project id (each test file makes its own). */
  client(projectId: string): FirestoreRest;
}

export interface RestResult {
  status: number;
  body: any;
}

export interface FirestoreRest {
  /** Creates `collectionPath/docId` with plain string/number fields. */
  create(caller: Caller, collectionPath: string, docId: string, fields: Record<string, string | number>): Promise<RestResult>;
  get(caller: Caller, documentPath: string): Promise<RestResult>;
  update(caller: Caller, documentPath: string, fields: Record<string, string | number>): Promise<RestResult>;
  delete(caller: Caller, documentPath: string): Promise<RestResult>;
  /** Lists a collection (all documents, no filter). */
  list(caller: Caller, collectionPath: string): Promise<RestResult>;
  /** A collection query `where field == value`, as the apps' listeners run it. */
  queryEqual(caller: Caller, collectionId: string, field: string, value: string): Promise<RestResult>;
}

export async function startRulesEmulator(authEmulatorHost: string): Promise<RulesEmulator> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const process = await startProcess({
    name: "firestore-rules-emulator",
    command: "java",
    args: [
      "-cp",
      emulatorJar,
      "com.google.cloud.datastore.emulator.firestore.CloudFirestore",
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      // The very file the Pulumi program deploys.
      "--rules",
      rulesFile,
    ],
    env: { ...globalThis.process.env, METADATA_SERVER_DETECTION: "none", FIREBASE_AUTH_EMULATOR_HOST: authEmulatorHost },
    logFile: fileURLToPath(new URL(`../../.local/logs/firestore-rules-emulator-${port}.log`, import.meta.url)),
    ready: () => firestoreAnswers(`127.0.0.1:${port}`),
    timeoutMs: 90_000,
  });
  return { process, client: (projectId) => restClient(base, projectId) };
}

function restClient(base: string, projectId: string): FirestoreRest {
  const documents = `${base}/v1/projects/${projectId}/databases/(default)/documents`;
  const call = async (caller: Caller, method: string, url: string, body?: unknown): Promise<RestResult> => {
    const headers: Record<string, string> = { "Content-Type": "application/json" };
    if (caller.kind === "admin") headers.Authorization = "Bearer owner";
    if (caller.kind === "user") headers.Authorization = `Bearer ${caller.idToken}`;
    const response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : undefined };
  };
  return {
    create: (caller, collectionPath, docId, fields) =>
      call(caller, "POST", `${documents}/${collectionPath}?documentId=${encodeURIComponent(docId)}`, {
        fields: toFields(fields),
      }),
    get: (caller, documentPath) => call(caller, "GET", `${documents}/${documentPath}`),
    update: (caller, documentPath, fields) =>
      call(caller, "PATCH", `${documents}/${documentPath}`, { fields: toFields(fields) }),
    delete: (caller, documentPath) => call(caller, "DELETE", `${documents}/${documentPath}`),
    list: (caller, collectionPath) => call(caller, "GET", `${documents}/${collectionPath}`),
    queryEqual: (caller, collectionId, field, value) =>
      call(caller, "POST", `${documents}:runQuery`, {
        structuredQuery: {
          from: [{ collectionId }],
          where: { fieldFilter: { field: { fieldPath: field }, op: "EQUAL", value: { stringValue: value } } },
        },
      }),
  };
}

function toFields(fields: Record<string, string | number>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(fields).map(([key, value]) => [
      key,
      typeof value === "number" ? { integerValue: String(value) } : { stringValue: value },
    ]),
  );
}
