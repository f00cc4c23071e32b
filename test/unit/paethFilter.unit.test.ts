import { describe, expect, it } from "vitest";
import { paethRowsJs } from "../../workers/edits/paethFilter.js";
import { paethRowsWasm } from "../../workers/edits/paethWasm.js";
import { noise } from "../support/noise.js";


/** Pixels like a photo's: a smooth ramp with a little noise, so a, b and c all win somewhere. */
function photoLike(length: number, seed: number): Uint8Array {
  const jitter = noise(length, seed);
  return Uint8Array.from(jitter, (value, i) => ((i * 7) % 256) + (value % 9) - 4);
}

function filterBoth(band: Uint8Array, above: Uint8Array, rowBytes: number, bpp: number, wasm = paethRowsWasm()) {
  const size = band.length + band.length / rowBytes;
  const expected = new Uint8Array(size);
  paethRowsJs(band, above, rowBytes, bpp, expected);
  // The output buffer's old contents must not show through.
  const actual = noise(size, 99);
  wasm(band, above, rowBytes, bpp, actual);
  return { expected: Buffer.from(expected), actual: Buffer.from(actual) };
}

describe("the WebAssembly Paeth filter", () => {
  it.each([
    // [bpp, width, rows]: width 1, widths below, at and around one vector, odd widths, a wide row.
    [3, 1, 1],
    [4, 1, 5],
    [3, 2, 3],
    [3, 5, 4],
    [4, 4, 4],
    [3, 6, 2],
    [3, 11, 3],
    [4, 13, 7],
    [3, 37, 29],
    [4, 300, 7],
    [3, 517, 9],
    [3, 2048, 3],
  ] as const)("matches the JavaScript filter byte for byte: %i bytes a pixel, %i pixels wide, %i rows", (bpp, width, rows) => {
    const rowBytes = width * bpp;
    for (const seed of [1, 2, 3]) {
      const band = seed === 3 ? photoLike(rowBytes * rows, seed) : noise(rowBytes * rows, seed);
      // The image's first row (zeros above) and a band further down (a real row above).
      for (const above of [new Uint8Array(rowBytes), noise(rowBytes, seed + 10)]) {
        const { expected, actual } = filterBoth(band, above, rowBytes, bpp);
        expect(actual.equals(expected)).toBe(true);
      }
    }
  });

  it("matches it on extremes, where a, b and c tie or are 255 apart", () => {
    const [bpp, width, rows] = [3, 64, 6];
    const rowBytes = width * bpp;
    const levels = [0, 255, 128, 1, 254];
    const band = Uint8Array.from({ length: rowBytes * rows }, (_, i) => levels[(i * 31 + (i >> 5)) % levels.length] as number);
    const above = Uint8Array.from({ length: rowBytes }, (_, i) => levels[(i * 17) % levels.length] as number);
    const { expected, actual } = filterBoth(band, above, rowBytes, bpp);
    expect(actual.equals(expected)).toBe(true);
  });

  it("filters a band of more rows than fit in its memory at once, and band after band of different widths", () => {
    const wasm = paethRowsWasm();
    // 3 × 700 000 bytes a row: one row per chunk; then a narrow band, then one of many chunks.
    for (const [bpp, width, rows] of [
      [3, 700_000, 3],
      [4, 9, 4],
      [3, 4096, 300],
    ] as const) {
      const rowBytes = width * bpp;
      const { expected, actual } = filterBoth(noise(rowBytes * rows, width), noise(rowBytes, rows), rowBytes, bpp, wasm);
      expect(actual.equals(expected)).toBe(true);
    }
  });

  it("writes each row's filter type byte, 4 (Paeth)", () => {
    const [bpp, width, rows] = [3, 20, 4];
    const out = new Uint8Array(rows * (width * bpp + 1));
    paethRowsWasm()(noise(width * bpp * rows, 5), new Uint8Array(width * bpp), width * bpp, bpp, out);
    expect(Array.from({ length: rows }, (_, r) => out[r * (width * bpp + 1)])).toEqual([4, 4, 4, 4]);
  });
});
