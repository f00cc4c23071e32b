/**
 * The comic model (a classical NumPy operator) as Triton serves it: on a real photo, the same
 * bytes as the operator run outside Triton, and it looks drawn: flat colour areas and dark ink
 * on the outlines. Plus the tiled edit contract every tiled model keeps.
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readNpyUint8, writeNpyUint8 } from "../support/npy.js";
import { editRequest, imageOut, photo, tiledEditContract } from "../support/tiledEditContract.js";
import { runSupportPython } from "../support/venvPython.js";

// NumPy float32 element-wise arithmetic and fixed windows: the interior of a crop is bit-exact.
const context = tiledEditContract({ model: "comic", defaultStrength: 0.7, radius: 11, localityTolerance: 0 });

/** Share of 2x2 blocks whose four pixels are all equal: flat paint. */
function flatShare(pixels: Uint8Array, width: number, height: number): number {
  let flat = 0;
  let blocks = 0;
  for (let y = 0; y + 1 < height; y += 2) {
    for (let x = 0; x + 1 < width; x += 2) {
      blocks++;
      const at = (yy: number, xx: number) => (yy * width + xx) * 3;
      const same = [at(y, x + 1), at(y + 1, x), at(y + 1, x + 1)].every((o) =>
        [0, 1, 2].every((c) => Math.abs((pixels[o + c] ?? 0) - (pixels[at(y, x) + c] ?? 0)) <= 2),
      );
      if (same) flat++;
    }
  }
  return flat / blocks;
}

function darkShare(pixels: Uint8Array): number {
  let dark = 0;
  for (let i = 0; i < pixels.length; i += 3) if ((pixels[i] ?? 0) + (pixels[i + 1] ?? 0) + (pixels[i + 2] ?? 0) < 90) dark++;
  return dark / (pixels.length / 3);
}

describe("comic on Triton", () => {
  it.each([
    { strength: 0.7, photo: "astronaut.png", crop: { left: 160, top: 70, width: 128, height: 128 } },
    { strength: 1, photo: "chelsea.png", crop: { left: 120, top: 40, width: 128, height: 128 } },
    { strength: 0.2, photo: "coffee.png", crop: { left: 150, top: 100, width: 80, height: 64 } },
  ])("at strength $strength, a $photo tile equals the operator outside Triton bit for bit", async ({ strength, photo: name, crop }) => {
    const input = await photo(name, crop);
    const served = imageOut(await context.client.infer(editRequest("comic", input, strength)));

    const inFile = join(context.scratch, `${name}-in.npy`);
    const outFile = join(context.scratch, `${name}-out.npy`);
    writeNpyUint8(inFile, [1, crop.height, crop.width, 3], input.pixels);
    const report = JSON.parse(
      await runSupportPython(context.triton.install, "edit_models_outside_triton.py", [
        "filter", "--model", "comic", "--strength", String(strength), "--input", inFile, "--output", outFile,
      ]),
    ) as { radius: number };
    expect(report.radius).toBeLessThanOrEqual(12);
    const outside = readNpyUint8(outFile);
    expect(outside.shape).toEqual([1, crop.height, crop.width, 3]);
    // Same NumPy code, same inputs, same library build: no tolerance.
    expect(Buffer.from(served).equals(Buffer.from(outside.data))).toBe(true);
  });

  it("turns a portrait into flat paint with dark outlines", async () => {
    const face = await photo("astronaut.png", { left: 150, top: 40, width: 160, height: 160 });
    const drawn = imageOut(await context.client.infer(editRequest("comic", face, 0.7)));
    expect(flatShare(drawn, 160, 160)).toBeGreaterThan(flatShare(face.pixels, 160, 160) + 0.15);
    expect(darkShare(drawn)).toBeGreaterThan(darkShare(face.pixels) + 0.02);
  });
});
