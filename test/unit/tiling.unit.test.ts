import { describe, expect, it } from "vitest";
import { extractTile, placeTile, planTiles, scaleAlphaRows, tileBands, withAlpha } from "../../workers/tiling.js";

/** Nearest-neighbour upscaling: a stand-in "model" whose exact output is known anywhere. */
function nearest(rgb: Uint8Array, width: number, height: number, scale: number): Uint8Array {
  const out = new Uint8Array(width * scale * height * scale * 3);
  for (let y = 0; y < height * scale; y += 1) {
    for (let x = 0; x < width * scale; x += 1) {
      const from = (Math.floor(y / scale) * width + Math.floor(x / scale)) * 3;
      out.set(rgb.subarray(from, from + 3), (y * width * scale + x) * 3);
    }
  }
  return out;
}

function randomImage(width: number, height: number, seed: number): Uint8Array {
  const data = new Uint8Array(width * height * 3);
  let state = seed;
  for (let i = 0; i < data.length; i += 1) {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    data[i] = state & 0xff;
  }
  return data;
}

describe("tiling", () => {
  it.each([
    [37, 23, 16, 3, 2],
    [100, 64, 32, 4, 4],
    [15, 15, 32, 6, 4],
    [129, 1, 24, 5, 2],
  ])("covers a %i×%i image with %i px tiles (overlap %i) and stitches a ×%i result exactly", (width, height, tileSize, overlap, scale) => {
    const image = randomImage(width, height, width * 31 + height);
    const grid = planTiles(width, height, tileSize, overlap);
    const output = new Uint8Array(width * scale * height * scale * 3);
    for (const tile of grid.tiles) {
      const pixels = extractTile(image, width, height, tile, grid);
      expect(pixels.length).toBe(tileSize * tileSize * 3);
      placeTile(output, width * scale, nearest(pixels, tileSize, tileSize, scale), tile, grid, scale);
    }
    expect(Buffer.from(output).equals(Buffer.from(nearest(image, width, height, scale)))).toBe(true);
  });

  it("repeats the edge pixels where a tile reaches past the image", () => {
    const image = Uint8Array.from([10, 20, 30, 40, 50, 60]); // 2×1 pixels
    const grid = planTiles(2, 1, 4, 1);
    const tile = extractTile(image, 2, 1, grid.tiles[0]!, grid);
    expect(Array.from(tile.subarray(0, 12))).toEqual([10, 20, 30, 10, 20, 30, 40, 50, 60, 40, 50, 60]);
    expect(Array.from(tile.subarray(12, 24))).toEqual(Array.from(tile.subarray(0, 12)));
  });

  it("refuses an overlap that leaves no core", () => {
    expect(() => planTiles(10, 10, 8, 4)).toThrow(/no core/);
  });

  it("stitches band by band into the same output as the whole image", () => {
    const [width, height, tileSize, overlap, scale] = [70, 45, 20, 4, 2];
    const image = randomImage(width, height, 5);
    const grid = planTiles(width, height, tileSize, overlap);
    const bands = tileBands(grid);
    expect(bands.flat()).toEqual(grid.tiles);
    expect(bands.every((band) => band.every((tile) => tile.y === band[0]!.y))).toBe(true);
    const parts: Uint8Array[] = [];
    for (const band of bands) {
      const top = band[0]!.y * scale;
      const buffer = new Uint8Array(width * scale * band[0]!.height * scale * 3);
      for (const tile of band) placeTile(buffer, width * scale, nearest(extractTile(image, width, height, tile, grid), tileSize, tileSize, scale), tile, grid, scale, top);
      parts.push(buffer);
    }
    expect(Buffer.concat(parts).equals(Buffer.from(nearest(image, width, height, scale)))).toBe(true);
  });

  it("scales an alpha plane bilinearly, any band of rows alone", () => {
    // 2×2: opaque left column, transparent right column.
    const alpha = Uint8Array.from([255, 0, 255, 0]);
    const whole = scaleAlphaRows(alpha, 2, 2, 4, 0, 8);
    expect(Array.from(whole.subarray(0, 8))).toEqual([255, 255, 223, 159, 96, 32, 0, 0]);
    expect(Array.from(scaleAlphaRows(alpha, 2, 2, 4, 3, 2))).toEqual(Array.from(whole.subarray(24, 40)));
    expect(Array.from(scaleAlphaRows(alpha, 2, 2, 1, 1, 1))).toEqual([255, 0]);
  });

  it("interleaves RGB and alpha into RGBA", () => {
    expect(Array.from(withAlpha(Uint8Array.from([1, 2, 3, 4, 5, 6]), Uint8Array.from([7, 8])))).toEqual([1, 2, 3, 7, 4, 5, 6, 8]);
  });
});
