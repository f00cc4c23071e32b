/**
 * The aged model (a classical NumPy photo filter, not a face-aging model) as Triton serves it: on
 * a real photo, the same bytes as the operator run outside Triton, and the look it promises: less
 * saturated, warmer, with more fine texture. Plus the tiled edit contract every tiled model keeps.
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readNpyUint8, writeNpyUint8} from "../support/npy.js";
import { editRequest, imageOut, photo, tiledEditContract } from "../support/tiledEditContract.js";
import { runSupportPython } from "../support/venvPython.js";

// NumPy float32 element-wise arithmetic and fixed windows: the interior of a crop is bit-exact.
const context = tiledEditContract({ model: "aged", defaultStrength: 0.7, radius: 12, localityTolerance: 0 });

interface Look {
  /** Mean of (max - min) / max over R, G, B: saturation as HSV has it. */
  saturation: number;
  blueMinusRed: number;
  /** Mean absolute difference between horizontal neighbours' luma: fine texture. */
  texture: number;
}

function look(pixels: Uint8Array, width: number): Look {
  let saturation = 0;
  let blueMinusRed = 0;
  let texture = 0;
  const n = pixels.length / 3;
  const luma = (i: number) => 0.299 * (pixels[i] ?? 0) + 0.587 * (pixels[i + 1] ?? 0) + 0.114 * (pixels[i + 2] ?? 0);
  for (let p = 0; p < n; p++) {
    const [r, g, b] = [pixels[3 * p] ?? 0, pixels[3 * p + 1] ?? 0, pixels[3 * p + 2] ?? 0];
    saturation += Math.max(r, g, b) === 0 ? 0 : (Math.max(r, g, b) - Math.min(r, g, b)) / Math.max(r, g, b);
    blueMinusRed += b - r;
    if ((p + 1) % width !== 0) texture += Math.abs(luma(3 * p + 3) - luma(3 * p));
  }
  return { saturation: saturation / n, blueMinusRed: blueMinusRed / n, texture: texture / n };
}

describe("aged on Triton", () => {
  it.each([
    { strength: 0.7, photo: "astronaut.png", crop: { left: 160, top: 70, width: 128, height: 128 } },
    { strength: 1, photo: "chelsea.png", crop: { left: 120, top: 40, width: 128, height: 128 } },
    { strength: 0.35, photo: "coffee.png", crop: { left: 150, top: 100, width: 80, height: 64 } },
  ])("at strength $strength, a $photo tile equals the operator outside Triton bit for bit", async ({ strength, photo: name, crop }) => {
    const input = await photo(name, crop);
    const served = imageOut(await context.client.infer(editRequest("aged", input, strength)));

    const inFile = join(context.scratch, `${name}-in.npy`);
    const outFile = join(context.scratch, `${name}-out.npy`);
    writeNpyUint8(inFile, [1, crop.height, crop.width, 3], input.pixels);
    const report = JSON.parse(
      await runSupportPython(context.triton.install, "edit_models_outside_triton.py", [
        "filter", "--model", "aged", "--strength", String(strength), "--input", inFile, "--output", outFile,
      ]),
    ) as { radius: number };
    expect(report.radius).toBeLessThanOrEqual(12);
    const outside = readNpyUint8(outFile);
    expect(outside.shape).toEqual([1, crop.height, crop.width, 3]);
    // Same NumPy code, same inputs, same library build: no tolerance.
    expect(Buffer.from(served).equals(Buffer.from(outside.data))).toBe(true);
  });

  it("makes a face duller and more textured, more so at a higher strength", async () => {
    const face = await photo("astronaut.png", { left: 170, top: 70, width: 120, height: 140 });
    const before = look(face.pixels, 120);
    const mild = look(imageOut(await context.client.infer(editRequest("aged", face, 0.35))), 120);
    const strong = look(imageOut(await context.client.infer(editRequest("aged", face, 0.7))), 120);
    // Measured when written: saturation 0.38 -> 0.32 -> 0.28, texture 7.5 -> 12.1 -> 15.8.
    expect(mild.saturation).toBeLessThan(before.saturation * 0.9);
    expect(strong.saturation).toBeLessThan(mild.saturation * 0.95);
    expect(mild.texture).toBeGreaterThan(before.texture * 1.3);
    expect(strong.texture).toBeGreaterThan(mild.texture * 1.1);
  });

  it("yellows a near-grey wall: blue drops against red", async () => {
    const wall = await photo("astronaut.png", { left: 300, top: 20, width: 60, height: 60 });
    const before = look(wall.pixels, 60);
    const aged = look(imageOut(await context.client.infer(editRequest("aged", wall, 0.7))), 60);
    // Measured when written: mean B - R -15.8 before, -32.5 after.
    expect(aged.blueMinusRed).toBeLessThan(before.blueMinusRed - 8);
  });
});
