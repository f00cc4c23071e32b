/**
 * The official Firestore and Pub/Sub emulators (Java, from Debian's google-cloud-cli packages),
 * the official Firebase Auth emulator (Node, from the firebase-tools devDependency) and
 * fake-gcs-server for Cloud Storage (Google ships no Storage emulator), each started on
 * 127.0.0.1 and stopped by PID.
 */
import { execFile } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { LOCAL_DIR, REPO_ROOT } from "./paths.js";
import { httpAnswers, startProcess, type RunningProcess } from "./processes.js";

const run = promisify(execFile);

const SDK = "/usr/lib/google-cloud-sdk/platform";
const FIRESTORE_JAR = `${SDK}/cloud-firestore-emulator/cloud-firestore-emulator.jar`;
const PUBSUB_LIB = `${SDK}/pubsub-emulator/lib`;

/** fake-gcs-server, pinned; `go install` builds it from the Go module proxy. */
export const FAKE_GCS_MODULE = "github.com/fsouza/fake-gcs-server@v1.56.1";
const FAKE_GCS_BIN = join(LOCAL_DIR, "bin", "fake-gcs-server");
const FAKE_GCS_STAMP = join(LOCAL_DIR, "bin", "fake-gcs-server.version");

export async function ensureEmulators(log: (line: string) => void = () => {}): Promise<void> {
  if (!existsSync(FIRESTORE_JAR)) {
    throw new Error(`the Firestore emulator is missing at ${FIRESTORE_JAR}; install google-cloud-cli-firestore-emulator`);
  }
  pubsubJar();
  const { readFileSync, writeFileSync } = await import("node:fs");
  const stamped = existsSync(FAKE_GCS_STAMP) ? readFileSync(FAKE_GCS_STAMP, "utf8") : "";
  if (!existsSync(FAKE_GCS_BIN) || stamped !== FAKE_GCS_MODULE) {
    log(`building ${FAKE_GCS_MODULE} with go install (about a minute, once)`);
    await run("go", ["install", FAKE_GCS_MODULE], {
      env: { ...process.env, GOBIN: join(LOCAL_DIR, "bin") },
      maxBuffer: 16 * 1024 * 1024,
    });
    writeFileSync(FAKE_GCS_STAMP, FAKE_GCS_MODULE);
  }
}

function pubsubJar(): string {
  const jar = existsSync(PUBSUB_LIB) ? readdirSync(PUBSUB_LIB).find((f) => /^cloud-pubsub-emulator-.*-all\.jar$/.test(f)) : undefined;
  if (!jar) throw new Error(`the Pub/Sub emulator is missing under ${PUBSUB_LIB}; install google-cloud-cli-pubsub-emulator`);
  return join(PUBSUB_LIB, jar);
}

/**
 * `rulesFile`: security rules that apps' (non-admin) reads are checked against, as in production.
 * `authEmulatorHost`: the Auth emulator whose users' tokens the rules see as `request.auth`.
 */
export async function startFirestoreEmulator(port: number, logDir: string, rulesFile?: string, authEmulatorHost?: string): Promise<RunningProcess> {
  return startProcess({
    name: "firestore-emulator",
    command: "java",
    args: [
      "-cp", FIRESTORE_JAR, "com.google.cloud.datastore.emulator.firestore.CloudFirestore", "--host", "127.0.0.1", "--port", String(port),
      ...(rulesFile === undefined ? [] : ["--rules", rulesFile]),
    ],
    env: authEmulatorHost === undefined ? process.env : { ...process.env, FIREBASE_AUTH_EMULATOR_HOST: authEmulatorHost },
    logFile: join(logDir, "firestore.log"),
    ready: () => firestoreAnswers(`127.0.0.1:${port}`),
    timeoutMs: 90_000,
  });
}

export async function startPubsubEmulator(port: number, logDir: string): Promise<RunningProcess> {
  return startProcess({
    name: "pubsub-emulator",
    command: "java",
    args: ["-jar", pubsubJar(), "--host=127.0.0.1", `--port=${port}`],
    logFile: join(logDir, "pubsub.log"),
    ready: () => pubsubAnswers(`127.0.0.1:${port}`),
    timeoutMs: 90_000,
  });
}

/**
 * True when the Firestore API itself answers at `host`: an admin read ("Bearer owner", which
 * the emulator lets past any rules) of a missing document gets Firestore's NOT_FOUND. Both Java
 * emulators answer "Ok" at `/`, so that alone cannot tell them apart.
 */
export function firestoreAnswers(host: string): Promise<boolean> {
  const missing = `http://${host}/v1/projects/readiness-probe/databases/(default)/documents/probe/missing`;
  return httpAnswers(missing, 404, '"NOT_FOUND"', { authorization: "Bearer owner" });
}

/**
 * The Firebase Auth emulator, in a process of its own (local/stack/authEmulatorHost.ts). Its
 * users live in memory, per project, for as long as it runs.
 */
export async function startAuthEmulator(port: number, logDir: string, projectId: string): Promise<RunningProcess> {
  const logFile = join(logDir, "auth.log");
  return startProcess({
    name: "auth-emulator",
    command: process.execPath,
    args: ["--import", "tsx", join(REPO_ROOT, "local", "stack", "authEmulatorHost.ts"), String(port), projectId],
    cwd: REPO_ROOT,
    logFile,
    ready: () => authAnswers(`127.0.0.1:${port}`),
    // Its OpenAPI validator compiles a large spec at start: seconds on an idle core, more on a busy one.
    timeoutMs: 180_000,
  });
}

/** True when the Auth emulator answers at `host` as itself. */
export function authAnswers(host: string): Promise<boolean> {
  return httpAnswers(`http://${host}/`, 200, '"authEmulator"');
}

/** True when the Pub/Sub API itself answers at `host`: listing a project's topics succeeds. */
export function pubsubAnswers(host: string): Promise<boolean> {
  return httpAnswers(`http://${host}/v1/projects/readiness-probe/topics`, 200);
}

/** True when fake-gcs-server's JSON API answers at `url`: listing buckets succeeds. */
export function storageAnswers(url: string): Promise<boolean> {
  return httpAnswers(`${url}/storage/v1/b`, 200, '"kind"');
}

/**
 * fake-gcs-server over plain HTTP. Object-finalize notifications go to `notifyTopic` on the
 * Pub/Sub emulator, as a bucket notification would in production.
 */
export async function startStorageEmulator(options: {
  port: number;
  logDir: string;
  projectId: string;
  pubsubHost: string;
  notifyTopic: string;
  notifyBucket: string;
  /**
   * host:port that clients reach it at, when not its own port (a proxy in front of it): path-style
   * requests of signed URLs are routed only when their Host is this one.
   */
  publicHost?: string;
}): Promise<RunningProcess> {
  const publicHost = options.publicHost ?? `127.0.0.1:${options.port}`;
  return startProcess({
    name: "storage-emulator",
    command: FAKE_GCS_BIN,
    args: [
      "-scheme", "http",
      "-host", "127.0.0.1",
      "-port", String(options.port),
      "-backend", "memory",
      "-public-host", publicHost,
      "-external-url", `http://${publicHost}`,
      "-event.pubsub-project-id", options.projectId,
      "-event.pubsub-topic", options.notifyTopic,
      "-event.bucket", options.notifyBucket,
      "-event.list", "finalize",
      "-cors-headers", "x-goog-content-length-range,x-goog-if-generation-match,x-goog-meta-traceparent,x-goog-meta-tracestate",
      "-log-level", "warn",
    ],
    env: { ...process.env, PUBSUB_EMULATOR_HOST: options.pubsubHost },
    logFile: join(options.logDir, "storage.log"),
    ready: () => storageAnswers(`http://127.0.0.1:${options.port}`),
    timeoutMs: 30_000,
  });
}

/** Deletes every document in the Firestore emulator's default database. */
export async function clearFirestore(host: string, projectId: string): Promise<void> {
  const response = await fetch(`http://${host}/emulator/v1/projects/${projectId}/databases/(default)/documents`, { method: "DELETE" });
  if (!response.ok) throw new Error(`clearing Firestore failed: ${response.status}`);
}

/**
 * Pays the Firestore emulator's first-use costs (loading the rules, the first rules check, the
 * first read) at start-up, so that the first listener an app or a test opens is answered as fast
 * as later ones. Reads one missing document as a signed-in user and as the admin.
 */
export async function warmFirestore(host: string, projectId: string): Promise<void> {
  const now = Math.floor(Date.now() / 1000);
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const claims = { iss: `https://securetoken.google.com/${projectId}`, aud: projectId, sub: "warm-up", user_id: "warm-up", iat: now, auth_time: now, exp: now + 600 };
  const userToken = [encode({ alg: "none", typ: "JWT" }), encode(claims), ""].join(".");
  const url = `http://${host}/v1/projects/${projectId}/databases/(default)/documents/jobs/warm-up`;
  for (const token of [userToken, "owner", userToken, "owner"]) {
    await fetch(url, { headers: { authorization: `Bearer ${token}` } }).then((response) => response.arrayBuffer());
  }
}
