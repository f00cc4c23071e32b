/**
 * The result's bytes in the format the person asked for. PNG and JPEG are streamed band by band
 * (pngStream.ts, jpegStream.ts), so memory holds a few bands whatever the size. WebP cannot be:
 * libwebp encodes a whole picture at once, so a WebP result is gathered whole and is limited to
 * `maxWebpPixels` (checked before any model runs, by `checkOutputSize`) and to WebP's own
 * 16383-pixel side. Transparency is flattened onto the background colour for JPEG (white unless
 * asked otherwise) and for any format given `output.background`.
 */
import sharp from "sharp";
import { EditError } from "../../events/errors.js";
import { CONTENT_TYPES, DEFAULT_QUALITY, flattenColour, type OutputFormat } from "../../events/outputFormat.js";
import { untimedStages, type StageTimer } from "../../events/stageTimer.js";
import { encodeJpeg } from "./jpegStream.js";
import { encodePng } from "./pngStream.js";

export interface RasterHeader {
  width: number;
  height: number;
  channels: 3 | 4;
}

export interface EncodeOptions {
  timeStage?: StageTimer;
  /** zlib level of a PNG (pngStream.ts). */
  pngLevel?: number;
  /** The bands are the encoder's to take (PngOptions.moveBands). */
  moveBands?: boolean;
}

/** WebP's largest side (libwebp's limit). */
export const WEBP_MAX_SIDE = 16383;

/** Refuses, before the edit runs, a result the asked format cannot hold within the limits. */
export function checkOutputSize(width: number, height: number, output: OutputFormat, maxWebpPixels: number): void {
  if (output.format !== "webp") return;
  if (width > WEBP_MAX_SIDE || height > WEBP_MAX_SIDE || width * height > maxWebpPixels) {
    throw new EditError(
      "image_too_large",
      `The result would be ${width}×${height}; a WebP result may be at most ${(maxWebpPixels / 1e6).toFixed(0)} megapixels and ${WEBP_MAX_SIDE} pixels a side, because WebP is encoded whole. Ask for PNG or JPEG, which have no such limit.`,
      false,
    );
  }
}

export function encodeOutput(
  header: RasterHeader,
  bands: AsyncIterable<Uint8Array>,
  output: OutputFormat,
  options: EncodeOptions = {},
): { contentType: string; channels: 3 | 4; body: AsyncIterable<Buffer> } {
  const timeStage = options.timeStage ?? untimedStages;
  const colour = flattenColour(output);
  const flat = colour !== undefined && header.channels === 4;
  const channels = flat ? 3 : header.channels;
  const rows = flat ? flattenBands(bands, colour) : bands;
  const { width, height } = header;
  const quality = output.quality ?? DEFAULT_QUALITY;
  const contentType = CONTENT_TYPES[output.format];
  switch (output.format) {
    case "png":
      return {
        contentType,
        channels,
        body: encodePng({ width, height, channels }, rows, {
          timeStage,
          moveBands: flat || options.moveBands === true,
          ...(options.pngLevel === undefined ? {} : { level: options.pngLevel }),
        }),
      };
    case "jpeg":
      if (channels !== 3) throw new Error("a JPEG result must be flattened to RGB");
      return { contentType, channels, body: encodeJpeg({ width, height }, rows, { quality }) };
    case "webp":
      return { contentType, channels, body: encodeWebp({ width, height, channels }, rows, quality) };
    default: {
      const never: never = output.format;
      throw new Error(`unknown format ${String(never)}`);
    }
  }
}

/** Gathers the rows and encodes them with libwebp, which has no streaming API. */
async function* encodeWebp(header: RasterHeader, bands: AsyncIterable<Uint8Array>, quality: number): AsyncGenerator<Buffer> {
  const { width, height, channels } = header;
  const pixels = Buffer.allocUnsafe(width * height * channels);
  let filled = 0;
  for await (const band of bands) {
    if (filled + band.length > pixels.length) throw new Error(`the bands hold more than ${height} rows`);
    pixels.set(band, filled);
    filled += band.length;
  }
  if (filled !== pixels.length) throw new Error(`the bands hold ${filled / (width * channels)} rows, the header says ${height}`);
  yield await sharp(pixels, { raw: { width, height, channels } }).webp({ quality, alphaQuality: 100, effort: 2 }).toBuffer();
}

/** RGBA rows laid on an opaque colour: RGB rows. */
async function* flattenBands(bands: AsyncIterable<Uint8Array>, [r, g, b]: [number, number, number]): AsyncGenerator<Uint8Array> {
  for await (const band of bands) {
    const pixels = band.length / 4;
    const out = new Uint8Array(pixels * 3);
    for (let i = 0; i < pixels; i += 1) {
      const a = band[i * 4 + 3] as number;
      const keep = 255 - a;
      out[i * 3] = ((band[i * 4] as number) * a + r * keep + 127) / 255;
      out[i * 3 + 1] = ((band[i * 4 + 1] as number) * a + g * keep + 127) / 255;
      out[i * 3 + 2] = ((band[i * 4 + 2] as number) * a + b * keep + 127) / 255;
    }
    yield out;
  }
}
