/**
 * A streaming PNG encoder: 8-bit RGB or RGBA rows in, PNG bytes out, band by band. The whole
 * image never exists at once, so a 16384×16384 output costs the memory of a few bands, not of
 * the picture. Each row is filtered with Paeth (the best single filter for photos) and deflated
 * by zlib on the thread pool while the next band is being computed.
 */
import { once } from "node:events";
import { crc32, createDeflate } from "node:zlib";
import { untimedStages, type StageTimer } from "../../events/stageTimer.js";

export interface PngHeader {
  width: number;
  height: number;
  /** 3: RGB, 4: RGBA. */
  channels: 3 | 4;
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const PAETH = 4;

/**
 * Encodes `bands` (whole rows, top to bottom, `width * channels` bytes each) into a PNG.
 * Throws if the bands do not add up to `height` rows; an error from `bands` ends the stream
 * with that error.
 */
export async function* encodePng(
  header: PngHeader,
  bands: AsyncIterable<Uint8Array>,
  level = 4,
  timeStage: StageTimer = untimedStages,
): AsyncGenerator<Buffer> {
  const { width, height, channels } = header;
  const rowBytes = width * channels;
  yield SIGNATURE;
  yield chunk("IHDR", ihdr(header));

  const deflate = createDeflate({ level, memLevel: 9, chunkSize: 1 << 20 });
  const feeding = (async () => {
    let previous: Uint8Array = new Uint8Array(rowBytes);
    let rows = 0;
    for await (const band of bands) {
      if (band.length % rowBytes !== 0) throw new Error(`a band of ${band.length} bytes is not whole rows of ${rowBytes}`);
      const count = band.length / rowBytes;
      const filtered = Buffer.allocUnsafe(count * (rowBytes + 1));
      // Timed per band: the filter runs here, the deflate on zlib's thread while tiles go on.
      await timeStage("encode", async () => {
        for (let r = 0; r < count; r += 1) {
          const row = band.subarray(r * rowBytes, (r + 1) * rowBytes);
          paethFilter(row, previous, channels, filtered, r * (rowBytes + 1));
          previous = row;
        }
      });
      // `previous` must outlive the band it points into; keep a copy of the last row only.
      previous = Uint8Array.from(previous);
      rows += count;
      if (rows > height) throw new Error(`the bands hold more than ${height} rows`);
      if (!deflate.write(filtered)) await once(deflate, "drain");
    }
    if (rows !== height) throw new Error(`the bands hold ${rows} rows, the header says ${height}`);
    deflate.end();
  })();
  feeding.catch((error: unknown) => deflate.destroy(error instanceof Error ? error : new Error(String(error))));

  for await (const data of deflate) yield chunk("IDAT", data as Buffer);
  await feeding;
  yield chunk("IEND", Buffer.alloc(0));
}

function paethFilter(row: Uint8Array, above: Uint8Array, bpp: number, out: Buffer, at: number): void {
  out[at] = PAETH;
  const n = row.length;
  for (let i = 0; i < n; i += 1) {
    const a = i >= bpp ? (row[i - bpp] as number) : 0;
    const b = above[i] as number;
    const c = i >= bpp ? (above[i - bpp] as number) : 0;
    const p = a + b - c;
    const pa = Math.abs(p - a);
    const pb = Math.abs(p - b);
    const pc = Math.abs(p - c);
    const predictor = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    out[at + 1 + i] = ((row[i] as number) - predictor) & 0xff;
  }
}

function ihdr({ width, height, channels }: PngHeader): Buffer {
  const data = Buffer.alloc(13);
  data.writeUInt32BE(width, 0);
  data.writeUInt32BE(height, 4);
  data[8] = 8; // bit depth
  data[9] = channels === 4 ? 6 : 2; // colour type: RGBA or RGB
  data[10] = 0; // deflate
  data[11] = 0; // adaptive filtering, per-row filter byte
  data[12] = 0; // no interlace
  return data;
}

function chunk(type: string, data: Buffer): Buffer {
  const out = Buffer.allocUnsafe(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, "latin1");
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}
