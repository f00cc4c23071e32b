/**
 * `npm run smoke -- --api <url>`: the post-deploy check. Runs one real edit of every kind the
 * service lists (GET /v1/models) through the signed-upload flow (POST /v1/edits, PUT to the signed
 * URL), follows each job to its end (a Firestore listener where the emulator is given, otherwise
 * the API), downloads each result and checks its type, dimensions and size. Prints one line per
 * edit, then a summary; exits 0 only when every edit passed.
 */
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";

import sharp from "sharp";

import { createEditClient, type EditClient } from "../client/editClient.js";
import { describeError } from "../client/editErrors.js";
import type { ModelInfo } from "../client/editTypes.js";
import { OPERATION_SPECS, isOperation, type EditParams } from "../events/operations.js";
import { sniffPhotoType } from "./editArgs.js";

export const SMOKE_USAGE = `Usage: npm run smoke -- --api <url> [options]

Runs one edit of every kind against a deployed service and checks each result.

  --api <url>                  the service (env EDIT_API_URL)
  --firestore-emulator <host:port>
                               follow the jobs through a Firestore listener on the emulator (env
                               FIRESTORE_EMULATOR_HOST); without it they are followed through the API
  --project <id>               the listener's Firebase project (env EDIT_PROJECT_ID; default image-edit-local)
  --timeout <seconds>          how long one edit may take, upload to result (env SMOKE_TIMEOUT_SECONDS;
                               default 900: a GPU node from zero takes minutes)
  -h, --help                   this text

The token comes from EDIT_TOKEN (a Firebase ID token; \`npm run token\` on the local stack).
Exit codes: 0 every edit passed; 1 an edit failed a check; 2 bad usage.`;

export interface SmokeConfig {
  apiUrl: string;
  token: string;
  firestoreEmulatorHost: string | undefined;
  projectId: string;
  timeoutMs: number;
}

export type SmokeArgs = { kind: "run"; config: SmokeConfig } | { kind: "help" } | { kind: "usage_error"; message: string };

/** Every option has its flag, its env var, its default and its check; a bad one names itself. */
export function parseSmokeArgs(argv: readonly string[], env: Record<string, string | undefined>): SmokeArgs {
  const flags = new Map([
    ["--api", "api"],
    ["--firestore-emulator", "firestore"],
    ["--project", "project"],
    ["--timeout", "timeout"],
  ]);
  const values: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "-h" || arg === "--help") return { kind: "help" };
    const [flag, inline] = arg.startsWith("--") && arg.includes("=") ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)] : [arg, undefined];
    const name = flags.get(flag);
    if (!name) return { kind: "usage_error", message: `unknown argument ${arg}` };
    const value = inline ?? argv[++i];
    if (!value) return { kind: "usage_error", message: `${flag} needs a value` };
    values[name] = value;
  }
  const apiUrl = (values.api ?? env.EDIT_API_URL ?? "").replace(/\/+$/, "");
  if (!apiUrl) return { kind: "usage_error", message: "give the service with --api <url> (or EDIT_API_URL)" };
  try {
    if (!/^https?:$/.test(new URL(apiUrl).protocol)) throw new Error("scheme");
  } catch {
    return { kind: "usage_error", message: `--api must be an http(s) URL, not "${apiUrl}"` };
  }
  const token = env.EDIT_TOKEN ?? "";
  if (!token) return { kind: "usage_error", message: "EDIT_TOKEN is not set: export a Firebase ID token for a test user" };
  const firestoreEmulatorHost = values.firestore ?? env.FIRESTORE_EMULATOR_HOST;
  if (firestoreEmulatorHost !== undefined && !/^[^:\s]+:\d{1,5}$/.test(firestoreEmulatorHost)) {
    return { kind: "usage_error", message: `the Firestore emulator must be host:port, not "${firestoreEmulatorHost}"` };
  }
  const timeout = Number(values.timeout ?? env.SMOKE_TIMEOUT_SECONDS ?? 900);
  if (!Number.isInteger(timeout) || timeout < 1) return { kind: "usage_error", message: `--timeout must be whole seconds, not "${values.timeout ?? env.SMOKE_TIMEOUT_SECONDS}"` };
  return {
    kind: "run",
    config: {
      apiUrl,
      token,
      firestoreEmulatorHost,
      projectId: values.project ?? env.EDIT_PROJECT_ID ?? "image-edit-local",
      timeoutMs: timeout * 1000,
    },
  };
}

/** The photo every edit starts from: drawn here, so the check needs no file. */
export const SMOKE_PHOTO = { width: 160, height: 120 } as const;

async function smokePhoto(): Promise<Uint8Array> {
  const { width, height } = SMOKE_PHOTO;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
    <defs><linearGradient id="sky" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="#6fa8dc"/><stop offset="1" stop-color="#d9ead3"/></linearGradient></defs>
    <rect width="100%" height="100%" fill="url(#sky)"/>
    <circle cx="80" cy="70" r="34" fill="#b45f06"/><circle cx="70" cy="62" r="5" fill="#222"/><circle cx="92" cy="62" r="5" fill="#222"/>
    <rect x="0" y="100" width="${width}" height="20" fill="#38761d"/></svg>`;
  return new Uint8Array(await sharp(Buffer.from(svg)).jpeg({ quality: 90 }).toBuffer());
}

export interface EditOutcome {
  operation: string;
  ok: boolean;
  line: string;
}

/** One edit: create, upload, follow to the end, download, check. Never throws. */
async function smokeOne(client: EditClient, model: ModelInfo, photo: Uint8Array, timeoutMs: number): Promise<EditOutcome> {
  const operation = model.operation;
  const started = performance.now();
  const params: EditParams = {};
  for (const [name, info] of Object.entries(model.params)) {
    if (info.default !== undefined) params[name] = info.default as EditParams[string];
  }
  let jobId = "";
  const fail = (reason: string) => ({ operation, ok: false, line: `FAIL  ${operation.padEnd(18)} ${jobId ? `job ${jobId}  ` : ""}${reason}` });
  try {
    const created = await client.createEdit({ operation, params, image: photo, contentType: "image/jpeg", flow: "signed" });
    jobId = created.jobId;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const ended = await Promise.race([
      client.waitUntilEnded(jobId),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`did not end within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
    if (ended.status !== "succeeded") {
      return fail(ended.status === "failed" ? `failed: ${ended.error.message}` : `ended ${ended.status}`);
    }
    const result = await client.fetchResult(jobId);
    const scale = isOperation(operation) ? OPERATION_SPECS[operation].outputScale(params) : 1;
    const want = { width: SMOKE_PHOTO.width * scale, height: SMOKE_PHOTO.height * scale };
    const sniffed = sniffPhotoType(Buffer.from(result.bytes));
    const meta = await sharp(result.bytes).metadata();
    const problems = [
      sniffed !== result.contentType && `the bytes are ${sniffed ?? "not an image"}, the job says ${result.contentType}`,
      result.contentType !== "image/png" && `type ${result.contentType}, expected image/png`,
      result.bytes.byteLength !== ended.output.sizeBytes && `${result.bytes.byteLength} bytes downloaded, the job says ${ended.output.sizeBytes}`,
      result.bytes.byteLength < 1024 && `only ${result.bytes.byteLength} bytes`,
      (meta.width !== want.width || meta.height !== want.height) && `${meta.width}×${meta.height}, expected ${want.width}×${want.height}`,
      operation === "remove_background" && !meta.hasAlpha && "no alpha channel for the cut-out",
    ].filter((p): p is string => typeof p === "string");
    if (problems.length > 0) return fail(problems.join("; "));
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const kb = (result.bytes.byteLength / 1024).toFixed(1);
    return {
      operation,
      ok: true,
      line: `ok    ${operation.padEnd(18)} job ${jobId}  ${SMOKE_PHOTO.width}×${SMOKE_PHOTO.height} → ${meta.width}×${meta.height} ${result.contentType} ${kb} KB  ${seconds} s`,
    };
  } catch (error) {
    return fail(describeError(error));
  }
}

export async function runSmoke(config: SmokeConfig, print: (line: string) => void): Promise<number> {
  const started = performance.now();
  let listener: { firestore: import("firebase/firestore").Firestore; close(): Promise<void> } | undefined;
  try {
    if (config.firestoreEmulatorHost) {
      const { connectEmulatorFirestore, tokenSubject } = await import("../client/firestoreConnection.js");
      listener = connectEmulatorFirestore({ projectId: config.projectId, emulatorHost: config.firestoreEmulatorHost, userId: tokenSubject(config.token) });
    }
    const client = createEditClient({ apiUrl: config.apiUrl, getToken: () => config.token, ...(listener ? { firestore: listener.firestore } : {}) });
    let models: ModelInfo[];
    try {
      models = (await client.models()).filter((m) => m.available);
    } catch (error) {
      print(`FAIL  GET /v1/models: ${describeError(error)}`);
      print(`smoke: 0 edits run against ${config.apiUrl}: the service did not list its edits`);
      return 1;
    }
    const photo = await smokePhoto();
    const outcomes = await Promise.all(
      models.map(async (model) => {
        const outcome = await smokeOne(client, model, photo, config.timeoutMs);
        print(outcome.line);
        return outcome;
      }),
    );
    const passed = outcomes.filter((o) => o.ok).length;
    const failed = outcomes.filter((o) => !o.ok).map((o) => o.operation);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const via = listener ? "a Firestore listener" : "the API";
    const allPass = models.length > 0 && failed.length === 0;
    print(
      `smoke: ${passed} of ${models.length} edits passed against ${config.apiUrl} in ${seconds} s (followed through ${via})` +
        (failed.length ? `; failed: ${failed.join(", ")}` : models.length === 0 ? "; the service lists no available edit" : ""),
    );
    return allPass ? 0 : 1;
  } finally {
    await listener?.close().catch(() => {});
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const parsed = parseSmokeArgs(process.argv.slice(2), process.env);
  if (parsed.kind === "help") {
    console.log(SMOKE_USAGE);
    process.exit(0);
  }
  if (parsed.kind === "usage_error") {
    console.error(`smoke: ${parsed.message}\n\n${SMOKE_USAGE}`);
    process.exit(2);
  }
  process.exit(await runSmoke(parsed.config, (line) => console.log(line)));
}
