/**
 * The contract every tiled edit model (enhance, comic, aged) keeps on the real Triton server,
 * as one suite run against each: the tensor contract, strength 0 as the identity, locality (a
 * crop's output equals the full image's output away from the crop's border, which is what makes
 * the worker's tiling seamless), batching that changes nothing, and INVALID_ARG for bad input.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InferenceError, type InferenceClient, type InferenceResult, type Tensor } from "../../events/inferenceClient.js";
import { readPhotoTile, type Crop } from "../../local/bench/photos.js";
import { createTritonClient } from "../../adapters/triton/tritonClient.js";
import { sharedTriton, type SharedTriton } from "./tritonServer.js";

/** The worker's overlap: no operator may read further than this from an output pixel. */
export const MAX_RADIUS = 12;

export interface TiledImage {
  height: number;
  width: number;
  /** [rows, height, width, 3] row-major. */
  pixels: Uint8Array;
  rows: number;
}

export interface TiledEditContext {
  /** The int tier's shared Triton server: the suite only sends it requests. */
  triton: SharedTriton;
  client: InferenceClient;
  scratch: string;
}

export async function photo(name: string, crop: Crop): Promise<TiledImage> {
  return { height: crop.height, width: crop.width, rows: 1, pixels: await readPhotoTile(name, crop) };
}

export function stack(images: TiledImage[]): TiledImage {
  const [first] = images;
  if (!first) throw new Error("no images");
  const pixels = new Uint8Array(images.reduce((n, i) => n + i.pixels.length, 0));
  let offset = 0;
  for (const image of images) {
    pixels.set(image.pixels, offset);
    offset += image.pixels.length;
  }
  return { height: first.height, width: first.width, rows: images.reduce((n, i) => n + i.rows, 0), pixels };
}

export function editRequest(model: string, image: TiledImage, strength: number | number[]): Parameters<InferenceClient["infer"]>[0] {
  const strengths = Array.isArray(strength) ? strength : new Array<number>(image.rows).fill(strength);
  const inputs: Tensor[] = [
    { name: "IMAGE", datatype: "UINT8", shape: [image.rows, image.height, image.width, 3], data: image.pixels },
    { name: "STRENGTH", datatype: "FP32", shape: [strengths.length, 1], data: Float32Array.from(strengths) },
  ];
  return { model, inputs, outputs: ["IMAGE_OUT"] };
}

export function imageOut(result: InferenceResult): Uint8Array {
  expect(result.outputs.map((o) => o.name)).toEqual(["IMAGE_OUT"]);
  const [output] = result.outputs;
  if (!output) throw new Error("no output");
  expect(output.datatype).toBe("UINT8");
  return output.data as Uint8Array;
}

export async function failure(promise: Promise<unknown>): Promise<InferenceError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof InferenceError) return error;
    throw error;
  }
  throw new Error("expected the call to fail");
}

/** Largest absolute difference, and how many values differ at all. */
export function compare(a: Uint8Array, b: Uint8Array): { max: number; differing: number } {
  expect(a.length).toBe(b.length);
  let max = 0;
  let differing = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs((a[i] ?? 0) - (b[i] ?? 0));
    if (d > 0) differing++;
    if (d > max) max = d;
  }
  return { max, differing };
}

/** A window of an [height, width, 3] image. */
export function cut(pixels: Uint8Array, width: number, window: Crop): Uint8Array {
  const out = new Uint8Array(window.width * window.height * 3);
  for (let y = 0; y < window.height; y++) {
    const start = ((window.top + y) * width + window.left) * 3;
    out.set(pixels.subarray(start, start + window.width * 3), y * window.width * 3);
  }
  return out;
}

export interface TiledEditContractOptions {
  model: string;
  /** The API's default strength. */
  defaultStrength: number;
  /** Radius the model states in its model.py. */
  radius: number;
  /**
   * Largest per-value difference allowed between a crop's output and the full image's output in
   * the crop's interior: 0 for exact arithmetic, 1 where a library may pick another float
   * summation order for another image size (onnxruntime's conv kernels).
   */
  localityTolerance: number;
}

/** Registers the suite; returns the shared server and client for the model's own tests. */
export function tiledEditContract(options: TiledEditContractOptions): TiledEditContext {
  const { model, defaultStrength } = options;
  const context = {} as TiledEditContext;

  beforeAll(async () => {
    context.triton = await sharedTriton();
    context.client = createTritonClient({ url: context.triton.grpcUrl, defaultTimeoutMs: 120_000 });
    context.scratch = mkdtempSync(join(tmpdir(), `${model}-model-`));
  }, 600_000);

  afterAll(async () => {
    context.client?.close();
    if (context.scratch) rmSync(context.scratch, { recursive: true, force: true });
  });

  const edit = (image: TiledImage, strength: number | number[]) => context.client.infer(editRequest(model, image, strength));

  describe(`${model}: the tiled edit contract`, () => {
    it("describes the contract's tensors", async () => {
      const description = await context.client.describeModel(model);
      expect(description.inputs).toEqual([
        { name: "IMAGE", datatype: "UINT8", shape: [-1, -1, -1, 3] },
        { name: "STRENGTH", datatype: "FP32", shape: [-1, 1] },
      ]);
      expect(description.outputs).toEqual([{ name: "IMAGE_OUT", datatype: "UINT8", shape: [-1, -1, -1, 3] }]);
    });

    it("keeps a non-square tile's size and changes a real photo at the default strength", async () => {
      const input = await photo("coffee.png", { left: 200, top: 100, width: 96, height: 64 });
      const result = await edit(input, defaultStrength);
      expect(result.outputs[0]?.shape).toEqual([1, 64, 96, 3]);
      const out = imageOut(result);
      expect(compare(out, input.pixels).differing).toBeGreaterThan(out.length / 4);
    });

    it("returns the input unchanged at strength 0", async () => {
      const input = await photo("astronaut.png", { left: 170, top: 80, width: 64, height: 64 });
      const out = imageOut(await edit(input, 0));
      expect(Buffer.from(out).equals(Buffer.from(input.pixels))).toBe(true);
    });

    it(`is local: a crop's output equals the full image's output more than ${options.radius} px inside the crop`, async () => {
      // A 192x192 region of the face and a 128x128 crop of it at (40, 24), as a worker's tile.
      const full = await photo("astronaut.png", { left: 130, top: 50, width: 192, height: 192 });
      const crop: Crop = { left: 40, top: 24, width: 128, height: 128 };
      const tile: TiledImage = { height: 128, width: 128, rows: 1, pixels: cut(full.pixels, 192, crop) };
      const [fullOut, tileOut] = [imageOut(await edit(full, defaultStrength)), imageOut(await edit(tile, defaultStrength))];

      const r = options.radius;
      const interior: Crop = { left: r, top: r, width: 128 - 2 * r, height: 128 - 2 * r };
      const fromFull = cut(cut(fullOut, 192, crop), 128, interior);
      const fromTile = cut(tileOut, 128, interior);
      expect(compare(fromTile, fromFull).max).toBeLessThanOrEqual(options.localityTolerance);
      expect(compare(fromTile, fromFull).differing).toBeLessThan(fromTile.length / 1000 + 1);

      // The test can tell: at the crop's own border, the tile sees edge padding, not the photo.
      const border = compare(cut(tileOut, 128, { left: 0, top: 0, width: 128, height: 2 }), cut(cut(fullOut, 192, crop), 128, { left: 0, top: 0, width: 128, height: 2 }));
      expect(border.differing).toBeGreaterThan(0);
    });

    it("gives every row of a batched request, and concurrent requests, the bytes it gets alone", async () => {
      const crops = [
        await photo("astronaut.png", { left: 150, top: 60, width: 48, height: 48 }),
        await photo("chelsea.png", { left: 100, top: 100, width: 48, height: 48 }),
        await photo("coffee.png", { left: 250, top: 150, width: 48, height: 48 }),
      ];
      const alone: Uint8Array[] = [];
      for (const c of crops) alone.push(imageOut(await edit(c, defaultStrength)));

      const batched = imageOut(await edit(stack(crops), defaultStrength));
      crops.forEach((c, i) => {
        const row = batched.subarray(i * c.pixels.length, (i + 1) * c.pixels.length);
        expect(Buffer.from(row).equals(Buffer.from(alone[i]!))).toBe(true);
      });

      // Different strengths at once: the model must not mix requests of different strengths.
      const strengths = [defaultStrength, 1, defaultStrength / 2];
      const expected: Uint8Array[] = [];
      for (const [i, c] of crops.entries()) expected.push(imageOut(await edit(c, strengths[i]!)));
      const concurrent = await Promise.all(crops.map((c, i) => edit(c, strengths[i]!)));
      concurrent.forEach((result, i) => expect(Buffer.from(imageOut(result)).equals(Buffer.from(expected[i]!))).toBe(true));
    });

    it.each([
      { why: "above 1", strength: [1.5], details: /STRENGTH must be one value in \[0, 1\].*1\.5/ },
      { why: "below 0", strength: [-0.1], details: /STRENGTH must be one value in \[0, 1\]/ },
      { why: "not a number", strength: [Number.NaN], details: /STRENGTH must be one value in \[0, 1\]/ },
      { why: "different between rows", strength: [0.2, 0.4], details: /STRENGTH must be one value in \[0, 1\] for every row/ },
    ])("rejects a STRENGTH $why as INVALID_ARG, and keeps serving", async ({ strength, details }) => {
      const one = await photo("chelsea.png", { left: 50, top: 50, width: 16, height: 16 });
      const image = stack(strength.map(() => one));
      const error = await failure(edit(image, strength));
      expect(error.code).toBe("invalid_request");
      expect(error.wire?.code).toBe(3);
      expect(error.wire?.details).toMatch(details);

      expect(imageOut(await edit(one, defaultStrength)).length).toBe(16 * 16 * 3);
    });

    it("rejects wrong shapes as INVALID_ARG", async () => {
      const rgba = await failure(
        context.client.infer({
          model,
          inputs: [
            { name: "IMAGE", datatype: "UINT8", shape: [1, 8, 8, 4], data: new Uint8Array(256) },
            { name: "STRENGTH", datatype: "FP32", shape: [1, 1], data: Float32Array.of(0.5) },
          ],
        }),
      );
      expect(rgba.code).toBe("invalid_request");
      expect(rgba.wire?.code).toBe(3);

      const strengthRows = await failure(
        context.client.infer({
          model,
          inputs: [
            { name: "IMAGE", datatype: "UINT8", shape: [2, 8, 8, 3], data: new Uint8Array(384) },
            { name: "STRENGTH", datatype: "FP32", shape: [1, 1], data: Float32Array.of(0.5) },
          ],
        }),
      );
      expect(strengthRows.code).toBe("invalid_request");
      expect(strengthRows.wire?.code).toBe(3);

      const strengthType = await failure(
        context.client.infer({
          model,
          inputs: [
            { name: "IMAGE", datatype: "UINT8", shape: [1, 8, 8, 3], data: new Uint8Array(192) },
            { name: "STRENGTH", datatype: "UINT8", shape: [1, 1], data: Uint8Array.of(1) },
          ],
        }),
      );
      expect(strengthType.code).toBe("invalid_request");
      expect(strengthType.wire?.code).toBe(3);
    });
  });

  return context;
}
