/**
 * A look at an upload's header before it is accepted: an image whose header declares more
 * pixels than the workers will decode (a decompression bomb: a tiny file, an enormous pixel
 * count) is refused at once, with its size in the answer, instead of failing later in a worker;
 * so is one whose output, at the edit's scale, would be over the workers' output limit.
 */
import sharp from "sharp";
import { ApiError } from "./apiError.js";

export function createDimensionCheck(maxInputPixels: number, maxOutputPixels: number): (bytes: Buffer, outputScale: number) => Promise<void> {
  return async (bytes, outputScale) => {
    let width = 0;
    let height = 0;
    try {
      // Reads the header only; no limit here, since the point is to see the declared size.
      ({ width = 0, height = 0 } = await sharp(bytes, { limitInputPixels: false }).metadata());
    } catch {
      // Not decodable at all: the worker fails it with its own reason.
      return;
    }
    if (width * height > maxInputPixels) {
      throw new ApiError(
        "payload_too_large",
        `the image is ${width}×${height} (${((width * height) / 1e6).toFixed(1)} megapixels); the limit is ${(maxInputPixels / 1e6).toFixed(0)} megapixels`,
      );
    }
    const outputPixels = width * outputScale * height * outputScale;
    if (outputPixels > maxOutputPixels) {
      throw new ApiError(
        "payload_too_large",
        `scaling a ${width}×${height} image ${outputScale} times gives ${(outputPixels / 1e6).toFixed(0)} megapixels; the output limit is ${(maxOutputPixels / 1e6).toFixed(0)} megapixels`,
      );
    }
  };
}
