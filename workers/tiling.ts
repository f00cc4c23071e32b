/**
 * Cutting an RGB image into fixed-size square tiles with context around each tile's core, and
 * putting the upscaled cores back. Every tile has the same shape, wherever it sits, so tiles of
 * many jobs can share one batch on the server; pixels beyond the image's edge repeat the edge.
 */

export interface Tile {
  /** The core's place and size in the input: the part of the tile the output keeps. */
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface TileGrid {
  tileSize: number;
  overlap: number;
  tiles: Tile[];
}

/** Tiles of `tileSize` whose cores (tileSize - 2 * overlap square) cover the image. */
export function planTiles(width: number, height: number, tileSize: number, overlap: number): TileGrid {
  const step = tileSize - 2 * overlap;
  if (step <= 0) throw new Error(`tile size ${tileSize} leaves no core with overlap ${overlap}`);
  const tiles: Tile[] = [];
  for (let y = 0; y < height; y += step) {
    for (let x = 0; x < width; x += step) {
      tiles.push({ x, y, width: Math.min(step, width - x), height: Math.min(step, height - y) });
    }
  }
  return { tileSize, overlap, tiles };
}

/** The tile's pixels (tileSize square, RGB) with its core at (overlap, overlap). */
export function extractTile(rgb: Uint8Array, width: number, height: number, tile: Tile, grid: TileGrid): Uint8Array {
  const { tileSize, overlap } = grid;
  const out = new Uint8Array(tileSize * tileSize * 3);
  const left = tile.x - overlap;
  const top = tile.y - overlap;
  for (let row = 0; row < tileSize; row += 1) {
    const sy = clamp(top + row, 0, height - 1);
    const rowStart = sy * width;
    const outRow = row * tileSize * 3;
    // Columns inside the image are one contiguous copy; the edges repeat the border pixel.
    const firstInside = clamp(-left, 0, tileSize);
    const lastInside = clamp(width - left, 0, tileSize);
    for (let col = 0; col < firstInside; col += 1) copyPixel(rgb, rowStart * 3, out, outRow + col * 3);
    if (lastInside > firstInside) {
      out.set(rgb.subarray((rowStart + left + firstInside) * 3, (rowStart + left + lastInside) * 3), outRow + firstInside * 3);
    }
    for (let col = lastInside; col < tileSize; col += 1) copyPixel(rgb, (rowStart + width - 1) * 3, out, outRow + col * 3);
  }
  return out;
}

/**
 * Copies the upscaled core of a tile's output into `output`, an RGB buffer `outputWidth` wide
 * whose first row is output row `originRow` (0 for the whole image, a band's top for a band).
 */
export function placeTile(
  output: Uint8Array,
  outputWidth: number,
  tileOutput: Uint8Array,
  tile: Tile,
  grid: TileGrid,
  scale: number,
  originRow = 0,
): void {
  const tileOutSide = grid.tileSize * scale;
  const coreLeft = grid.overlap * scale;
  const rowBytes = tile.width * scale * 3;
  for (let row = 0; row < tile.height * scale; row += 1) {
    const from = ((grid.overlap * scale + row) * tileOutSide + coreLeft) * 3;
    const to = ((tile.y * scale + row - originRow) * outputWidth + tile.x * scale) * 3;
    output.set(tileOutput.subarray(from, from + rowBytes), to);
  }
}

/** The tiles in bands: each band is the tiles of one row of cores, left to right. */
export function tileBands(grid: TileGrid): Tile[][] {
  const bands: Tile[][] = [];
  for (const tile of grid.tiles) {
    const last = bands.at(-1);
    if (last && last[0]?.y === tile.y) last.push(tile);
    else bands.push([tile]);
  }
  return bands;
}

/**
 * Rows `fromRow` to `fromRow + rows` of the alpha plane scaled `scale` times, bilinearly, so
 * that an upscaled photo keeps its transparency without a full-size copy of the plane.
 */
export function scaleAlphaRows(alpha: Uint8Array, width: number, height: number, scale: number, fromRow: number, rows: number): Uint8Array {
  const outWidth = width * scale;
  const out = new Uint8Array(outWidth * rows);
  if (scale === 1) {
    out.set(alpha.subarray(fromRow * width, (fromRow + rows) * width));
    return out;
  }
  for (let r = 0; r < rows; r += 1) {
    const sy = clamp((fromRow + r + 0.5) / scale - 0.5, 0, height - 1);
    const y0 = Math.floor(sy);
    const y1 = Math.min(y0 + 1, height - 1);
    const fy = sy - y0;
    for (let x = 0; x < outWidth; x += 1) {
      const sx = clamp((x + 0.5) / scale - 0.5, 0, width - 1);
      const x0 = Math.floor(sx);
      const x1 = Math.min(x0 + 1, width - 1);
      const fx = sx - x0;
      const top = (alpha[y0 * width + x0] as number) * (1 - fx) + (alpha[y0 * width + x1] as number) * fx;
      const bottom = (alpha[y1 * width + x0] as number) * (1 - fx) + (alpha[y1 * width + x1] as number) * fx;
      out[r * outWidth + x] = Math.round(top * (1 - fy) + bottom * fy);
    }
  }
  return out;
}

/** RGB and a matching alpha plane, interleaved as RGBA. */
export function withAlpha(rgb: Uint8Array, alpha: Uint8Array): Uint8Array {
  const pixels = alpha.length;
  const out = new Uint8Array(pixels * 4);
  for (let i = 0; i < pixels; i += 1) {
    out[i * 4] = rgb[i * 3] as number;
    out[i * 4 + 1] = rgb[i * 3 + 1] as number;
    out[i * 4 + 2] = rgb[i * 3 + 2] as number;
    out[i * 4 + 3] = alpha[i] as number;
  }
  return out;
}

function copyPixel(from: Uint8Array, fromIndex: number, to: Uint8Array, toIndex: number): void {
  to[toIndex] = from[fromIndex] as number;
  to[toIndex + 1] = from[fromIndex + 1] as number;
  to[toIndex + 2] = from[fromIndex + 2] as number;
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}
