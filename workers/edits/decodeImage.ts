/**
 * Decoding an upload into upright 8-bit sRGB pixels, with its alpha plane kept apart, and
 * refusing what we cannot edit with a reason a person can read. EXIF orientation is applied;
 * 16-bit images are reduced to 8 bits and CMYK or greyscale images converted to sRGB, and the
 * conversions are reported so the worker can log them.
 */
import sharp, { type Metadata } from "sharp";
import { EditError } from "../../events/errors.js";

export interface DecodedImage {
  /** Interleaved RGB, `width * height * 3` bytes. */
  rgb: Uint8Array;
  /** One byte per pixel, present when the upload has transparency. */
  alpha?: Uint8Array;
  width: number;
  height: number;
  /** What was changed to make the pixels 8-bit sRGB, e.g. "cmyk to srgb", "16-bit to 8-bit". */
  conversions: string[];
}

export interface DecodeLimits {
  maxInputPixels: number;
}

export async function decodeImage(bytes: Buffer, limits: DecodeLimits): Promise<DecodedImage> {
  let metadata: Metadata;
  try {
    // Only the header is read here; libvips' own pixel limit would refuse a decompression bomb
    // as unreadable, where the check below can say how large it is.
    metadata = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch {
    throw new EditError("unsupported_image", "The file is not an image we can read (JPEG, PNG, WebP or AVIF).", false);
  }
  if (metadata.format === "heif" && metadata.compression === "hevc") {
    // sharp's libvips reads a HEIC header but has no HEVC decoder (docs/api.md, "Phone formats").
    throw new EditError("unsupported_image", "HEIC/HEIF photos cannot be decoded here; send a JPEG, PNG, WebP or AVIF instead.", false);
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
  const conversions: string[] = [];
  if (metadata.space === "cmyk") conversions.push("cmyk to srgb");
  else if (metadata.space === "b-w" || metadata.space === "grey16") conversions.push("greyscale to srgb");
  if (metadata.depth === "ushort" || metadata.space === "rgb16" || metadata.space === "grey16") conversions.push("16-bit to 8-bit");
  if ((metadata.orientation ?? 1) > 1) conversions.push(`exif orientation ${metadata.orientation} applied`);

  try {
    const upright = sharp(bytes, { limitInputPixels: limits.maxInputPixels, failOn: "error" })
      .rotate() // upright, as the EXIF orientation says
      .toColourspace("srgb");
    const hasAlpha = metadata.hasAlpha === true;
    const { data, info } = await (hasAlpha ? upright.ensureAlpha() : upright.removeAlpha())
      .raw({ depth: "uchar" })
      .toBuffer({ resolveWithObject: true });
    const width = info.width;
    const height = info.height;
    if (!hasAlpha) return { rgb: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width, height, conversions };
    const rgb = new Uint8Array(width * height * 3);
    const alpha = new Uint8Array(width * height);
    let opaque = true;
    for (let i = 0; i < width * height; i += 1) {
      rgb[i * 3] = data[i * 4] as number;
      rgb[i * 3 + 1] = data[i * 4 + 1] as number;
      rgb[i * 3 + 2] = data[i * 4 + 2] as number;
      const a = data[i * 4 + 3] as number;
      alpha[i] = a;
      if (a !== 255) opaque = false;
    }
    // An alpha channel with nothing transparent in it is dropped: the output stays plain RGB.
    return opaque ? { rgb, width, height, conversions } : { rgb, alpha, width, height, conversions };
  } catch (error) {
    throw new EditError("unsupported_image", `The image could not be decoded: ${(error as Error).message}.`, false);
  }
}
