/**
 * The float16 graphs the GPU configs serve (ONNX_PRECISION fp16: upscale's SRMD graphs) stay within
 * 45 dB PSNR of the float32 graphs on real photos. Run here with onnxruntime's CPU kernels for
 * float16. (On an H200 with the CUDA provider the same comparison gave 60.3 to 61.8 dB for the
 * models served before SRMD; docs/gpu.md.)
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureTriton, type TritonInstall } from "../../local/stack/triton.js";
import { readPhotoTile } from "../../local/bench/photos.js";
import { writeNpyUint8 } from "../support/npy.js";
import { runSupportPython } from "../support/venvPython.js";

/** Textured spots of three photos: a face and a flag, a cat's fur, coffee and a saucer. */
const CROPS = [
  { photo: "astronaut.png", left: 180, top: 60, width: 128, height: 128 },
  { photo: "chelsea.png", left: 150, top: 100, width: 128, height: 128 },
  { photo: "coffee.png", left: 200, top: 150, width: 128, height: 128 },
];

let install: TritonInstall;
let scratch: string;

beforeAll(async () => {
  install = await ensureTriton();
  scratch = mkdtempSync(join(tmpdir(), "float16-models-"));
}, 600_000);

afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe("float16 graphs of upscale", () => {
  it("stay within 45 dB PSNR of float32 on real photo tiles, with float16 weights", async () => {
    const tiles = await Promise.all(CROPS.map(({ photo, ...crop }) => readPhotoTile(photo, crop)));
    const batch = new Uint8Array(tiles.length * 128 * 128 * 3);
    tiles.forEach((tile, i) => batch.set(tile, i * tile.length));
    const file = join(scratch, "tiles.npy");
    writeNpyUint8(file, [tiles.length, 128, 128, 3], batch);

    const report = JSON.parse(await runSupportPython(install, "float16_vs_float32.py", ["--tiles", file])) as Record<
      string,
      { psnr_db: number | null; max_abs_diff: number; shape: number[]; float16_weights: number; float32_weights: number }
    >;

    expect(Object.keys(report)).toEqual(["upscale x2", "upscale x4"]);
    for (const [graph, figures] of Object.entries(report)) {
      // Not the same graph twice: the twin holds its weights in float16 only.
      expect(figures.float16_weights, graph).toBeGreaterThan(0);
      expect(figures.float32_weights, graph).toBe(0);
      // null: identical outputs, which float16 arithmetic would not give on three photos.
      expect(figures.psnr_db, graph).not.toBeNull();
      expect(figures.psnr_db!, graph).toBeGreaterThanOrEqual(45);
    }
    expect(report["upscale x4"]!.shape).toEqual([3, 512, 512, 3]);
    expect(report["upscale x2"]!.shape).toEqual([3, 256, 256, 3]);
  }, 600_000);
});
