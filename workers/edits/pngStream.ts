/**
 * A streaming PNG encoder: 8-bit RGB or RGBA rows in, PNG bytes out, band by band. The whole
 * image never exists at once, so a 16384×16384 output costs the memory of a few bands, not of
 * the picture. Each row is filtered with Paeth (the best single filter for photos) on worker
 * threads, band by band (paethThreads.ts), and deflated by zlib on libuv's thread pool, while the
 * event loop goes on with the next band's tiles.
 */
import { once } from "node:events";
import { constants, crc32, createDeflate } from "node:zlib";
import { bufferPool } from "./bufferPool.js";
import { FILTER_THREADS, paethFilterBand, type FilteredBand } from "./paethThreads.js";
import { untimedStages, type StageTimer } from "../../events/stageTimer.js";

export interface PngHeader {
  width: number;
  height: number;
  /** 3: RGB, 4: RGBA. */
  channels: 3 | 4;
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** Bands handed to the filter threads before the oldest is waited for. */
const BANDS_FILTERING = FILTER_THREADS + 1;

export interface PngOptions {
  /** zlib level: 0 stores the rows uncompressed; 1 to 9 all deflate with Z_RLE (default 4). */
  level?: number;
  timeStage?: StageTimer;
  /**
   * The bands are the encoder's to take: each one that is a whole ArrayBuffer moves to a filter
   * thread uncopied, and is empty afterwards. Without it, every band is copied.
   */
  moveBands?: boolean;
}

/**
 * Encodes `bands` (whole rows, top to bottom, `width * channels` bytes each) into a PNG.
 * Throws if the bands do not add up to `height` rows; an error from `bands` ends the stream
 * with that error.
 */
export async function* encodePng(
  header: PngHeader,
  bands: AsyncIterable<Uint8Array>,
  { level = 4, timeStage = untimedStages, moveBands = false }: PngOptions = {},
): AsyncGenerator<Buffer> {
  const { width, height, channels } = header;
  const rowBytes = width * channels;
  yield SIGNATURE;
  yield chunk("IHDR", ihdr(header));

  // Z_RLE: the zlib manual's strategy for PNG image data. On upscaled photos, Paeth-filtered, it
  // gave a smaller file than the default strategy at level 4 in a third of the time, at any
  // level from 1 (docs/benchmarks.md, worker ceiling); the level then only turns compression off (0).
  const deflate = createDeflate({ level, memLevel: 9, strategy: constants.Z_RLE, chunkSize: 1 << 20 });
  const feeding = (async () => {
    let above: Uint8Array = new Uint8Array(rowBytes);
    let rows = 0;
    // Bands being filtered on the pool's threads, in order; each is written to the deflate when
    // it and every band above it are done.
    const filtering: Array<Promise<FilteredBand>> = [];
    const writeOldest = async () => {
      const { filtered, band, ms } = await (filtering.shift() as Promise<FilteredBand>);
      timeStage.add("filtering", ms);
      bufferPool.give(band);
      // zlib reads the rows in place; they go back to the pool once it has consumed them.
      if (!deflate.write(filtered, () => bufferPool.give(filtered))) await once(deflate, "drain");
    };
    for await (const band of bands) {
      if (band.length % rowBytes !== 0) throw new Error(`a band of ${band.length} bytes is not whole rows of ${rowBytes}`);
      const count = band.length / rowBytes;
      rows += count;
      if (rows > height) throw new Error(`the bands hold more than ${height} rows`);
      if (count === 0) continue;
      const last = band.slice(band.length - rowBytes);
      const next = paethFilterBand(moveBands ? band : band.slice(), above, rowBytes, channels);
      next.catch(() => {}); // observed when its turn to be written comes
      filtering.push(next);
      above = last;
      while (filtering.length >= BANDS_FILTERING) await writeOldest();
    }
    while (filtering.length > 0) await writeOldest();
    if (rows !== height) throw new Error(`the bands hold ${rows} rows, the header says ${height}`);
    deflate.end();
  })();
  feeding.catch((error: unknown) => deflate.destroy(error instanceof Error ? error : new Error(String(error))));

  for await (const data of deflate) yield chunk("IDAT", data as Buffer);
  await feeding;
  yield chunk("IEND", Buffer.alloc(0));
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
