/**
 * A streaming baseline JPEG encoder made of libjpeg (through sharp) and restart markers. The rows
 * are cut into strips whose height is a whole number of 16-row MCU rows; each strip is encoded
 * by sharp on libuv's thread pool as a JPEG of its own, with the standard Huffman tables and the
 * same quality, so every strip has the same tables. The file is the first strip's header, with
 * the whole height and a restart interval of one strip, then each strip's entropy-coded data
 * separated by RST markers: a restart resets the DC predictors exactly as a fresh encode starts
 * them, so the result decodes to the same pixels as one encode of the whole image, while memory
 * holds one strip and the encoded bytes leave as soon as each strip is done.
 */
import sharp from "sharp";

export interface JpegHeader {
  width: number;
  height: number;
}

export interface JpegOptions {
  /** 1 to 100. */
  quality: number;
  /** Rows per strip, rounded down to a multiple of 16 (default: 256, or fewer where a strip would pass 65535 MCUs). */
  stripRows?: number;
}

const MCU_SIDE = 16; // 4:2:0 chroma subsampling: one MCU covers 16×16 pixels

/** The rows of one strip, given the image's width: a multiple of 16 whose MCUs fit a restart interval. */
export function stripRowsFor(width: number, wanted = 256): number {
  const mcusPerRow = Math.ceil(width / MCU_SIDE);
  const byInterval = Math.floor(0xffff / mcusPerRow) * MCU_SIDE;
  return Math.max(MCU_SIDE, Math.min(Math.floor(wanted / MCU_SIDE) * MCU_SIDE, byInterval));
}

/**
 * Encodes `bands` (whole rows of 8-bit RGB, top to bottom) into a JPEG. Throws if the bands do
 * not add up to `height` rows; an error from `bands` ends the stream with it.
 */
export async function* encodeJpeg(header: JpegHeader, bands: AsyncIterable<Uint8Array>, options: JpegOptions): AsyncGenerator<Buffer> {
  const { width, height } = header;
  const rowBytes = width * 3;
  const stripRows = stripRowsFor(width, options.stripRows);
  const interval = Math.ceil(width / MCU_SIDE) * (stripRows / MCU_SIDE);

  let strip = Buffer.allocUnsafe(Math.min(stripRows, height) * rowBytes);
  let filled = 0;
  let rows = 0;
  let index = 0;
  let tables: Buffer | undefined;

  const encodeStrip = async (pixels: Buffer, stripHeight: number): Promise<Buffer> => {
    return sharp(pixels, { raw: { width, height: stripHeight, channels: 3 } })
      .jpeg({
        quality: options.quality,
        chromaSubsampling: "4:2:0",
        optimiseCoding: false,
        progressive: false,
        mozjpeg: false,
        trellisQuantisation: false,
        overshootDeringing: false,
        optimiseScans: false,
      })
      .toBuffer();
  };

  function* piece(jpeg: Buffer): Generator<Buffer> {
    const parts = splitJpeg(jpeg);
    if (index === 0) {
      tables = parts.tables;
      yield Buffer.from([0xff, 0xd8]);
      yield withHeight(parts.beforeScan, height);
      yield Buffer.from([0xff, 0xdd, 0x00, 0x04, interval >> 8, interval & 0xff]);
      yield parts.scanHeader;
    } else {
      if (!tables?.equals(parts.tables)) throw new Error("a JPEG strip was encoded with different tables than the first");
      yield Buffer.from([0xff, 0xd0 + ((index - 1) % 8)]);
    }
    yield parts.entropy;
    index += 1;
  }

  for await (const band of bands) {
    if (band.length % rowBytes !== 0) throw new Error(`a band of ${band.length} bytes is not whole rows of ${rowBytes}`);
    rows += band.length / rowBytes;
    if (rows > height) throw new Error(`the bands hold more than ${height} rows`);
    let offset = 0;
    while (offset < band.length) {
      const take = Math.min(band.length - offset, strip.length - filled);
      strip.set(band.subarray(offset, offset + take), filled);
      filled += take;
      offset += take;
      if (filled === strip.length) {
        yield* piece(await encodeStrip(strip, strip.length / rowBytes));
        const left = height - rows + (band.length - offset) / rowBytes;
        strip = Buffer.allocUnsafe(Math.min(stripRows, left) * rowBytes);
        filled = 0;
      }
    }
  }
  if (rows !== height) throw new Error(`the bands hold ${rows} rows, the header says ${height}`);
  yield Buffer.from([0xff, 0xd9]);
}

interface JpegParts {
  /** The marker segments between SOI and SOS (APPn, DQT, SOF0, DHT). */
  beforeScan: Buffer;
  /** DQT and DHT segments, which every strip must share. */
  tables: Buffer;
  /** The SOS segment. */
  scanHeader: Buffer;
  /** The entropy-coded data, up to the EOI. */
  entropy: Buffer;
}

/** Cuts a baseline JPEG from libjpeg into its header segments, scan header and entropy-coded data. */
function splitJpeg(jpeg: Buffer): JpegParts {
  if (jpeg[0] !== 0xff || jpeg[1] !== 0xd8) throw new Error("the strip is not a JPEG");
  let offset = 2;
  const tables: Buffer[] = [];
  for (;;) {
    if (jpeg[offset] !== 0xff) throw new Error(`no JPEG marker at ${offset}`);
    const marker = jpeg[offset + 1] as number;
    const length = jpeg.readUInt16BE(offset + 2);
    const segment = jpeg.subarray(offset, offset + 2 + length);
    if (marker === 0xda) {
      const end = jpeg.length - 2;
      if (jpeg[end] !== 0xff || jpeg[end + 1] !== 0xd9) throw new Error("the strip does not end with EOI");
      return { beforeScan: jpeg.subarray(2, offset), tables: Buffer.concat(tables), scanHeader: segment, entropy: jpeg.subarray(offset + 2 + length, end) };
    }
    if (marker === 0xc2 || marker === 0xdd) throw new Error("the strip is progressive or already has restarts");
    if (marker === 0xdb || marker === 0xc4) tables.push(segment);
    offset += 2 + length;
  }
}

/** The header segments with the SOF0 frame's height set to `height`. */
function withHeight(beforeScan: Buffer, height: number): Buffer {
  const copy = Buffer.from(beforeScan);
  let offset = 0;
  while (offset < copy.length) {
    const marker = copy[offset + 1] as number;
    const length = copy.readUInt16BE(offset + 2);
    if (marker === 0xc0) {
      copy.writeUInt16BE(height, offset + 5);
      return copy;
    }
    offset += 2 + length;
  }
  throw new Error("the strip has no baseline SOF0 frame");
}
