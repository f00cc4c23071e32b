/**
 * The upscale edit: ESRGAN on Triton, tile by tile. Tiles go out as separate requests, several
 * in flight at once, so that Triton's dynamic batcher can put tiles of this and other jobs into
 * one batch; the cores of the upscaled tiles are stitched into the output and encoded as PNG.
 */
import sharp from "sharp";
import { EditError } from "../../events/errors.js";
import { InferenceError, type InferenceClient } from "../../events/inferencePort.js";
import type { EditParams } from "../../events/operations.js";
import { extractTile, placeTile, planTiles } from "../tiling.js";
import { decodeImage } from "./decodeImage.js";

export interface TiledEditOptions {
  inference: InferenceClient;
  model: string;
  tileSize: number;
  overlap: number;
  maxInFlight: number;
  timeoutMs: number;
  maxInputPixels: number;
  maxOutputPixels: number;
}

export interface EditResult {
  bytes: Buffer;
  contentType: string;
  width: number;
  height: number;
  /** Wall time spent with at least one inference call open. */
  inferenceMs: number;
  tiles: number;
}

export async function runUpscale(input: Buffer, params: EditParams, options: TiledEditOptions, signal?: AbortSignal): Promise<EditResult> {
  const scale = Number(params.scale ?? 4);
  const image = await decodeImage(input, options);
  const outWidth = image.width * scale;
  const outHeight = image.height * scale;
  if (outWidth * outHeight > options.maxOutputPixels) {
    throw new EditError(
      "image_too_large",
      `Upscaling ${image.width}×${image.height} by ${scale} gives ${((outWidth * outHeight) / 1e6).toFixed(0)} megapixels; the limit is ${(options.maxOutputPixels / 1e6).toFixed(0)}.`,
      false,
    );
  }
  const grid = planTiles(image.width, image.height, options.tileSize, options.overlap);
  const output = new Uint8Array(outWidth * outHeight * 3);
  const side = options.tileSize;
  const timer = busyTimer();

  await forEachConcurrently(grid.tiles, options.maxInFlight, async (tile) => {
    signal?.throwIfAborted();
    const pixels = extractTile(image.data, image.width, image.height, tile, grid);
    const stop = timer.start();
    try {
      const result = await options.inference.infer({
        model: options.model,
        inputs: [
          { name: "IMAGE", datatype: "UINT8", shape: [1, side, side, 3], data: pixels },
          { name: "SCALE", datatype: "UINT8", shape: [1, 1], data: Uint8Array.of(scale) },
        ],
        outputs: ["IMAGE_OUT"],
        timeoutMs: options.timeoutMs,
        ...(signal === undefined ? {} : { signal }),
      });
      const out = result.outputs.find((tensor) => tensor.name === "IMAGE_OUT");
      if (!out || !(out.data instanceof Uint8Array) || out.data.length !== side * scale * side * scale * 3) {
        throw new EditError("inference_failed", "The model returned an output of the wrong shape.", false);
      }
      placeTile(output, outWidth, out.data, tile, grid, scale);
    } catch (error) {
      throw toEditError(error);
    } finally {
      stop();
    }
  });

  const bytes = await sharp(output, { raw: { width: outWidth, height: outHeight, channels: 3 } })
    .png({ compressionLevel: 6 })
    .toBuffer();
  return { bytes, contentType: "image/png", width: outWidth, height: outHeight, inferenceMs: timer.total(), tiles: grid.tiles.length };
}

function toEditError(error: unknown): unknown {
  if (!(error instanceof InferenceError)) return error;
  if (error.code === "canceled") return error;
  return error.retryable
    ? new EditError("inference_unavailable", `The model server is unavailable (${error.code}); the edit will be retried.`, true)
    : new EditError("inference_failed", `The model could not process the image: ${error.message}`, false);
}

/** Runs `work` on every item with at most `limit` at once; the first failure stops new work. */
export async function forEachConcurrently<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (!failed && next < items.length) {
      const item = items[next] as T;
      next += 1;
      try {
        await work(item);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  });
  const results = await Promise.allSettled(lanes);
  const rejected = results.find((result): result is PromiseRejectedResult => result.status === "rejected");
  if (rejected) throw rejected.reason;
}

/** Measures the wall time during which at least one of several overlapping intervals is open. */
function busyTimer() {
  let open = 0;
  let since = 0;
  let total = 0;
  return {
    start() {
      if (open === 0) since = performance.now();
      open += 1;
      return () => {
        open -= 1;
        if (open === 0) total += performance.now() - since;
      };
    },
    total: () => Math.round(total),
  };
}

/** The tensors the worker sends to and reads from the upscale model, as the server reports them. */
export const UPSCALE_MODEL_CONTRACT = {
  inputs: [
    { name: "IMAGE", datatype: "UINT8", shape: [-1, -1, -1, 3] },
    { name: "SCALE", datatype: "UINT8", shape: [-1, 1] },
  ],
  outputs: [{ name: "IMAGE_OUT", datatype: "UINT8", shape: [-1, -1, -1, 3] }],
};
