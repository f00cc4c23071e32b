/**
 * Output formats, `Prefer: wait`, AVIF and HEIC on the whole local stack, through the public API
 * and the typed client: each format's real bytes and content type, the 200 of a wait that the job
 * beats and the 202 of one it does not, JPEG refused for background removal unless given a
 * colour, an AVIF photo through the signed upload, and the HEIC answer in both flows.
 */
import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import sharp from "sharp";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { createEditClient, type EditClient } from "../../client/editClient.js";
import { EditApiError } from "../../client/editErrors.js";
import { emulatorIdToken } from "../../local/auth/emulatorUsers.js";
import { ensurePhotos } from "../../local/bench/photos.js";

const stack = inject("stack");
const HEIC_SAMPLE = join(import.meta.dirname, "../support/samples/gradient-64x48.heic");
let token: string;
let client: EditClient;
let photo: Buffer;

beforeAll(async () => {
  token = await emulatorIdToken(stack.authHost, `formats-${randomUUID()}`);
  client = createEditClient({ apiUrl: stack.apiUrl, getToken: () => token });
  photo = await sharp(join(await ensurePhotos(), "chelsea.png")).resize(96).jpeg({ quality: 90 }).toBuffer();
});

function postDirect(query: Record<string, string>, body: Buffer, headers: Record<string, string>) {
  return fetch(`${stack.apiUrl}/v1/edits?${new URLSearchParams(query)}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, ...headers },
    body: new Uint8Array(body),
  });
}

describe("output formats and waiting, on the local stack", () => {
  it("answers 200 with the ended job and Preference-Applied when the edit ends within the wait", async () => {
    const response = await postDirect({ operation: "comic", "output.format": "webp", "output.quality": "60" }, photo, { "content-type": "image/jpeg", prefer: "wait=60" });
    expect(response.status).toBe(200);
    expect(response.headers.get("preference-applied")).toBe("wait=60");
    const job = (await response.json()) as { jobId: string; status: string; outputFormat: unknown; output: { url: string; contentType: string } };
    expect(job).toMatchObject({ status: "succeeded", outputFormat: { format: "webp", quality: 60 }, output: { contentType: "image/webp" } });
    // The same view as GET /v1/edits/{jobId}, but for the signed URL's moment of signing.
    const read = (await (await fetch(`${stack.apiUrl}/v1/edits/${job.jobId}`, { headers: { authorization: `Bearer ${token}` } })).json()) as typeof job;
    expect({ ...read, output: { ...read.output, url: "" } }).toEqual({ ...job, output: { ...job.output, url: "" } });
  });

  it("answers 202 without Preference-Applied when the edit does not end within the wait", async () => {
    const big = await sharp(join(await ensurePhotos(), "chelsea.png")).resize(320).jpeg().toBuffer();
    const response = await postDirect({ operation: "upscale", "params.scale": "4", "params.model": "perceptual" }, big, { "content-type": "image/jpeg", prefer: "wait=1" });
    expect(response.status).toBe(202);
    expect(response.headers.get("preference-applied")).toBeNull();
    const { jobId, status } = (await response.json()) as { jobId: string; status: string };
    expect(["queued", "running"]).toContain(status);
    await client.cancel(jobId);
  });

  it.each([
    ["png", undefined, "image/png", "png"],
    ["jpeg", 70, "image/jpeg", "jpeg"],
    ["webp", 80, "image/webp", "webp"],
  ] as const)("writes %s bytes with the content type the view gives", async (format, quality, contentType, sharpFormat) => {
    const created = await client.createEdit({
      operation: "aged",
      image: photo,
      contentType: "image/jpeg",
      output: { format, ...(quality === undefined ? {} : { quality }) },
      flow: "direct",
      waitSeconds: 60,
    });
    expect(created.job?.status).toBe("succeeded");
    const result = await client.fetchResult(created.jobId);
    expect(result.contentType).toBe(contentType);
    const metadata = await sharp(Buffer.from(result.bytes)).metadata();
    expect([metadata.format, metadata.width, metadata.height]).toEqual([sharpFormat, result.width, result.height]);
  });

  // Running ISNet on the CPU takes a minute here; the flattening onto the colour is shown through
  // the doubles (test/unit/outputFormat.unit.test.ts), the refusal here.
  it("refuses JPEG for background removal without a colour, and takes it with one", async () => {
    const refused = client.createEdit({ operation: "remove_background", image: photo, contentType: "image/jpeg", output: { format: "jpeg" } });
    await expect(refused).rejects.toMatchObject({ status: 400, code: "invalid_param", message: expect.stringMatching(/JPEG cannot carry transparency/) });
    await expect(refused).rejects.toBeInstanceOf(EditApiError);
    const created = await client.createEdit({ operation: "remove_background", image: photo, contentType: "image/jpeg", output: { format: "jpeg", background: "#00ff00" } });
    expect(created.status).toBe("awaiting_upload");
    expect((await client.getEdit(created.jobId)).outputFormat).toEqual({ format: "jpeg", background: "#00ff00" });
    await client.cancel(created.jobId);
  });

  it("edits an AVIF photo sent through the signed upload", async () => {
    const avif = await sharp(photo).avif().toBuffer();
    const created = await client.createEdit({ operation: "comic", image: avif, contentType: "image/avif" });
    const ended = await client.waitUntilEnded(created.jobId);
    expect(ended.status, ended.status === "failed" ? ended.error.message : "").toBe("succeeded");
    const { width } = await sharp(avif).metadata();
    expect((await client.fetchResult(created.jobId)).width).toBe(width);
  });

  it("answers a HEIC photo with 415 and what to send instead, in both flows", async () => {
    const heic = await readFile(HEIC_SAMPLE);
    const direct = await postDirect({ operation: "comic" }, heic, { "content-type": "image/heic" });
    expect(direct.status).toBe(415);
    expect(((await direct.json()) as { error: { message: string } }).error.message).toMatch(/HEIC.*Send a JPEG, PNG, WebP or AVIF instead/);
    const signed = client.createEdit({ operation: "comic", image: heic, contentType: "image/heic" });
    await expect(signed).rejects.toMatchObject({ status: 415, message: expect.stringMatching(/Most Compatible/) });
  });
});
