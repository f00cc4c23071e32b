/**
 * What the API reads before it knows who is asking, against the real Functions Framework process
 * (local/stack/functionsHost.ts) on the int tier's emulators: compressed bodies are refused unread,
 * sizes are checked before and while reading, nothing beyond the headers is read without a valid
 * token, and slow requests are cut off. The process's resident memory is read from /proc before
 * and after, and may grow by little.
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { createGzip } from "node:zlib";
import { afterAll, beforeAll, describe, expect, inject, it, vi } from "vitest";
import { emulatorIdToken } from "../../local/auth/emulatorUsers.js";
import { ensureUrlSignerKey } from "../../local/stack/urlSignerKey.js";
import { LOCAL_DIR, REPO_ROOT } from "../../local/stack/paths.js";
import { freePort, logContains, startProcess, type RunningProcess } from "../../local/stack/processes.js";
import { sendRaw, type RawAnswer as Answer } from "../support/rawHttp.js";

const services = inject("services");
const logFile = join(LOCAL_DIR, "logs", "int", `function-api-bodies-${randomUUID()}.log`);
const MAX_DIRECT = 1024 * 1024;
const MAX_JSON = 8 * 1024;
const MiB = 1024 * 1024;
let api: RunningProcess;
let base: string;
let port: number;
let token: string;

beforeAll(async () => {
  port = await freePort();
  base = `http://127.0.0.1:${port}`;
  api = await startProcess({
    name: "function-api-bodies",
    command: process.execPath,
    args: ["--import", "tsx", join(REPO_ROOT, "local", "stack", "functionsHost.ts"), "api", String(port)],
    env: {
      ...process.env,
      STORAGE_SIGNER_KEY_FILE: ensureUrlSignerKey(),
      FIREBASE_AUTH_EMULATOR_HOST: services.authHost,
      METADATA_SERVER_DETECTION: "none",
      FIRESTORE_EMULATOR_HOST: services.firestoreHost,
      PUBSUB_EMULATOR_HOST: services.pubsubHost,
      STORAGE_API_ENDPOINT: services.storageUrl,
      GCP_PROJECT: services.projectId,
      UPLOADS_BUCKET: `uploads-${randomUUID()}`,
      RESULTS_BUCKET: `results-${randomUUID()}`,
      JOBS_TOPIC: `jobs-${randomUUID()}`,
      MAX_DIRECT_UPLOAD_BYTES: String(MAX_DIRECT),
      MAX_JSON_BODY_BYTES: String(MAX_JSON),
      BODY_MEMORY_BUDGET_BYTES: String(2 * MAX_DIRECT),
      REQUEST_TIMEOUT_SECONDS: "5",
      HEADERS_TIMEOUT_SECONDS: "2",
      NODE_ENV: "production",
    },
    cwd: REPO_ROOT,
    logFile,
    ready: () => logContains(logFile, `function api listening on http://127.0.0.1:${port}/`),
    timeoutMs: 60_000,
  });
  token = await emulatorIdToken(services.authHost, `bodies-${randomUUID()}`);
  // Warm the process up (JIT, firebase-admin, the Firestore client) before measuring its memory.
  for (let index = 0; index < 3; index += 1) await send("GET", "/v1/edits", { authorization: `Bearer ${token}` });
});

const growth: Array<[string, number]> = [];

afterAll(async () => {
  await api?.stop();
  // For docs/security.md: how much the process grew in each case, in MiB.
  console.info(`functions process RSS growth: ${growth.map(([what, bytes]) => `${what} ${(bytes / MiB).toFixed(1)} MiB`).join("; ")}`);
});

/** Asserts the process grew by less than `bound` since `before`, and records by how much. */
function grewLessThan(what: string, before: number, bound: number): void {
  const grown = rss() - before;
  growth.push([what, grown]);
  expect(grown).toBeLessThan(bound);
}

/** The functions process's resident set, in bytes. */
function rss(): number {
  const line = readFileSync(`/proc/${api.pid}/status`, "utf8").split("\n").find((each) => each.startsWith("VmRSS:")) ?? "";
  return Number(/(\d+)/.exec(line)?.[1] ?? Number.NaN) * 1024;
}

/** Sends to the API under test; the answer counts even when the body was not all taken. */
function send(method: string, path: string, headers: Record<string, string>, chunks?: AsyncIterable<Buffer> | Buffer[]): Promise<Answer> {
  return sendRaw(`${base}${path}`, method, headers, chunks);
}

async function* zeros(total: number, chunk = MiB): AsyncIterable<Buffer> {
  for (let sent = 0; sent < total; sent += chunk) yield Buffer.alloc(Math.min(chunk, total - sent));
}

/** 300 MB of zeros, gzipped at level 1: about 1.3 MB on the wire. */
async function gzipBomb(): Promise<Buffer[]> {
  const gzip = createGzip({ level: 1 });
  const parts: Buffer[] = [];
  gzip.on("data", (part: Buffer) => parts.push(part));
  const done = new Promise((resolve) => gzip.on("end", resolve));
  for await (const chunk of zeros(300_000_000)) if (!gzip.write(chunk)) await new Promise((next) => gzip.once("drain", next));
  gzip.end();
  await done;
  return parts;
}

const errorOf = (answer: Answer) => (JSON.parse(answer.body) as { error: { code: string; message: string } }).error;

describe("bodies before authentication", () => {
  it("refuses a gzip bomb unread with 415, with or without a token, and the process does not grow", async () => {
    const bomb = await gzipBomb();
    const length = bomb.reduce((total, part) => total + part.length, 0);
    expect(length).toBeLessThan(2 * MiB);
    const before = rss();
    for (const auth of [{}, { authorization: `Bearer ${token}` }] as Array<Record<string, string>>) {
      const answer = await send("POST", "/v1/edits?operation=upscale", { "content-type": "application/octet-stream", "content-encoding": "gzip", "content-length": String(length), ...auth }, bomb);
      expect(answer.status).toBe(415);
      expect(errorOf(answer)).toEqual({ code: "unsupported_media_type", message: "Content-Encoding gzip is not accepted; send the body uncompressed" });
    }
    const deflated = await send("POST", "/v1/edits", { "content-type": "application/json", "content-encoding": "deflate", "content-length": "10" }, [Buffer.alloc(10)]);
    expect(deflated.status).toBe(415);
    grewLessThan("gzip bomb ×2 + deflate", before, 16 * MiB);
  });

  it("answers eight parallel 32 MiB JSON bodies without a token at once, from their declared length, and the process does not grow", async () => {
    const before = rss();
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => send("POST", "/v1/edits", { "content-type": "application/json", "content-length": String(32 * MiB) }, zeros(32 * MiB))),
    );
    expect(answers.map((answer) => answer.status)).toEqual(Array(8).fill(413));
    expect(errorOf(answers[0] as Answer)).toEqual({ code: "payload_too_large", message: `the body may be at most ${MAX_JSON} bytes` });
    grewLessThan("8 × 32 MiB JSON", before, 16 * MiB);
  });

  it("reads nothing of a chunked body (no declared length) without a valid token: 401", async () => {
    const before = rss();
    let offered = 0;
    async function* counted(): AsyncIterable<Buffer> {
      for await (const chunk of zeros(64 * MiB)) {
        offered += chunk.length;
        yield chunk;
      }
    }
    const answers = await Promise.all([
      send("POST", "/v1/edits", { "content-type": "application/json" }, counted()),
      send("POST", "/v1/edits?operation=upscale", { "content-type": "image/jpeg", authorization: "Bearer not-a-token" }, counted()),
    ]);
    expect(answers.map((answer) => answer.status)).toEqual([401, 401]);
    expect(errorOf(answers[0] as Answer).code).toBe("unauthenticated");
    expect(offered).toBeLessThan(2 * 64 * MiB);
    grewLessThan("2 × 64 MiB chunked", before, 16 * MiB);
  });

  it("counts a direct upload while it streams: 413 past MAX_DIRECT_UPLOAD_BYTES with a valid token and no declared length", async () => {
    const before = rss();
    const answer = await send("POST", "/v1/edits?operation=upscale", { "content-type": "image/jpeg", authorization: `Bearer ${token}` }, zeros(64 * MiB, 64 * 1024));
    expect(answer.status).toBe(413);
    expect(errorOf(answer).message).toBe(`a direct upload may be at most ${MAX_DIRECT} bytes; use a signed upload`);
    const declared = await send("POST", "/v1/edits?operation=upscale", { "content-type": "image/jpeg", "content-length": String(MAX_DIRECT + 1) }, zeros(MAX_DIRECT + 1));
    expect(declared.status).toBe(413);
    grewLessThan("64 MiB chunked upload + 1 MiB declared", before, 16 * MiB);
  });

  it("answers a malformed JSON body with our error envelope and one JSON log line, not an HTML page", async () => {
    const answer = await send("POST", "/v1/edits", { "content-type": "application/json", authorization: `Bearer ${token}`, "content-length": "19" }, [Buffer.from("{operation: upscale")]);
    expect(answer.status).toBe(400);
    expect(answer.headers["content-type"]).toMatch(/^application\/json/);
    expect(errorOf(answer).code).toBe("invalid_json");
    const outside = await send("POST", "/", { "content-type": "application/json", "content-length": "5" }, [Buffer.from("{nope")]);
    expect(outside.status).toBe(400);
    expect(errorOf(outside)).toEqual({ code: "invalid_json", message: "the body is not valid JSON" });
    // The process's log reaches its file through a pipe, so the line may land just after the answer.
    const lines = await vi.waitFor(
      () => {
        const found = readFileSync(logFile, "utf8").split("\n").filter((line) => line.includes("invalid_json") || line.includes("SyntaxError"));
        expect(found.length).toBeGreaterThan(0);
        return found;
      },
      { timeout: 5_000, interval: 50 },
    );
    for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
  });

  it("still takes a small JSON request with a valid token, with nosniff and no-store, and no CORS origin by default", async () => {
    const body = Buffer.from(JSON.stringify({ operation: "upscale", params: { scale: 2 }, contentType: "image/jpeg" }));
    const answer = await send("POST", "/v1/edits", { "content-type": "application/json", authorization: `Bearer ${token}`, "content-length": String(body.length), origin: "https://evil.example" }, [body]);
    expect(answer.status).toBe(202);
    expect(answer.headers["x-content-type-options"]).toBe("nosniff");
    expect(answer.headers["cache-control"]).toBe("no-store");
    expect(answer.headers["access-control-allow-origin"]).toBeUndefined();
    const nullOrigin = await send("OPTIONS", "/v1/edits", { origin: "null" });
    expect(nullOrigin.headers["access-control-allow-origin"]).toBeUndefined();
  });
});

describe("the instance's body budget", () => {
  it("answers 503 with Retry-After, unread, while bodies being read already fill BODY_MEMORY_BUDGET_BYTES", async () => {
    // Two direct uploads that declare the largest size and then stall: together, the whole budget.
    const stalled = await Promise.all(
      [0, 1].map(
        () =>
          new Promise<ReturnType<typeof connect>>((resolve) => {
            const socket = connect(port, "127.0.0.1", () => {
              socket.write(`POST /v1/edits?operation=upscale HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nContent-Type: image/jpeg\r\nContent-Length: ${MAX_DIRECT}\r\n\r\n`);
              socket.write(Buffer.alloc(1024));
              resolve(socket);
            });
            socket.on("error", () => undefined);
          }),
      ),
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    const refused = await send("POST", "/v1/edits?operation=upscale", { "content-type": "image/jpeg", authorization: `Bearer ${token}`, "content-length": "1024" }, [Buffer.alloc(1024)]);
    expect(refused.status).toBe(503);
    expect(refused.headers["retry-after"]).toBe("2");
    for (const socket of stalled) socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 500));
    // Freed when those connections closed: the next request is read (and refused for what it is, not for room).
    const next = await send("POST", "/v1/edits?operation=upscale", { "content-type": "image/jpeg", authorization: `Bearer ${token}`, "content-length": "1024" }, [Buffer.alloc(1024)]);
    expect(next.status).toBe(415);
  });
});

describe("slow requests", () => {
  it("cuts off a request whose headers never end, after HEADERS_TIMEOUT_SECONDS, and one whose body never ends, after REQUEST_TIMEOUT_SECONDS", async () => {
    const closedAfter = (prefix: string) =>
      new Promise<{ ms: number; answer: string }>((resolve) => {
        const started = performance.now();
        let answer = "";
        const socket = connect(port, "127.0.0.1", () => socket.write(prefix));
        socket.setEncoding("utf8");
        socket.on("data", (text: string) => (answer += text));
        socket.on("close", () => resolve({ ms: performance.now() - started, answer }));
        socket.on("error", () => undefined);
      });
    const [headers, body] = await Promise.all([
      closedAfter("POST /v1/edits HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"),
      closedAfter(`POST /v1/edits HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"op`),
    ]);
    // Node checks its timeouts every few seconds: the bounds leave room for that, not for 300 s.
    expect(headers.ms).toBeLessThan(15_000);
    expect(body.ms).toBeLessThan(20_000);
    expect(headers.answer).toMatch(/^HTTP\/1.1 408/);
  });
});
