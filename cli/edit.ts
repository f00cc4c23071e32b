/**
 * `edit <operation> <file> [-o out] [--param k=v ...]`: edits one photo through the typed client,
 * against the local stack or a deployed API. Shows an upload progress bar, the live status with
 * tile progress, and the output's path and size. `--json` prints one object for scripts. The exit
 * codes are in `USAGE` (cli/editArgs.ts). `edit login` keeps a Firebase Auth session for later
 * commands (cli/credentials.ts); `--token` and EDIT_TOKEN take precedence over it.
 */
import { readFile, writeFile } from "node:fs/promises";
import { createEditClient } from "../client/editClient.js";
import type { WebhookRequest } from "../client/editTypes.js";
import { describeError, EditApiError } from "../client/editErrors.js";
import type { Job } from "../client/editTypes.js";
import { credentialsFile, currentIdToken, login, LoginError, logout } from "./credentials.js";
import { EXIT, USAGE, defaultOutputPath, exitCodeFor, formatBytes, parseEditArgs, progressBar, sniffPhotoType, type EditOptions, type LoginOptions } from "./editArgs.js";

const parsed = parseEditArgs(process.argv.slice(2), process.env);
if (parsed.kind === "help") {
  console.log(USAGE);
  process.exit(EXIT.succeeded);
}
if (parsed.kind === "usage_error") {
  console.error(`edit: ${parsed.message}\n\n${USAGE}`);
  process.exit(EXIT.usage);
}
const sessionFile = credentialsFile(process.env);
if (parsed.kind === "logout") {
  await logout(sessionFile);
  console.error(`edit: logged out (${sessionFile} removed)`);
  process.exit(EXIT.succeeded);
}
process.exit(parsed.kind === "login" ? await runLogin(parsed.options) : await run(parsed.options));

async function runLogin(options: LoginOptions): Promise<number> {
  const password = options.password ?? (await readPassword());
  try {
    const session = await login(options, options.email, password, sessionFile);
    console.error(`edit: logged in as ${session.email} (${options.emulatorHost ? `Auth emulator ${options.emulatorHost}` : "Firebase Auth"}); session kept in ${sessionFile}`);
    return EXIT.succeeded;
  } catch (error) {
    console.error(`edit: login failed: ${error instanceof Error ? error.message : String(error)}`);
    return error instanceof LoginError ? EXIT.unauthenticated : EXIT.unreachable;
  }
}

/** The first line of stdin: a password piped in, or typed after the prompt. */
async function readPassword(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write("Password: ");
  const { createInterface } = await import("node:readline");
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    lines.close();
    return line;
  }
  return "";
}

async function run(options: EditOptions): Promise<number> {
  const say = options.json ? () => {} : (line: string) => process.stderr.write(`${line}\n`);
  const tty = !options.json && process.stderr.isTTY;
  /** A line redrawn in place on a terminal; elsewhere printed only when `milestone` says so. */
  const redraw = (line: string, milestone: boolean) => {
    if (tty) process.stderr.write(`\r\x1b[2K${line}`);
    else if (milestone && !options.json) process.stderr.write(`${line}\n`);
  };
  const endLine = () => tty && process.stderr.write("\n");
  const fail = (code: number, message: string, extra: Record<string, unknown> = {}) => {
    endLine();
    if (options.json) console.log(JSON.stringify({ ok: false, exitCode: code, error: message, ...extra }));
    else console.error(`edit: ${message}`);
    return code;
  };

  let image: Buffer;
  try {
    image = await readFile(options.file);
  } catch (error) {
    return fail(EXIT.usage, `cannot read ${options.file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  const contentType = sniffPhotoType(image);
  if (!contentType) return fail(EXIT.usage, `${options.file} is not a JPEG, PNG, WebP or AVIF photo`);
  if (contentType === "image/heic") {
    return fail(EXIT.usage, `${options.file} is HEIC/HEIF, which the service cannot decode; convert it to JPEG first (on an iPhone: Settings › Camera › Formats › Most Compatible)`);
  }
  // A token given wins; otherwise the session of `edit login`, refreshed whenever it runs out.
  let getToken: () => Promise<string>;
  if (options.auth) {
    const given = options.auth.token;
    getToken = async () => given;
  } else {
    getToken = () => currentIdToken(sessionFile);
  }
  let token: string;
  try {
    token = await getToken();
  } catch (error) {
    if (!(error instanceof LoginError)) throw error;
    const message = error.message === "not logged in" ? "not signed in" : `the kept session is no longer valid (${error.message})`;
    return fail(EXIT.unauthenticated, `${message}: run \`edit login\`, or give --token (or EDIT_TOKEN); on the local stack, \`npm run -s token -- <name>\` prints one`);
  }

  let firestore: Awaited<ReturnType<typeof connectListener>> | undefined;
  let jobId: string | undefined;
  try {
    if (options.firestoreEmulatorHost) firestore = await connectListener(options, token);
    const client = createEditClient({ apiUrl: options.apiUrl, getToken, ...(firestore ? { firestore: firestore.firestore } : {}) });

    let lastQuarter = -1;
    const created = await client.createEdit({
      operation: options.operation,
      params: options.params,
      image: new Uint8Array(image.buffer, image.byteOffset, image.byteLength),
      contentType,
      flow: options.direct ? "direct" : "signed",
      ...(options.priority === undefined ? {} : { priority: options.priority }),
      ...(options.cache ? {} : { cache: false }),
      ...(options.webhook ? { webhook: options.webhook as WebhookRequest } : {}),
      ...(options.format === undefined ? {} : { output: options.format }),
      ...(options.waitSeconds === undefined ? {} : { waitSeconds: options.waitSeconds }),
      onUploadProgress: (sent, total) => {
        const quarter = Math.floor((sent / Math.max(1, total)) * 4);
        redraw(`Uploading ${progressBar(sent, total)} ${formatBytes(sent)} of ${formatBytes(total)}`, quarter !== lastQuarter);
        lastQuarter = quarter;
      },
    });
    jobId = created.jobId;
    endLine();
    say(`Job ${jobId} (${options.operation}), followed ${firestore ? "through a Firestore listener" : "through the API"}`);

    // Ctrl-C cancels the job rather than leaving it running unseen.
    process.once("SIGINT", () => {
      endLine();
      say("Canceling…");
      void client.cancel(created.jobId).finally(() => process.exit(130));
    });

    let lastStatus = "";
    if (created.job) say(`Ended within the request's wait: ${created.job.status}`);
    const ended = created.job ?? await client.waitUntilEnded(jobId, (job: Job) => {
      const tiles = job.status === "running" && job.progress ? ` tiles ${progressBar(job.progress.tilesDone, job.progress.tilesTotal)} ${job.progress.tilesDone}/${job.progress.tilesTotal}` : "";
      const retry = (job.status === "queued" || job.status === "running") && job.lastError ? ` (retrying after: ${job.lastError.message})` : "";
      redraw(`Status: ${job.status}${tiles}${retry}`, job.status !== lastStatus || tiles !== "");
      lastStatus = job.status;
    });
    endLine();
    if (ended.status === "failed") {
      return fail(EXIT.editFailed, `the edit failed: ${ended.error.message}`, { jobId, status: "failed", reason: ended.error });
    }
    if (ended.status === "canceled") return fail(EXIT.editFailed, "the edit was canceled", { jobId, status: "canceled" });

    const result = await client.fetchResult(jobId);
    const output = options.output ?? defaultOutputPath(options.file, options.operation, result.contentType);
    await writeFile(output, result.bytes);
    if (options.json) {
      console.log(JSON.stringify({ ok: true, exitCode: 0, jobId, status: "succeeded", ...(ended.cachedFrom === undefined ? {} : { cachedFrom: ended.cachedFrom }), output: { path: output, sizeBytes: result.bytes.byteLength, width: result.width, height: result.height, contentType: result.contentType } }));
    } else {
      const cached = ended.cachedFrom === undefined ? "" : `, from the result of your earlier job ${ended.cachedFrom}`;
      console.log(`Saved ${output} (${result.width}×${result.height}, ${formatBytes(result.bytes.byteLength)}${cached})`);
    }
    return EXIT.succeeded;
  } catch (error) {
    const code = exitCodeFor(error);
    const detail = error instanceof EditApiError ? ` [${error.code}]` : "";
    return fail(code, `${describeError(error)}${detail}`, jobId ? { jobId } : {});
  } finally {
    await firestore?.close().catch(() => {});
  }
}

async function connectListener(options: EditOptions, token: string) {
  const { connectEmulatorFirestore, tokenSubject } = await import("../client/firestoreConnection.js");
  return connectEmulatorFirestore({ projectId: options.projectId, emulatorHost: options.firestoreEmulatorHost!, userId: tokenSubject(token) });
}
