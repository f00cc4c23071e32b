/**
 * The enhance model (waifu2x vgg_7 denoising) as Triton serves it: on a real photo, the same bytes
 * as onnxruntime outside Triton mixed by the documented STRENGTH rule, within 1 of the NumPy
 * reference of the package's JSON weights, and a real denoiser: it brings a noisy photo closer to
 * the clean one. Plus the tiled edit contract every tiled model keeps.
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readNpyUint8, writeNpyUint8 } from "../support/npy.js";
import { compare, editRequest, imageOut, photo, tiledEditContract, type TiledImage } from "../support/tiledEditContract.js";
import { runSupportPython } from "../support/venvPython.js";

const context = tiledEditContract({ model: "enhance", defaultStrength: 0.5, radius: 7, localityTolerance: 1 });

async function outside(input: TiledImage, strength: number, name: string) {
  const inFile = join(context.scratch, `${name}-in.npy`);
  const outFile = join(context.scratch, `${name}-onnx.npy`);
  const refFile = join(context.scratch, `${name}-ref.npy`);
  writeNpyUint8(inFile, [input.rows, input.height, input.width, 3], input.pixels);
  const reports = JSON.parse(
    await runSupportPython(context.triton.install, "edit_models_outside_triton.py", [
      "enhance",
      "--tarball", context.triton.install.modelTarballs.enhance,
      "--strength", String(strength),
      "--input", inFile,
      "--output", outFile,
      "--reference-output", refFile,
    ]),
  ) as { level: number; max_abs_diff: number; values: number }[];
  return { onnx: readNpyUint8(outFile), reference: readNpyUint8(refFile), reports };
}

/** Mean absolute difference per value. */
function meanDistance(a: Uint8Array, b: Uint8Array): number {
  let total = 0;
  for (let i = 0; i < a.length; i++) total += Math.abs((a[i] ?? 0) - (b[i] ?? 0));
  return total / a.length;
}

describe("enhance on Triton", () => {
  it.each([
    { strength: 0.5, photo: "astronaut.png", crop: { left: 160, top: 70, width: 128, height: 128 } },
    { strength: 0.8, photo: "coffee.png", crop: { left: 180, top: 120, width: 128, height: 96 } },
    { strength: 0.3, photo: "chelsea.png", crop: { left: 140, top: 60, width: 72, height: 72 } },
  ])(
    "at strength $strength, a $photo tile equals onnxruntime outside Triton bit for bit, and the NumPy reference within 1",
    async ({ strength, photo: name, crop }) => {
      const input = await photo(name, crop);
      const result = await context.client.infer(editRequest("enhance", input, strength));
      expect(result.outputs[0]?.shape).toEqual([1, crop.height, crop.width, 3]);
      const served = imageOut(result);

      const { onnx, reference, reports } = await outside(input, strength, `${name}-${strength}`);
      expect(onnx.shape).toEqual([1, crop.height, crop.width, 3]);
      expect(Buffer.from(served).equals(Buffer.from(onnx.data))).toBe(true);
      // The graphs against float64 NumPy from the JSON weights: a value on a rounding boundary
      // may round the other way, by one level; the linear mix of two levels keeps that bound.
      for (const report of reports) expect(report.max_abs_diff).toBeLessThanOrEqual(1);
      expect(compare(served, reference.data).max).toBeLessThanOrEqual(1);
      // A denoiser on a clean photo: small, real changes.
      const distance = meanDistance(served, input.pixels);
      expect(distance).toBeGreaterThan(0.2);
      expect(distance).toBeLessThan(8);
    },
  );

  it("brings a photo with added noise closer to the clean photo, more so at strength 1", async () => {
    const clean = await photo("astronaut.png", { left: 160, top: 70, width: 128, height: 128 });
    // Deterministic noise, +-12 levels, from a fixed linear congruential sequence.
    let seed = 12345;
    const noisy = clean.pixels.map((v) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return Math.min(255, Math.max(0, v + ((seed >> 8) % 25) - 12));
    });
    const noisyImage = { ...clean, pixels: noisy };
    const before = meanDistance(noisy, clean.pixels);
    const level1 = meanDistance(imageOut(await context.client.infer(editRequest("enhance", noisyImage, 0.5))), clean.pixels);
    const level3 = meanDistance(imageOut(await context.client.infer(editRequest("enhance", noisyImage, 1))), clean.pixels);
    // Measured when written: 6.0 before, 4.8 at strength 0.5 (noise level 1), 3.1 at 1 (level 3).
    expect(before).toBeGreaterThan(5);
    expect(level1).toBeLessThan(before * 0.9);
    expect(level3).toBeLessThan(level1 * 0.8);
  });
});
