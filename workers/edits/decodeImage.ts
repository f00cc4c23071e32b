/**
 * Decoding an upload into upright 8-bit sRGB pixels, refusing what we cannot edit with a reason
 * a person can read.
 */
import sharp, { type Metadata } from "sharp";
import { EditError } from "../../events/errors.js";

export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

export interface DecodeLimits {
  maxInputPixels: number;
}

export async function decodeImage(bytes: Buffer, limits: DecodeLimits): Promise<RgbImage> {
  let metadata: Metadata;
  try {
    metadata = await sharp(bytes).metadata();
  } catch {
    throw new EditError("unsupported_image", "The file is not an image we can read (JPEG, PNG or WebP).", false);
  }
  if ((metadata.pages ?? 1) > 1) {
    throw new EditError("unsupported_image", "Animated images are not supported; upload a single frame.", false);
  }
  const pixels = (metadata.width ?? 0) * (metadata.height ?? 0);
  if (pixels > limits.maxInputPixels) {
    throw new EditError(
      "image_too_large",
      `The image is ${metadata.width}×${metadata.height} (${(pixels / 1e6).toFixed(1)} megapixels); the limit is ${(limits.maxInputPixels / 1e6).toFixed(0)} megapixels.`,
      false,
    );
  }
  try {
    const { data, info } = await sharp(bytes, { limitInputPixels: limits.maxInputPixels, failOn: "error" })
      .rotate() // upright, as the EXIF orientation says
      .toColourspace("srgb")
      .removeAlpha()
      .raw({ depth: "uchar" })
      .toBuffer({ resolveWithObject: true });
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
  } catch (error) {
    throw new EditError("unsupported_image", `The image could not be decoded: ${(error as Error).message}.`, false);
  }
}
