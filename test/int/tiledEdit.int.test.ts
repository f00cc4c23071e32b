/**
 * Tiling must not show: a photo edited tile by tile, through the worker's edit path and the real
 * Triton server, against the same model run on the whole photo in one request. Every tiled edit
 * the worker offers is held to PSNR ≥ 40 dB on a real photo.
 */
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { InferenceClient } from "../../events/inferenceClient.js";
import { OPERATION_SPECS, checkParams, type EditParams, type Operation } from "../../events/operations.js";
import { ensurePhotos } from "../../local/bench/photos.js";
import { editModel } from "../../workers/edits/editModels.js";
import { runEdit } from "../../workers/edits/runEdit.js";
import { createTritonClient } from "../../adapters/triton/tritonClient.js";
import { sharedTriton, type SharedTriton } from "../support/tritonServer.js";

let triton: SharedTriton;
let client: InferenceClient;
let photo: Photo;

beforeAll(async () => {
  triton = await sharedTriton();
  client = createTritonClient({ url: triton.grpcUrl, defaultTimeoutMs: 120_000 });
  // A 120×110 crop of the astronaut's face: skin, hair, eyes, the wall behind, sharp edges. In tiles of
  // TILE with the worker's overlap of 12 it makes 3 × 3 tiles, so one tile has neighbours on all
  // four sides, as in any large photo; the model's arithmetic, not the photo's size, is on trial.
  photo = await astronaut({ left: 190, top: 40, width: 120, height: 110 });
}, 600_000);

/** A region of the astronaut photo, as RGB and as a PNG. */
async function astronaut(region: { left: number; top: number; width: number; height: number }): Promise<Photo> {
  const { data, info } = await sharp(join(await ensurePhotos(), "astronaut.png"))
    .extract(region)
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { rgb: data, width: info.width, height: info.height, png: await sharp(data, { raw: info }).png().toBuffer() };
}

afterAll(async () => {
  client?.close();
});

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return Buffer.concat(parts);
}

/** PSNR of two RGB images, over the pixels `where` picks (all by default). */
function psnr(a: Uint8Array, b: Uint8Array, width: number, where: (x: number, y: number) => boolean = () => true): number {
  let sum = 0;
  let count = 0;
  for (let p = 0; p < a.length / 3; p += 1) {
    if (!where(p % width, Math.floor(p / width))) continue;
    for (let c = 0; c < 3; c += 1) sum += ((a[p * 3 + c] as number) - (b[p * 3 + c] as number)) ** 2;
    count += 3;
  }
  const mse = sum / count;
  return mse === 0 ? Infinity : 10 * Math.log10((255 * 255) / mse);
}

/** The tile size of the tiled runs: cores of TILE - 2 × 12 = 40 px. */
const TILE = 64;

const tiledEdits: Array<[Operation, EditParams]> = [];
for (const spec of Object.values(OPERATION_SPECS)) {
  if (!spec.available) continue;
  const checked = checkParams(spec.operation, {});
  if (!checked.ok) throw new Error(checked.message);
  if (editModel(spec.operation, checked.params).kind === "tiled") tiledEdits.push([spec.operation, checked.params]);
  if (spec.operation === "upscale") tiledEdits.push(["upscale", { scale: 2 }]);
}

type Photo = { rgb: Buffer; width: number; height: number; png: Buffer };

/** Runs `params` on `image` whole and tiled, and holds the tiled result, and its seams, to 40 dB. */
async function expectSeamless(image: Photo, operation: Operation, params: EditParams, tileSize: number, tiles: number): Promise<void> {
  const model = editModel(operation, params);
  if (model.kind !== "tiled") throw new Error("not tiled");
  const whole = await client.infer({
    model: model.model,
    inputs: [{ name: "IMAGE", datatype: "UINT8", shape: [1, image.height, image.width, 3], data: image.rgb }, ...model.paramInputs],
    outputs: ["IMAGE_OUT"],
  });
  const untiled = whole.outputs[0]?.data as Uint8Array;

  const edit = await runEdit(image.png, operation, params, {
    inference: client,
    tileSize,
    overlap: 12,
    maxInFlight: 4,
    timeoutMs: 120_000,
    maxInputPixels: 40_000_000,
    maxOutputPixels: 160_000_000,
  });
  expect(edit.tiles).toBe(tiles);
  const { data: tiled, info } = await sharp(await collect(edit.body)).raw().toBuffer({ resolveWithObject: true });
  expect([info.width, info.height, info.channels]).toEqual([image.width * model.scale, image.height * model.scale, 3]);
  expect(tiled.length).toBe(untiled.length);
  const score = psnr(tiled, untiled, info.width);
  // Seams are thin, so the whole-image figure could hide them: hold the pixels within 3 px
  // of a boundary between tile cores to the same bar.
  const seam = (tileSize - 2 * Math.max(12, model.minOverlap ?? 0)) * model.scale;
  const nearSeam = (v: number) => v >= seam - 3 && (v + 3) % seam < 6;
  const seams = psnr(tiled, untiled, info.width, (x, y) => nearSeam(x) || nearSeam(y));
  console.log(`${operation} ${JSON.stringify(params)}: tiled vs untiled PSNR ${score.toFixed(1)} dB, at the seams ${seams.toFixed(1)} dB`);
  expect(score).toBeGreaterThanOrEqual(40);
  expect(seams).toBeGreaterThanOrEqual(40);
}

describe("tiled edits", () => {
  it.each(tiledEdits)("%s %j: tiled equals untiled to PSNR ≥ 40 dB on a real photo", async (operation, params) => {
    await expectSeamless(photo, operation, params, TILE, 9); // 120×110 in cores of 40: 3 × 3 tiles
  });

  it("upscale with the perceptual model (Real-ESRGAN): its wider overlap keeps the seams away", async () => {
    // Real-ESRGAN takes seconds per tile on a CPU: a 96×64 region of the astronaut's face, in 96-px
    // tiles whose cores are 96 - 2 × 32 = 32 px (PERCEPTUAL_OVERLAP, not the 12 the worker is given): 3 × 2.
    const corner = await astronaut({ left: 220, top: 60, width: 96, height: 64 });
    const params = { scale: 4, model: "perceptual" };
    expect(editModel("upscale", params)).toMatchObject({ minOverlap: 32 });
    await expectSeamless(corner, "upscale", params, 96, 6);
  }, 300_000);

  it("stops when the job is canceled, and ends the output stream with the cancellation", async () => {
    const abort = new AbortController();
    const big = await sharp(photo.png).resize(600, 440).png().toBuffer();
    let tilesDone = 0;
    const edit = await runEdit(big, "upscale", { scale: 4 }, {
      inference: client,
      tileSize: 128,
      overlap: 12,
      maxInFlight: 2,
      timeoutMs: 120_000,
      maxInputPixels: 40_000_000,
      maxOutputPixels: 160_000_000,
      signal: abort.signal,
      onProgress: (done) => {
        tilesDone = done;
        if (done === 2) abort.abort(new Error("canceled by the owner"));
      },
    });
    await expect(collect(edit.body)).rejects.toThrow();
    expect(tilesDone).toBeLessThan(edit.tiles);
  });
});
