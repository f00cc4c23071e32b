import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { bufferPool } from "../../workers/edits/bufferPool.js";
import { encodePng } from "../../workers/edits/pngStream.js";
import { noise } from "../support/noise.js";


async function* inBands(pixels: Uint8Array, rowBytes: number, rowsPerBand: number): AsyncGenerator<Uint8Array> {
  for (let top = 0; top * rowBytes < pixels.length; top += rowsPerBand) {
    yield pixels.subarray(top * rowBytes, Math.min(pixels.length, (top + rowsPerBand) * rowBytes));
  }
}

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return Buffer.concat(parts);
}

describe("streaming PNG encoder", () => {
  it.each([
    [3, 37, 29, 5],
    [4, 64, 48, 48],
    [3, 1, 1, 1],
    [4, 300, 7, 3],
    // More bands than the filter threads take at once: bands finish out of order, are written in order.
    [3, 517, 97, 8],
  ] as const)("encodes %i-channel %i×%i pixels given in bands of %i rows losslessly", async (channels, width, height, rows) => {
    const pixels = noise(width * height * channels, width * 7 + height);
    const png = await collect(encodePng({ width, height, channels }, inBands(pixels, width * channels, rows)));
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([width, height, channels]);
    expect(Buffer.from(data).equals(Buffer.from(pixels))).toBe(true);
  });

  it("encodes bands it may take (moved to its threads, not copied) losslessly", async () => {
    const [width, height, rows] = [203, 61, 9];
    const pixels = noise(width * height * 3, 11);
    async function* ownBands(): AsyncGenerator<Uint8Array> {
      for await (const band of inBands(pixels, width * 3, rows)) yield band.slice();
    }
    const png = await collect(encodePng({ width, height, channels: 3 }, ownBands(), { moveBands: true }));
    const { data } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    expect(Buffer.from(data).equals(Buffer.from(pixels))).toBe(true);
  });

  it("encodes image after image of one size losslessly, with the buffers the one before gave back", async () => {
    const [width, height, rows] = [157, 40, 8];
    for (const seed of [21, 22, 23]) {
      const pixels = noise(width * height * 3, seed);
      async function* pooledBands(): AsyncGenerator<Uint8Array> {
        for await (const band of inBands(pixels, width * 3, rows)) {
          const own = bufferPool.take(band.length);
          own.set(band);
          yield own;
        }
      }
      const png = await collect(encodePng({ width, height, channels: 3 }, pooledBands(), { moveBands: true }));
      const { data } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
      expect(Buffer.from(data).equals(Buffer.from(pixels))).toBe(true);
    }
    // The bands and their filtered rows came back to be used again.
    expect(bufferPool.freeBytes()).toBeGreaterThanOrEqual(width * 3 * rows);
  });

  it("refuses bands that do not add up to the declared height", async () => {
    const pixels = noise(10 * 4 * 3, 1);
    await expect(collect(encodePng({ width: 10, height: 5, channels: 3 }, inBands(pixels, 30, 2)))).rejects.toThrow(/4 rows, the header says 5/);
  });

  it("ends with the error of the bands' source", async () => {
    async function* broken(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array(30);
      throw new Error("the model server went away");
    }
    await expect(collect(encodePng({ width: 10, height: 5, channels: 3 }, broken()))).rejects.toThrow("the model server went away");
  });
});
