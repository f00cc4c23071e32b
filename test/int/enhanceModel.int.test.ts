/**
 * The enhance model (SRMD denoising) as Triton serves it: on a real photo, the same bytes as
 * onnxruntime outside Triton told the noise level of the documented STRENGTH rule, within 1 of
 * the original network run by the `ncnn` package (the check of triton/ncnn_to_onnx.py's
 * conversion), and a real denoiser: it brings a noisy photo closer to the clean one, removing
 * more as STRENGTH grows. Plus the tiled edit contract every tiled model keeps.
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readNpyUint8, writeNpyUint8 } from "../support/npy.js";
import { compare, editRequest, imageOut, photo, tiledEditContract, type TiledImage } from "../support/tiledEditContract.js";
import { runSupportPython } from "../support/venvPython.js";

const context = tiledEditContract({ model: "enhance", defaultStrength: 0.5, radius: 12, localityTolerance: 1 });

async function outside(input: TiledImage, strength: number, name: string) {
  const inFile = join(context.scratch, `${name}-in.npy`);
  const outFile = join(context.scratch, `${name}-onnx.npy`);
  const refFile = join(context.scratch, `${name}-ref.npy`);
  writeNpyUint8(inFile, [input.rows, input.height, input.width, 3], input.pixels);
  const reports = JSON.parse(
    await runSupportPython(context.triton.install, "edit_models_outside_triton.py", [
      "enhance",
      "--strength", String(strength),
      "--input", inFile,
      "--output", outFile,
      "--reference-output", refFile,
    ]),
  ) as { model: string; max_abs_diff: number; values: number }[];
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
    "at strength $strength, a $photo tile equals onnxruntime outside Triton bit for bit, and the original on ncnn within 1",
    async ({ strength, photo: name, crop }) => {
      const input = await photo(name, crop);
      const result = await context.client.infer(editRequest("enhance", input, strength));
      expect(result.outputs[0]?.shape).toEqual([1, crop.height, crop.width, 3]);
      const served = imageOut(result);

      const { onnx, reference, reports } = await outside(input, strength, `${name}-${strength}`);
      expect(onnx.shape).toEqual([1, crop.height, crop.width, 3]);
      expect(Buffer.from(served).equals(Buffer.from(onnx.data))).toBe(true);
      // The graph against ncnn in float32: a value on a rounding boundary may round the other
      // way, by one level.
      expect(reports).toHaveLength(1);
      for (const report of reports) expect(report.max_abs_diff).toBeLessThanOrEqual(1);
      expect(compare(served, reference.data).max).toBeLessThanOrEqual(1);
      // A denoiser on a clean photo: small, real changes.
      const distance = meanDistance(served, input.pixels);
      expect(distance).toBeGreaterThan(0.2);
      expect(distance).toBeLessThan(8);
    },
  );

  it("brings a photo with Gaussian noise closer to the clean photo, and removes more as strength grows", async () => {
    const clean = await photo("astronaut.png", { left: 160, top: 70, width: 96, height: 96 });
    // Deterministic Gaussian noise of sigma 25 (Box-Muller on a fixed linear congruential sequence).
    let seed = 12345;
    const uniform = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return (seed + 1) / (2 ** 31 + 1);
    };
    const noisy = clean.pixels.map((v) => {
      const normal = Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
      return Math.min(255, Math.max(0, Math.round(v + 25 * normal)));
    });
    const noisyImage = { ...clean, pixels: noisy };
    const at = async (strength: number) => imageOut(await context.client.infer(editRequest("enhance", noisyImage, strength)));
    const [low, matched, high] = [await at(0.2), await at(0.5), await at(1)];
    const before = meanDistance(noisy, clean.pixels);
    expect(before).toBeGreaterThan(15);
    // Strength 0.5 is the noise's own level (sigma 25): most of the noise goes.
    expect(meanDistance(matched, clean.pixels)).toBeLessThan(before * 0.5);
    // More strength, more removed: each result is further from the noisy input than the last.
    const removed = [low, matched, high].map((out) => meanDistance(out, noisy));
    expect(removed[0]).toBeLessThan(removed[1]!);
    expect(removed[1]).toBeLessThan(removed[2]!);
  });
});
