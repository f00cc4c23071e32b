/**
 * One edit from uploaded bytes to a stream of the result in its format (PNG, JPEG or WebP):
 * decode, check the size limits, run the edit's model (tiled, or on the whole image), and encode
 * (encodeOutput.ts). Nothing runs until the
 * returned `body` is read, which the upload does; an error in the edit ends `body` with it.
 */
import { EditError } from "../../events/errors.js";
import type { InferenceClient } from "../../events/inferenceClient.js";
import { OPERATION_SPECS, type EditParams, type Operation } from "../../events/operations.js";
import { runMasked } from "./backgroundEdit.js";
import { decodeImage } from "./decodeImage.js";
import { editModel } from "./editModels.js";
import { checkOutputSize, encodeOutput } from "./encodeOutput.js";
import { DEFAULT_OUTPUT_FORMAT, type OutputFormat } from "../../events/outputFormat.js";
import { runTiled, type BandStream } from "./tiledEdit.js";
import { untimedStages, type StageTimer } from "../../events/stageTimer.js";

export interface EditOptions {
  inference: InferenceClient;
  tileSize: number;
  overlap: number;
  maxInFlight: number;
  timeoutMs: number;
  maxInputPixels: number;
  maxOutputPixels: number;
  /** The result's format; absent, PNG. */
  output?: OutputFormat;
  /** The most pixels a WebP result may have (it is encoded whole; encodeOutput.ts); default 40 million. */
  maxWebpPixels?: number;
  /** zlib level of the PNG output: 0 stores it uncompressed; 1 to 9 deflate with Z_RLE alike (pngStream.ts). */
  pngLevel?: number;
  onProgress?: (tilesDone: number, tilesTotal: number) => void;
  signal?: AbortSignal;
  /** Times decode, inference (from the first tile sent to the last one back) and encode. */
  timeStage?: StageTimer;
}

export interface EditOutput {
  contentType: string;
  width: number;
  height: number;
  tiles: number;
  /** What decoding changed to get 8-bit sRGB (for the log). */
  conversions: string[];
  body: AsyncIterable<Buffer>;
  /** Wall time with at least one inference call open, so far. */
  inferenceMs(): number;
}

export async function runEdit(input: Buffer, operation: Operation, params: EditParams, options: EditOptions): Promise<EditOutput> {
  const timeStage = options.timeStage ?? untimedStages;
  const image = await timeStage("decode", () => decodeImage(input, options));
  const spec = OPERATION_SPECS[operation];
  const scale = spec.outputScale(params);
  const outPixels = image.width * scale * image.height * scale;
  if (outPixels > options.maxOutputPixels) {
    throw new EditError(
      "image_too_large",
      `${spec.title} of a ${image.width}×${image.height} image gives ${(outPixels / 1e6).toFixed(0)} megapixels; the limit is ${(options.maxOutputPixels / 1e6).toFixed(0)}.`,
      false,
    );
  }
  const output = options.output ?? DEFAULT_OUTPUT_FORMAT;
  checkOutputSize(image.width * scale, image.height * scale, output, options.maxWebpPixels ?? 40_000_000);
  const model = editModel(operation, params);
  const optional = {
    timeStage,
    ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  };
  const stream: BandStream =
    model.kind === "mask"
      ? runMasked(image, { inference: options.inference, model: model.model, timeoutMs: options.timeoutMs, ...optional })
      : runTiled(image, model, {
          inference: options.inference,
          tileSize: options.tileSize,
          overlap: options.overlap,
          maxInFlight: options.maxInFlight,
          timeoutMs: options.timeoutMs,
          ...optional,
        });
  // The bands are made for the encoder alone: it may move them to its threads uncopied.
  const encoded = encodeOutput({ width: stream.width, height: stream.height, channels: stream.channels }, stream.bands, output, {
    timeStage,
    moveBands: true,
    ...(options.pngLevel === undefined ? {} : { pngLevel: options.pngLevel }),
  });
  return {
    contentType: encoded.contentType,
    width: stream.width,
    height: stream.height,
    tiles: stream.tiles,
    conversions: image.conversions,
    body: encoded.body,
    inferenceMs: stream.inferenceMs,
  };
}
