/** The quality benchmark's own arithmetic: the PSNR, the classical enlargers and the noise. */
import { describe, expect, it } from "vitest";
import { addNoise, cubic, enlarge, lanczos3, lumaPsnr, type Image } from "../../local/bench/benchQuality.js";

function image(width: number, height: number, value: (x: number, y: number, c: number) => number): Image {
  const pixels = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) for (let c = 0; c < 3; c++) pixels[(y * width + x) * 3 + c] = value(x, y, c);
  return { width, height, pixels };
}

describe("lumaPsnr", () => {
  it("is 10·log10(255²/MSE) of BT.601 luma inside the border, and ignores the border", () => {
    const a = image(12, 12, () => 100);
    // A grey step of 10 levels in every channel moves luma by 10 × (65.481 + 128.553 + 24.966) / 255.
    const b = image(12, 12, (x, y) => (x < 2 || y < 2 ? 0 : 110));
    const dy = (10 * (65.481 + 128.553 + 24.966)) / 255;
    expect(lumaPsnr(a, b, 2)).toBeCloseTo(10 * Math.log10((255 * 255) / (dy * dy)), 10);
    expect(lumaPsnr(a, a, 2)).toBe(Number.POSITIVE_INFINITY);
    expect(lumaPsnr(a, b, 0)).toBeLessThan(lumaPsnr(a, b, 2));
  });
});

describe("enlarge", () => {
  it.each([
    { name: "bicubic", kernel: cubic, support: 2 },
    { name: "lanczos3", kernel: lanczos3, support: 3 },
  ])("$name keeps a flat image flat and a horizontal ramp a ramp, at the pixel centres", ({ kernel, support }) => {
    const flat = enlarge(image(5, 4, () => 77), 4, kernel, support);
    expect(flat.width).toBe(20);
    expect(flat.height).toBe(16);
    expect(new Set(flat.pixels)).toEqual(new Set([77]));
    // Input pixel x sits at output (x + 0.5) * 2 - 0.5: between 2x and 2x + 1, so away from the
    // clamped edges the ramp 10x + 40 comes out as 5x' + 37.5, rounded.
    const ramp = enlarge(image(10, 3, (x) => 40 + 10 * x), 2, kernel, support);
    for (let x = 6; x < 14; x++) expect(Math.abs((ramp.pixels[(1 * 20 + x) * 3] ?? 0) - (37.5 + 5 * x))).toBeLessThanOrEqual(0.5);
  });
});

describe("addNoise", () => {
  it("adds zero-mean noise of the asked standard deviation, the same for the same seed", () => {
    const grey = image(64, 64, () => 128);
    const noisy = addNoise(grey, 15, 42);
    const diffs = Array.from(noisy.pixels, (v) => v - 128);
    const mean = diffs.reduce((a, b) => a + b, 0) / diffs.length;
    const sd = Math.sqrt(diffs.reduce((a, b) => a + (b - mean) ** 2, 0) / diffs.length);
    expect(Math.abs(mean)).toBeLessThan(0.5);
    expect(sd).toBeGreaterThan(14.5);
    expect(sd).toBeLessThan(15.5);
    expect(Buffer.from(addNoise(grey, 15, 42).pixels).equals(Buffer.from(noisy.pixels))).toBe(true);
    expect(Buffer.from(addNoise(grey, 15, 43).pixels).equals(Buffer.from(noisy.pixels))).toBe(false);
  });
});
