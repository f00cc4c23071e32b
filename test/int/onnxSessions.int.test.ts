/**
 * The GPU configs' BATCH_BUCKETS (triton/model_repository/onnx_sessions.py): a batch runs on the
 * session of the smallest bucket that holds it, padded up to that bucket, and comes back with the
 * bytes one plain session gives; each bucket's session only ever sees its own batch size. Run with
 * onnxruntime on the CPU here; on the GPU the same code removed 60 ms stalls (docs/gpu.md).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readPhotoTile } from "../../local/bench/photos.js";
import { ensureTriton, type TritonInstall } from "../../local/stack/triton.js";
import { writeNpyUint8 } from "../support/npy.js";
import { runSupportPython } from "../support/venvPython.js";

let install: TritonInstall;
let scratch: string;

beforeAll(async () => {
  install = await ensureTriton();
  scratch = mkdtempSync(join(tmpdir(), "onnx-sessions-"));
}, 600_000);

afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe("onnxruntime sessions per batch bucket", () => {
  it("give every batch size from 1 to 6 the bytes of one plain session, each bucket seeing one size", async () => {
    const crops = [
      { photo: "astronaut.png", left: 200, top: 60 },
      { photo: "coffee.png", left: 250, top: 150 },
      { photo: "chelsea.png", left: 150, top: 100 },
    ];
    const tiles = await Promise.all(crops.map(({ photo, ...at }) => readPhotoTile(photo, { ...at, width: 48, height: 48 })));
    const batch = new Uint8Array(tiles.length * 48 * 48 * 3);
    tiles.forEach((tile, i) => batch.set(tile, i * tile.length));
    const file = join(scratch, "tiles.npy");
    writeNpyUint8(file, [tiles.length, 48, 48, 3], batch);

    const report = JSON.parse(await runSupportPython(install, "onnx_sessions_check.py", ["--tiles", file, "--buckets", "1,2,4", "--max", "6"])) as {
      same: Record<string, boolean>;
      sizes_per_bucket: Record<string, number[]>;
    };

    expect(report.same).toEqual({ "1": true, "2": true, "3": true, "4": true, "5": true, "6": true });
    // 3 is padded to 4; 5 runs as 4 + 1, 6 as 4 + 2.
    expect(report.sizes_per_bucket).toEqual({ "1": [1], "2": [2], "4": [4] });
  }, 600_000);
});
