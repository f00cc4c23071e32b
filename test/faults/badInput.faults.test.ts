/**
 * The bad-input corpus, generated here, row by row: each input gets either a 4xx whose message
 * says what is wrong, or an EditFailed whose reason does. Rows marked "converted" may instead
 * succeed, when the output is correct (upright, RGB, the right size). None may crash a process
 * or disturb a job sent alongside.
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { crc32, deflateSync, gzipSync } from "node:zlib";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { JobState } from "../../events/jobState.js";
import { emulatorIdToken } from "../../local/auth/emulatorUsers.js";
import { ensurePhotos } from "../../local/bench/photos.js";
import { callApi, checkOnce, recordCounts, stackClients, waitForEnd } from "../support/faultKit.js";
import { sendRaw } from "../support/rawHttp.js";
import { waitForLogLine } from "../support/stackLogs.js";

const stack = inject("faultStack");
const clients = stackClients(stack);
let token: string;
let jpeg: Buffer;
let png: Buffer;
const tally = { rows: 0, handled: 0 };
const control: string[] = [];

beforeAll(async () => {
  token = await emulatorIdToken(stack.emulatorEnv.FIREBASE_AUTH_EMULATOR_HOST!, `bad-input-${randomUUID()}`);
  const photo = join(await ensurePhotos(), "chelsea.png");
  jpeg = await sharp(photo).resize(40, 32).jpeg().toBuffer();
  png = await sharp(photo).resize(40, 32).png().toBuffer();
  // A job of someone else's, sent before the corpus: it must not be disturbed.
  const other = await emulatorIdToken(stack.emulatorEnv.FIREBASE_AUTH_EMULATOR_HOST!, `bystander-${randomUUID()}`);
  const created = await callApi<{ jobId: string }>(stack, other, "POST", "/v1/edits?operation=upscale&params.scale=2", { body: jpeg, headers: { "content-type": "image/jpeg" } });
  control.push(created.body.jobId);
});

afterAll(async () => {
  recordCounts(stack, { suite: "bad-input", jobsSubmitted: control.length, badInputs: tally.rows, badInputsRejected: tally.handled });
  await Promise.all([clients.firestore.terminate(), clients.pubsub.close()]);
});

/** A PNG chunk: length, type, data, CRC. */
function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([head, body, crc]);
}

/** A valid PNG header for 100000×100000 pixels with a few hundred bytes of data: a decompression bomb. */
function pngBomb(): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(100_000, 0);
  ihdr.writeUInt32BE(100_000, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const rows = deflateSync(Buffer.alloc((100_000 * 3 + 1) * 4));
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk("IHDR", ihdr), chunk("IDAT", rows), chunk("IEND", Buffer.alloc(0))]);
}

/** An APNG: a still PNG with an animation-control chunk (two frames) right after IHDR. */
function apng(still: Buffer): Buffer {
  const actl = Buffer.alloc(8);
  actl.writeUInt32BE(2, 0);
  return Buffer.concat([still.subarray(0, 33), chunk("acTL", actl), still.subarray(33)]);
}

type Outcome =
  | { http: number; message: RegExp }
  /** Not an API call: the handler ignored it, and logged why. */
  | { logged: RegExp }
  | { failed: RegExp }
  /** Either refused with a reason, or converted: succeeded, and `check` passes on the output. */
  | { failedOr: RegExp; converted: (output: Buffer) => Promise<void> };

interface Row {
  name: string;
  send: () => Promise<{ status: number; body: unknown; jobId?: string; logged?: string }>;
  expect: Outcome;
}

const direct = (bytes: Uint8Array, contentType: string, query = "operation=upscale&params.scale=2", headers: Record<string, string> = {}) => async () => {
  const answer = await callApi<{ jobId?: string }>(stack, token, "POST", `/v1/edits?${query}`, { body: bytes, headers: { "content-type": contentType, ...headers } });
  return { status: answer.status, body: answer.body, ...(answer.body?.jobId ? { jobId: answer.body.jobId } : {}) };
};

/** The signed flow: request, then PUT `bytes` to the signed URL with `putType` as Content-Type. */
const signed = (bytes: Uint8Array, declared: string, putType = declared) => async () => {
  const created = await callApi<{ jobId: string; upload: { url: string; headers: Record<string, string> } }>(stack, token, "POST", "/v1/edits", {
    json: { operation: "upscale", params: { scale: 2 }, contentType: declared },
  });
  expect(created.status).toBe(202);
  const put = await fetch(created.body.upload.url, {
    method: "PUT",
    headers: { ...created.body.upload.headers, "Content-Type": putType },
    body: new Uint8Array(bytes),
  });
  expect(put.status).toBe(200);
  return { status: created.status, body: created.body, jobId: created.body.jobId };
};

const sizeOf = async (output: Buffer) => {
  const meta = await sharp(output).metadata();
  return { width: meta.width, height: meta.height, channels: meta.channels, depth: meta.depth, format: meta.format };
};

const rows: Row[] = [
  { name: "zero bytes (direct)", send: direct(new Uint8Array(0), "image/jpeg"), expect: { http: 400, message: /body is empty/ } },
  { name: "zero bytes (signed upload)", send: async () => signed(new Uint8Array(0), "image/jpeg")(), expect: { failed: /upload is empty/ } },
  { name: "a truncated JPEG", send: async () => direct(jpeg.subarray(0, Math.floor(jpeg.length / 2)), "image/jpeg")(), expect: { failed: /could not be decoded|not an image/ } },
  { name: "text sent as an image", send: direct(Buffer.from("just some words, not a photo\n"), "image/jpeg"), expect: { http: 415, message: /not an image we accept, but Content-Type says image\/jpeg/ } },
  { name: "HTML sent as an image", send: direct(Buffer.from("<!doctype html><html><body><img src=x onerror=alert(1)></body></html>"), "image/png"), expect: { http: 415, message: /not an image we accept/ } },
  { name: "a content type that disagrees with the bytes (direct)", send: async () => direct(png, "image/jpeg")(), expect: { http: 415, message: /the body is image\/png, but Content-Type says image\/jpeg/ } },
  { name: "a content type that disagrees with the declared one (signed upload)", send: async () => signed(jpeg, "image/png", "image/jpeg")(), expect: { failed: /upload is image\/jpeg, but the edit was requested for image\/png/ } },
  { name: "a decompression bomb (tiny file, 10 000 megapixels)", send: async () => direct(pngBomb(), "image/png")(), expect: { http: 413, message: /100000×100000 \(10000\.0 megapixels\); the limit is 1 megapixels/ } },
  {
    name: "a decompression bomb through a signed upload",
    send: async () => signed(pngBomb(), "image/png")(),
    // The API never sees these bytes; the worker refuses them from the header, by their size.
    expect: { failed: /100000×100000 \(10000\.0 megapixels\); the limit is 1 megapixels/ },
  },
  {
    name: "dimensions over the limit (1200×1000, limit 1 MP)",
    send: async () => direct(await sharp({ create: { width: 1200, height: 1000, channels: 3, background: "gray" } }).jpeg().toBuffer(), "image/jpeg")(),
    expect: { http: 413, message: /1200×1000 \(1\.2 megapixels\); the limit is 1 megapixels/ },
  },
  {
    name: "dimensions over the limit through a signed upload",
    send: async () => signed(await sharp({ create: { width: 1200, height: 1000, channels: 3, background: "gray" } }).jpeg().toBuffer(), "image/jpeg")(),
    expect: { failed: /1200×1000.*the limit is 1 megapixels/ },
  },
  {
    name: "an animated GIF",
    send: async () => direct(await sharp([png, jpeg], { join: { animated: true } }).gif().toBuffer(), "image/gif")(),
    expect: { http: 415, message: /Content-Type must be one of image\/jpeg, image\/png, image\/webp/ },
  },
  {
    name: "an animated WebP",
    send: async () => direct(await sharp([png, jpeg], { join: { animated: true } }).webp().toBuffer(), "image/webp")(),
    expect: { failed: /Animated images are not supported/ },
  },
  { name: "an APNG", send: async () => direct(apng(png), "image/png")(), expect: { http: 415, message: /animated PNG/ } },
  {
    name: "a CMYK JPEG",
    send: async () => direct(await sharp(png).toColourspace("cmyk").jpeg().toBuffer(), "image/jpeg")(),
    expect: {
      failedOr: /CMYK|colour|color/i,
      converted: async (output) => expect(await sizeOf(output)).toMatchObject({ width: 80, height: 64, channels: 3, format: "png" }),
    },
  },
  {
    name: "a 16-bit PNG",
    send: async () => direct(await sharp(png).toColourspace("rgb16").png().toBuffer(), "image/png")(),
    expect: {
      failedOr: /16-bit|bit depth/i,
      converted: async (output) => expect(await sizeOf(output)).toMatchObject({ width: 80, height: 64, channels: 3, depth: "uchar", format: "png" }),
    },
  },
  {
    name: "an EXIF-rotated photo (orientation 6), which must come out upright",
    send: async () => {
      // Stored 48×32: red left half, blue right half. Shown upright (90° clockwise), red is on top.
      const left = await sharp({ create: { width: 24, height: 32, channels: 3, background: "red" } }).png().toBuffer();
      const stored = await sharp({ create: { width: 48, height: 32, channels: 3, background: "blue" } })
        .composite([{ input: left, left: 0, top: 0 }])
        .jpeg({ quality: 95 })
        .withMetadata({ orientation: 6 })
        .toBuffer();
      return direct(stored, "image/jpeg")();
    },
    expect: {
      failedOr: /^$/, // no refusal is acceptable: it must be converted
      converted: async (output) => {
        expect(await sizeOf(output)).toMatchObject({ width: 64, height: 96 });
        const { data, info } = await sharp(output).removeAlpha().raw().toBuffer({ resolveWithObject: true });
        const pixel = (x: number, y: number) => Array.from(data.subarray((y * info.width + x) * 3, (y * info.width + x) * 3 + 3));
        const [topRed, , topBlue] = pixel(32, 10) as [number, number, number];
        const [bottomRed, , bottomBlue] = pixel(32, 86) as [number, number, number];
        expect(topRed).toBeGreaterThan(topBlue);
        expect(bottomBlue).toBeGreaterThan(bottomRed);
      },
    },
  },
  { name: "an unknown operation", send: direct(new Uint8Array(8), "image/jpeg", "operation=sharpen"), expect: { http: 400, message: /operation must be one of upscale/ } },
  { name: "an out-of-range param", send: async () => direct(jpeg, "image/jpeg", "operation=upscale&params.scale=3")(), expect: { http: 400, message: /params\.scale/ } },
  { name: "an unknown param", send: async () => direct(jpeg, "image/jpeg", "operation=upscale&params.sharpness=9")(), expect: { http: 400, message: /params\.sharpness/ } },
  { name: "an unknown query parameter", send: async () => direct(jpeg, "image/jpeg", "operation=upscale&colour=red")(), expect: { http: 400, message: /unknown query parameter "colour"/ } },
  {
    name: "a body over the size limit",
    send: async () => direct(Buffer.concat([jpeg, Buffer.alloc(stack.limits.maxDirectUploadBytes)]), "image/jpeg")(),
    expect: { http: 413, message: new RegExp(`at most ${stack.limits.maxDirectUploadBytes} bytes`) },
  },
  {
    name: "an object name with path traversal",
    send: async () => {
      // A job waiting for its upload; a notification for a name that climbs out of uploads/.
      const created = await callApi<{ jobId: string }>(stack, token, "POST", "/v1/edits", { json: { operation: "upscale", contentType: "image/jpeg" } });
      const jobId = created.body.jobId;
      const name = `uploads/${jobId}/../../${jobId}`;
      const response = await fetch(stack.uploadFunctionUrl, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "ce-specversion": "1.0",
          "ce-id": randomUUID(),
          "ce-type": "google.cloud.storage.object.v1.finalized",
          "ce-source": `//storage.googleapis.com/projects/_/buckets/${stack.names.uploadsBucket}`,
          "ce-subject": `objects/${name}`,
        },
        body: JSON.stringify({ bucket: stack.names.uploadsBucket, name, contentType: "image/jpeg", size: "100" }),
      });
      await response.arrayBuffer();
      expect(response.ok).toBe(true);
      const job = await clients.store.getProjection(jobId);
      expect(job?.status).toBe("awaiting_upload");
      // The function's output reaches its log file a moment after it answers.
      const line = await waitForLogLine(join(stack.logDir, "function-uploadFinalized.log"), (each) => each.object === name).catch(() => undefined);
      return { status: response.status, body: {}, logged: line === undefined ? "" : JSON.stringify(line) };
    },
    expect: { logged: /upload ignored: not a job's upload object/ },
  },
  {
    name: "a malformed idempotency key",
    send: async () => direct(jpeg, "image/jpeg", undefined, { "idempotency-key": "has spaces in it" })(),
    expect: { http: 400, message: /Idempotency-Key must be 1 to 255 printable ASCII characters/ },
  },
  {
    name: "an idempotency key over 255 characters",
    send: async () => direct(jpeg, "image/jpeg", undefined, { "idempotency-key": "k".repeat(256) })(),
    expect: { http: 400, message: /Idempotency-Key must be 1 to 255/ },
  },
  {
    name: "a duplicate idempotency key for a different request",
    send: async () => {
      const key = randomUUID();
      expect((await direct(jpeg, "image/jpeg", "operation=upscale&params.scale=2", { "idempotency-key": key })()).status).toBe(202);
      return direct(jpeg, "image/jpeg", "operation=upscale&params.scale=4", { "idempotency-key": key })();
    },
    expect: { http: 422, message: /already used for a different request/ },
  },
  {
    name: "a body that is not JSON (signed flow)",
    send: async () => {
      const answer = await callApi(stack, token, "POST", "/v1/edits", { body: Buffer.from("{operation: upscale"), headers: { "content-type": "application/json" } });
      return { status: answer.status, body: answer.body };
    },
    // Read by the API's body guard, not the Functions Framework's parser: our envelope.
    expect: { http: 400, message: /the body must be a JSON object/ },
  },
  {
    name: "a gzip-compressed body (a 10 MB bomb in 10 KB)",
    send: async () => direct(gzipSync(Buffer.alloc(10_000_000)), "image/jpeg", undefined, { "content-encoding": "gzip" })(),
    expect: { http: 415, message: /Content-Encoding gzip is not accepted; send the body uncompressed/ },
  },
  {
    name: "a 32 MiB JSON body",
    send: async () => {
      // The API answers from the declared length and closes before taking the body, which fetch
      // reports as a failed request; this client keeps the answer.
      const size = 32 * 1024 * 1024;
      const answer = await sendRaw(`${stack.apiUrl}/v1/edits`, "POST", { authorization: `Bearer ${token}`, "content-type": "application/json", "content-length": String(size) }, [Buffer.alloc(size, 0x20)]);
      return { status: answer.status, body: JSON.parse(answer.body) as unknown };
    },
    expect: { http: 413, message: /the body may be at most 8192 bytes/ },
  },
  {
    name: "an unknown top-level field (signed flow)",
    send: async () => {
      const answer = await callApi(stack, token, "POST", "/v1/edits", { json: { operation: "upscale", contentType: "image/jpeg", ownerId: "someone-else" } });
      return { status: answer.status, body: answer.body };
    },
    expect: { http: 400, message: /unknown field "ownerId"/ },
  },
  { name: "a parameter named constructor", send: async () => direct(jpeg, "image/jpeg", "operation=upscale&params.constructor=2")(), expect: { http: 400, message: /params\.constructor/ } },
  { name: "a parameter named __proto__", send: async () => direct(jpeg, "image/jpeg", "operation=upscale&params.__proto__=2")(), expect: { http: 400, message: /params\.__proto__/ } },
  {
    name: "an output over the limit at scale 4 (600×500 in, 4.8 megapixels out, limit 4)",
    send: async () => direct(await sharp({ create: { width: 600, height: 500, channels: 3, background: "gray" } }).jpeg().toBuffer(), "image/jpeg", "operation=upscale&params.scale=4")(),
    expect: { http: 413, message: /scaling a 600×500 image 4 times gives 5 megapixels; the output limit is 4 megapixels/ },
  },
  {
    name: "an SVG uploaded as image/png through a signed URL",
    send: async () => signed(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8"/></svg>'), "image/png")(),
    expect: { failed: /not a JPEG, PNG, WebP or AVIF image, though it was sent as image\/png/ },
  },
  {
    name: "a GIF uploaded as image/png through a signed URL",
    send: async () => signed(await sharp(png).gif().toBuffer(), "image/png")(),
    expect: { failed: /not a JPEG, PNG, WebP or AVIF image, though it was sent as image\/png/ },
  },
  {
    name: "a TIFF uploaded as image/png through a signed URL",
    send: async () => signed(await sharp(png).tiff().toBuffer(), "image/png")(),
    expect: { failed: /not a JPEG, PNG, WebP or AVIF image, though it was sent as image\/png/ },
  },
];

describe("bad input", () => {
  it.each(rows.map((row) => [row.name, row] as const))("%s", async (_, row) => {
    tally.rows += 1;
    const answer = await row.send();
    const outcome = row.expect;
    if ("logged" in outcome) {
      expect(answer.logged).toMatch(outcome.logged);
    } else if ("http" in outcome) {
      expect(answer.status).toBe(outcome.http);
      if (typeof answer.body === "string") {
        // Not our JSON error: at least no stack trace or path of ours may leak.
        expect(answer.body).not.toMatch(/ at |node_modules|\/work\//);
      } else {
        expect((answer.body as { error: { message: string } }).error.message).toMatch(outcome.message);
      }
    } else {
      expect(answer.status).toBe(202);
      const jobId = answer.jobId as string;
      const job = (await waitForEnd(clients.firestore, [jobId], 60_000)).get(jobId) as JobState;
      if ("failed" in outcome) {
        expect(job.status).toBe("failed");
        expect(job.error?.message).toMatch(outcome.failed);
      } else if (job.status === "failed") {
        expect(job.error?.message).toMatch(outcome.failedOr);
      } else {
        expect(job.status).toBe("succeeded");
        const [bytes] = await clients.storage.bucket(stack.names.resultsBucket).file(`results/${jobId}/output.png`).download();
        await outcome.converted(bytes);
      }
      expect((await checkOnce(clients, stack.names.resultsBucket, jobId)).terminal).toHaveLength(1);
    }
    tally.handled += 1;
  });

  it("disturbs no other job and crashes no process", async () => {
    const [job] = (await waitForEnd(clients.firestore, control, 60_000)).values();
    expect(job?.status).toBe("succeeded");
    expect((await checkOnce(clients, stack.names.resultsBucket, control[0] as string)).terminal).toEqual(["EditSucceeded"]);
    // The API and the worker still answer: one more edit goes through.
    const after = await callApi<{ jobId: string }>(stack, token, "POST", "/v1/edits?operation=upscale&params.scale=2", { body: jpeg, headers: { "content-type": "image/jpeg" } });
    expect(after.status).toBe(202);
    control.push(after.body.jobId);
    const [next] = (await waitForEnd(clients.firestore, [after.body.jobId], 60_000)).values();
    expect(next?.status).toBe("succeeded");
  });
});
