/**
 * Background removal: ISNet sees the whole photo at once (a segmentation needs the whole
 * subject), so the photo is resized to the model's fixed 1024×1024 input, the mask comes back
 * at that size and is scaled to the photo's size, where it becomes the alpha channel. Every
 * request has one shape, so Triton batches the photos of concurrent jobs.
 */
import sharp from "sharp";
import { EditError } from "../../events/errors.js";
import type { InferenceClient } from "../../events/inferenceClient.js";
import type { DecodedImage } from "./decodeImage.js";
import { busyTimer, type BandStream } from "./tiledEdit.js";
import { untimedStages, type StageTimer } from "../../events/stageTimer.js";

export const MASK_SIDE = 1024;
const BAND_ROWS = 256;

export interface MaskOptions {
  inference: InferenceClient;
  model: string;
  timeoutMs: number;
  onProgress?: (tilesDone: number, tilesTotal: number) => void;
  signal?: AbortSignal;
  timeStage?: StageTimer;
}

export function runMasked(image: DecodedImage, options: MaskOptions): BandStream {
  const { width, height } = image;
  const timer = busyTimer();

  async function* produce(): AsyncGenerator<Uint8Array> {
    const small = await sharp(image.rgb, { raw: { width, height, channels: 3 } })
      .resize(MASK_SIDE, MASK_SIDE, { fit: "fill", kernel: "lanczos3" })
      .raw()
      .toBuffer();
    options.signal?.throwIfAborted();
    const stop = timer.start();
    let maskSmall: Uint8Array;
    try {
      const result = await (options.timeStage ?? untimedStages)("inference", () => options.inference.infer({
        model: options.model,
        inputs: [{ name: "IMAGE", datatype: "UINT8", shape: [1, MASK_SIDE, MASK_SIDE, 3], data: new Uint8Array(small) }],
        outputs: ["MASK"],
        timeoutMs: options.timeoutMs,
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      }));
      const out = result.outputs.find((tensor) => tensor.name === "MASK");
      if (!out || !(out.data instanceof Uint8Array) || out.data.length !== MASK_SIDE * MASK_SIDE) {
        throw new EditError("inference_failed", "The model returned a mask of the wrong shape.", false);
      }
      maskSmall = out.data;
    } finally {
      stop();
    }
    options.onProgress?.(1, 1);
    const mask = await sharp(maskSmall, { raw: { width: MASK_SIDE, height: MASK_SIDE, channels: 1 } })
      .resize(width, height, { fit: "fill", kernel: "cubic" })
      .extractChannel(0)
      .raw()
      .toBuffer();
    for (let top = 0; top < height; top += BAND_ROWS) {
      const rows = Math.min(BAND_ROWS, height - top);
      const band = new Uint8Array(width * rows * 4);
      for (let i = 0; i < width * rows; i += 1) {
        const p = top * width + i;
        band[i * 4] = image.rgb[p * 3] as number;
        band[i * 4 + 1] = image.rgb[p * 3 + 1] as number;
        band[i * 4 + 2] = image.rgb[p * 3 + 2] as number;
        const a = mask[p] as number;
        // A photo that was already partly transparent stays so where the mask keeps it.
        band[i * 4 + 3] = image.alpha ? Math.round((a * (image.alpha[p] as number)) / 255) : a;
      }
      yield band;
    }
  }

  return { width, height, channels: 4, tiles: 1, bands: produce(), inferenceMs: timer.total };
}
