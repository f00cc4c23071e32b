/**
 * Output formats through the doubles: the request rules as a table, the API's answers in both
 * flows, the streamed JPEG encoder against one whole-image encode, and the worker writing each
 * format with the content type its view shows. AVIF accepted, HEIC refused with a sentence. The
 * same through the real stack is test/e2e/formatsAndWait.e2e.test.ts.
 */
import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { handleCommand } from "../../events/handleCommand.js";
import type { Operation } from "../../events/operations.js";
import { checkOutputFormat, type OutputFormat } from "../../events/outputFormat.js";
import { EventSchemaError, parseEvent } from "../../events/editEvents.js";
import { createEditApi, type ApiRequest } from "../../functions/editApi.js";
import { isHeif, sniffImageType } from "../../functions/imageType.js";
import { encodeJpeg } from "../../workers/edits/jpegStream.js";
import { createWorker, resultObjectName } from "../../workers/jobWorker.js";
import { createFixedTokenVerifier } from "../doubles/fixedTokenVerifier.js";
import { handDelivery, memoryCore, testJpeg, UPLOADS, type MemoryCore } from "../support/coreFixtures.js";
import { WORKER_TEST_CONFIG } from "../support/workerTestConfig.js";

const HEIC_SAMPLE = join(import.meta.dirname, "../support/samples/gradient-64x48.heic");

describe("the output format rules", () => {
  it.each<[string, Operation, unknown, OutputFormat | string]>([
    ["nothing asked: PNG", "upscale", undefined, { format: "png" }],
    ["JPEG with a quality given as a query string", "upscale", { format: "jpeg", quality: "75" }, { format: "jpeg", quality: 75 }],
    ["WebP for background removal (it keeps transparency)", "remove_background", { format: "webp" }, { format: "webp" }],
    ["JPEG for background removal on a colour", "remove_background", { format: "jpeg", background: "#FFFFFF" }, { format: "jpeg", background: "#ffffff" }],
    ["JPEG for background removal without a colour", "remove_background", { format: "jpeg" }, "output.format"],
    ["an unknown format", "upscale", { format: "gif" }, "output.format"],
    ["a quality of 0", "upscale", { format: "webp", quality: 0 }, "output.quality"],
    ["a quality of 101", "upscale", { format: "jpeg", quality: "101" }, "output.quality"],
    ["a fractional quality", "upscale", { format: "jpeg", quality: 80.5 }, "output.quality"],
    ["a quality for PNG", "upscale", { format: "png", quality: 80 }, "output.quality"],
    ["a colour that is not #rrggbb", "upscale", { format: "png", background: "white" }, "output.background"],
    ["an unknown field", "upscale", { format: "png", lossless: true }, "output.lossless"],
    ["not an object", "upscale", "png", "output"],
  ])("%s", (_what, operation, raw, expected) => {
    const checked = checkOutputFormat(operation, raw);
    if (typeof expected === "string") expect(checked).toMatchObject({ ok: false, field: expected });
    else expect(checked).toEqual({ ok: true, output: expected });
  });

  it("says why JPEG cannot carry background removal, and what to ask for instead", () => {
    const checked = checkOutputFormat("remove_background", { format: "jpeg" });
    expect(checked.ok ? "" : checked.message).toMatch(/transparen.*png or webp.*output\.background/);
  });
});

describe("EditRequested's output field", () => {
  const requested = (output?: unknown) => ({
    seq: 1,
    at: "2026-11-30T00:00:00.000Z",
    type: "EditRequested",
    schemaVersion: 1,
    data: {
      jobId: "j",
      ownerId: "o",
      operation: "upscale",
      params: { scale: 2 },
      flow: "direct",
      input: { bucket: "b", object: "o", contentType: "image/jpeg" },
      ...(output === undefined ? {} : { output }),
    },
  });

  it("is additive: an event stored before it still parses, and one with it keeps it", () => {
    expect(parseEvent(requested()).data).not.toHaveProperty("output");
    expect(parseEvent(requested({ format: "webp", quality: 80 })).data).toMatchObject({ output: { format: "webp", quality: 80 } });
  });

  it("refuses a format or quality the rules would not have let in", () => {
    expect(() => parseEvent(requested({ format: "gif" }))).toThrow(EventSchemaError);
    expect(() => parseEvent(requested({ format: "jpeg", quality: 0 }))).toThrow(EventSchemaError);
  });
});

describe("photo types", () => {
  it("sniffs AVIF, and tells HEIC from it by the brands", async () => {
    const avif = await sharp(await testJpeg()).avif().toBuffer();
    const heic = await readFile(HEIC_SAMPLE);
    expect([sniffImageType(avif), isHeif(avif)]).toEqual(["image/avif", false]);
    expect([sniffImageType(heic), isHeif(heic)]).toEqual([undefined, true]);
    expect(isHeif(await testJpeg())).toBe(false);
  });

  it("has a HEIC sample that sharp reads the header of but cannot decode (no HEVC decoder)", async () => {
    const heic = await readFile(HEIC_SAMPLE);
    expect(await sharp(heic).metadata()).toMatchObject({ format: "heif", compression: "hevc", width: 64, height: 48 });
    await expect(sharp(heic).raw().toBuffer()).rejects.toThrow(/HEVC|decoder|compression/i);
  });
});

function apiOn(core: MemoryCore) {
  const api = createEditApi({
    store: core.store,
    images: core.images,
    queue: core.queue,
    clock: core.clock,
    verifier: createFixedTokenVerifier({ "alice-token": `alice-${randomUUID()}` }),
    newJobId: randomUUID,
    config: { uploadsBucket: UPLOADS, signedUrlTtlSeconds: 300, resultUrlTtlSeconds: 300, maxDirectUploadBytes: 200_000, maxUploadBytes: 1_000_000 },
    log: core.log,
  });
  return (init: Partial<ApiRequest>) =>
    api({ method: "POST", path: "/v1/edits", query: {}, ...init, headers: { authorization: "Bearer alice-token", ...init.headers } });
}

describe("the API's output formats and photo types", () => {
  it("records the format asked in either flow, and shows it in the job's view", async () => {
    const core = memoryCore();
    const post = apiOn(core);
    const signed = await post({ rawBody: Buffer.from(JSON.stringify({ operation: "comic", contentType: "image/png", output: { format: "webp", quality: 60 } })) });
    expect(signed.status).toBe(202);
    const direct = await post({ query: { operation: "upscale", "output.format": "jpeg", "output.quality": "80" }, headers: { "content-type": "image/jpeg" }, rawBody: await testJpeg() });
    expect(direct.status).toBe(202);
    for (const [response, asked] of [[signed, { format: "webp", quality: 60 }], [direct, { format: "jpeg", quality: 80 }]] as const) {
      const { jobId } = response.body as { jobId: string };
      expect((await core.store.getProjection(jobId))?.outputFormat).toEqual(asked);
      const view = await post({ method: "GET", path: `/v1/edits/${jobId}` });
      expect(view.body).toMatchObject({ outputFormat: asked });
    }
  });

  it.each<[string, Partial<ApiRequest>, number, RegExp]>([
    ["JPEG for background removal", { rawBody: Buffer.from(JSON.stringify({ operation: "remove_background", contentType: "image/png", output: { format: "jpeg" } })) }, 400, /JPEG cannot carry transparency/],
    ["a JSON body with ?operation=", { query: { operation: "upscale" }, headers: { "content-type": "application/json" }, rawBody: Buffer.from("{}") }, 400, /JSON body goes without \?operation=/],
    ["an unknown output.* query parameter", { query: { operation: "upscale", "output.lossless": "true" }, headers: { "content-type": "image/jpeg" }, rawBody: Buffer.from("x") }, 400, /unknown query parameter/],
    ["a HEIC content type in the signed flow", { rawBody: Buffer.from(JSON.stringify({ operation: "upscale", contentType: "image/heic" })) }, 415, /Most Compatible/],
  ])("refuses %s", async (_what, request, status, message) => {
    const core = memoryCore();
    const response = await apiOn(core)(request);
    expect(response.status).toBe(status);
    expect((response.body as { error: { message: string } }).error.message).toMatch(message);
    expect(core.queue.published).toEqual([]);
  });

  it("refuses HEIC bytes in the direct flow whatever Content-Type says, and takes AVIF", async () => {
    const core = memoryCore();
    const post = apiOn(core);
    const heic = await readFile(HEIC_SAMPLE);
    for (const type of ["image/heic", "image/jpeg"]) {
      const refused = await post({ query: { operation: "upscale" }, headers: { "content-type": type }, rawBody: heic });
      expect([refused.status, (refused.body as { error: { message: string } }).error.message]).toEqual([415, expect.stringMatching(/Send a JPEG, PNG, WebP or AVIF/)]);
    }
    const avif = await sharp(await testJpeg()).avif().toBuffer();
    const taken = await post({ query: { operation: "upscale" }, headers: { "content-type": "image/avif" }, rawBody: avif });
    expect([taken.status, taken.body]).toEqual([202, expect.objectContaining({ status: "queued" })]);
  });

  it("answers 405 with Allow", async () => {
    const core = memoryCore();
    const response = await apiOn(core)({ method: "DELETE", path: "/v1/edits" });
    expect([response.status, response.headers?.Allow]).toEqual([405, "GET, POST"]);
  });
});

describe("the streamed JPEG encoder", () => {
  it.each([[1000, 733, 100, 64], [37, 29, 5, 16], [48, 32, 32, 256]])(
    "gives the pixels of one whole-image encode for %i×%i in bands of %i rows, strips of %i",
    async (width, height, bandRows, stripRows) => {
      const { data } = await sharp({ create: { width, height, channels: 3, background: "#000000", noise: { type: "gaussian", mean: 128, sigma: 50 } } })
        .raw()
        .toBuffer({ resolveWithObject: true });
      async function* bands() {
        for (let y = 0; y < height; y += bandRows) yield data.subarray(y * width * 3, Math.min(height, y + bandRows) * width * 3);
      }
      const chunks: Buffer[] = [];
      for await (const chunk of encodeJpeg({ width, height }, bands(), { quality: 85, stripRows })) chunks.push(chunk);
      const streamed = Buffer.concat(chunks);
      expect(await sharp(streamed).metadata()).toMatchObject({ format: "jpeg", width, height, isProgressive: false });
      const whole = await sharp(data, { raw: { width, height, channels: 3 } }).jpeg({ quality: 85, optimiseCoding: false, chromaSubsampling: "4:2:0" }).toBuffer();
      expect((await sharp(streamed).raw().toBuffer()).equals(await sharp(whole).raw().toBuffer())).toBe(true);
    },
  );

  it("fails when the bands do not add up to the height", async () => {
    async function* short() {
      yield new Uint8Array(16 * 8 * 3);
    }
    const run = async () => {
      for await (const _ of encodeJpeg({ width: 16, height: 20 }, short(), { quality: 80 })) void _;
    };
    await expect(run()).rejects.toThrow(/8 rows, the header says 20/);
  });
});

describe("the worker writes the format asked", () => {
  async function runJob(core: MemoryCore, operation: Operation, output: OutputFormat, config: Partial<typeof WORKER_TEST_CONFIG> & { maxWebpOutputPixels?: number } = {}) {
    const jobId = randomUUID();
    const input = { bucket: UPLOADS, object: `uploads/${jobId}`, contentType: "image/jpeg" };
    const params: Record<string, number> = operation === "upscale" ? { scale: 2 } : {};
    await handleCommand(core, jobId, { type: "RequestEdit", jobId, ownerId: "owner", operation, params, flow: "direct", input, output });
    // Orange above, near-black below: the doubles' mask keeps the top and removes the bottom.
    const bytes = await sharp({ create: { width: 64, height: 32, channels: 3, background: "#c86432" } }).extend({ bottom: 32, background: "#101010" }).jpeg().toBuffer();
    await core.images.write(input, bytes, "image/jpeg");
    await handleCommand(core, jobId, { type: "RecordUpload", ...input, sizeBytes: bytes.length });
    const worker = createWorker({
      store: core.store,
      images: core.images,
      subscription: core.queue.subscription(),
      inference: core.inference,
      clock: core.clock,
      config: { ...WORKER_TEST_CONFIG, resultsBucket: "results", cancelCheckMs: 10, tritonReadyPollMs: 10, workerId: "w1", ...config },
      log: core.log,
    });
    await worker.process(handDelivery({ jobId, operation }));
    return { jobId, job: await core.store.getProjection(jobId) };
  }

  it.each<[Operation, OutputFormat, string, string, number]>([
    ["upscale", { format: "jpeg", quality: 70 }, "image/jpeg", "jpeg", 3],
    ["upscale", { format: "webp" }, "image/webp", "webp", 3],
    ["remove_background", { format: "webp" }, "image/webp", "webp", 4],
    ["remove_background", { format: "jpeg", background: "#00ff00" }, "image/jpeg", "jpeg", 3],
    ["remove_background", { format: "png", background: "#00ff00" }, "image/png", "png", 3],
  ])("%s as %o: %s bytes under the job's name", async (operation, output, contentType, sharpFormat, channels) => {
    const core = memoryCore();
    const { jobId, job } = await runJob(core, operation, output);
    expect(job?.status, job?.error?.message).toBe("succeeded");
    const object = resultObjectName(jobId, output.format);
    expect(job?.output).toMatchObject({ object, contentType });
    const bytes = await core.images.read({ bucket: "results", object }, 10_000_000);
    expect(job?.output?.sizeBytes).toBe(bytes.length);
    expect(await sharp(bytes).metadata()).toMatchObject({ format: sharpFormat, channels });
    // The removed half is transparent, or the colour asked for.
    const { data, info } = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
    const bottom = [...data.subarray((info.width * (info.height - 4) + 4) * info.channels, (info.width * (info.height - 4) + 5) * info.channels)];
    if (operation === "remove_background" && channels === 4) expect(bottom[3]).toBe(0);
    if (output.background === "#00ff00") expect(bottom.map((value) => Math.round(value / 32))).toEqual([0, 8, 0]);
  });

  it("fails a WebP result over its pixel limit before any model runs, saying what to ask for", async () => {
    const core = memoryCore();
    const { job } = await runJob(core, "upscale", { format: "webp" }, { maxWebpOutputPixels: 10_000 });
    expect(job).toMatchObject({ status: "failed", error: { code: "image_too_large", message: expect.stringMatching(/Ask for PNG or JPEG/) } });
    expect(core.inference.calls()).toBe(0);
  });
});
