/**
 * The upscale model as Triton serves it: real photo tiles in, SRMD out, the same bytes as the ONNX
 * graph outside Triton, within 1 of the original ncnn network run by the `ncnn` package (the check
 * of triton/ncnn_to_onnx.py's conversion), and unchanged by the dynamic batcher.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { InferenceClient, InferenceResult } from "../../events/inferenceClient.js";
import { createTritonClient } from "../../adapters/triton/tritonClient.js";
import { readNpyUint8, writeNpyUint8 } from "../support/npy.js";
import { readPhotoTile, type Crop } from "../../local/bench/photos.js";
import { sharedTriton, type SharedTriton } from "../support/tritonServer.js";
import { runSupportPython } from "../support/venvPython.js";

let triton: SharedTriton;
let client: InferenceClient;
let scratch: string;

beforeAll(async () => {
  triton = await sharedTriton();
  client = createTritonClient({ url: triton.grpcUrl, defaultTimeoutMs: 60_000 });
  scratch = mkdtempSync(join(tmpdir(), "upscale-model-"));
}, 600_000);

afterAll(async () => {
  client?.close();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

interface Tile {
  photo: string;
  crop: Crop;
  pixels: Uint8Array;
}

async function tile(photo: string, crop: Crop): Promise<Tile> {
  return { photo, crop, pixels: await readPhotoTile(photo, crop) };
}

/** MODEL: 0 SRMD, 1 Real-ESRGAN; undefined leaves the optional input out, as older clients do. */
function upscale(tiles: Tile[], scale: number, model?: number): Promise<InferenceResult> {
  const [first] = tiles;
  if (!first) throw new Error("no tiles");
  const { width, height } = first.crop;
  const batch = new Uint8Array(tiles.length * height * width * 3);
  tiles.forEach((t, i) => batch.set(t.pixels, i * t.pixels.length));
  return client.infer({
    model: "upscale",
    inputs: [
      { name: "IMAGE", datatype: "UINT8", shape: [tiles.length, height, width, 3], data: batch },
      { name: "SCALE", datatype: "UINT8", shape: [tiles.length, 1], data: new Uint8Array(tiles.length).fill(scale) },
      ...(model === undefined ? [] : [{ name: "MODEL", datatype: "UINT8" as const, shape: [tiles.length, 1], data: new Uint8Array(tiles.length).fill(model) }]),
    ],
    outputs: ["IMAGE_OUT"],
  });
}

function onlyOutput(result: InferenceResult) {
  expect(result.outputs.map((o) => o.name)).toEqual(["IMAGE_OUT"]);
  const [output] = result.outputs;
  if (!output) throw new Error("no output");
  return output;
}

/** Mean absolute difference between an upscaled tile and the input repeated pixel by pixel. */
function meanDistanceToNearest(input: Uint8Array, output: Uint8Array, width: number, height: number, scale: number): number {
  let total = 0;
  for (let y = 0; y < height * scale; y++) {
    for (let x = 0; x < width * scale; x++) {
      for (let c = 0; c < 3; c++) {
        const source = input[(Math.floor(y / scale) * width + Math.floor(x / scale)) * 3 + c] ?? 0;
        total += Math.abs((output[(y * width * scale + x) * 3 + c] ?? 0) - source);
      }
    }
  }
  return total / (width * height * scale * scale * 3);
}

describe("upscale on Triton", () => {
  it("runs Real-ESRGAN for MODEL 1: x4 as the original on ncnn, x2 its x4 halved, and unlike SRMD", async () => {
    // 24×24: Real-ESRGAN takes seconds per tile on a CPU.
    const crop = { left: 200, top: 90, width: 24, height: 24 };
    const input = await tile("astronaut.png", crop);
    const perceptual = onlyOutput(await upscale([input], 4, 1));
    expect(perceptual.shape).toEqual([1, 96, 96, 3]);
    const srmd = onlyOutput(await upscale([input], 4, 0));
    // MODEL 0 and no MODEL at all are both SRMD.
    expect(Buffer.from(onlyOutput(await upscale([input], 4)).data as Uint8Array).equals(Buffer.from(srmd.data as Uint8Array))).toBe(true);
    const esrgan = perceptual.data as Uint8Array;
    let differing = 0;
    let total = 0;
    for (let i = 0; i < esrgan.length; i++) {
      const d = Math.abs((esrgan[i] ?? 0) - ((srmd.data as Uint8Array)[i] ?? 0));
      total += d;
      if (d > 0) differing++;
    }
    console.log(`Real-ESRGAN vs SRMD on a 24x24 tile: mean |difference| ${(total / esrgan.length).toFixed(2)}, ${differing} of ${esrgan.length} values differ`);
    expect(differing / esrgan.length).toBeGreaterThan(0.5);
    expect(total / esrgan.length).toBeGreaterThan(1);
    // Still the same picture: close to the input's own pixels.
    expect(meanDistanceToNearest(input.pixels, esrgan, crop.width, crop.height, 4)).toBeLessThan(25);

    const inFile = join(scratch, "esrgan-in.npy");
    const outFile = join(scratch, "esrgan-onnx.npy");
    writeNpyUint8(inFile, [1, crop.height, crop.width, 3], input.pixels);
    const report = JSON.parse(
      await runSupportPython(triton.install, "upscale_outside_triton.py", ["--scale", "4", "--model", "perceptual", "--input", inFile, "--output", outFile]),
    ) as { model: string; max_abs_diff: number; values: number };
    expect(report.model).toBe("realesrgan_x4plus.onnx");
    expect(report.values).toBe(esrgan.length);
    expect(report.max_abs_diff).toBeLessThanOrEqual(1);
    expect(Buffer.from(readNpyUint8(outFile).data).equals(Buffer.from(esrgan))).toBe(true);

    const half = onlyOutput(await upscale([input], 2, 1));
    expect(half.shape).toEqual([1, 48, 48, 3]);
    const expected = new Uint8Array(48 * 48 * 3);
    for (let y = 0; y < 48; y++) {
      for (let x = 0; x < 48; x++) {
        for (let c = 0; c < 3; c++) {
          const at = (yy: number, xx: number) => esrgan[(yy * 96 + xx) * 3 + c] ?? 0;
          const mean = (at(2 * y, 2 * x) + at(2 * y, 2 * x + 1) + at(2 * y + 1, 2 * x) + at(2 * y + 1, 2 * x + 1)) / 4;
          // numpy's round: half to even.
          const floor = Math.floor(mean);
          expected[(y * 48 + x) * 3 + c] = mean - floor === 0.5 ? (floor % 2 === 0 ? floor : floor + 1) : Math.round(mean);
        }
      }
    }
    expect(Buffer.from(half.data as Uint8Array).equals(Buffer.from(expected))).toBe(true);
  }, 120_000);

  it("keeps concurrent requests of the two models apart: each gets its own model's bytes", async () => {
    const input = await tile("chelsea.png", { left: 160, top: 90, width: 16, height: 16 });
    const alone = [onlyOutput(await upscale([input], 4, 0)), onlyOutput(await upscale([input], 4, 1))];
    const together = await Promise.all([0, 1, 0, 1].map((model) => upscale([input], 4, model)));
    together.forEach((result, i) => {
      expect(Buffer.from(onlyOutput(result).data as Uint8Array).equals(Buffer.from(alone[i % 2]!.data as Uint8Array))).toBe(true);
    });
    expect(Buffer.from(alone[0]!.data as Uint8Array).equals(Buffer.from(alone[1]!.data as Uint8Array))).toBe(false);
  }, 120_000);

  it("refuses a MODEL it does not have, naming the values it takes", async () => {
    const input = await tile("astronaut.png", { left: 200, top: 90, width: 16, height: 16 });
    await expect(upscale([input], 4, 2)).rejects.toThrow(/MODEL must be one of \[0, 1\]/);
  });

  it.each([
    { scale: 4, photo: "astronaut.png", crop: { left: 180, top: 60, width: 64, height: 48 } },
    { scale: 2, photo: "chelsea.png", crop: { left: 150, top: 80, width: 80, height: 72 } },
  ])(
    "x$scale of a $photo tile equals onnxruntime outside Triton bit for bit, and the original on ncnn within 1",
    async ({ scale, photo, crop }) => {
      const input = await tile(photo, crop);
      const output = onlyOutput(await upscale([input], scale));

      expect(output.datatype).toBe("UINT8");
      expect(output.shape).toEqual([1, crop.height * scale, crop.width * scale, 3]);
      // A photo, enlarged: close to the input's own pixels, but not a plain pixel repeat.
      const distance = meanDistanceToNearest(input.pixels, output.data as Uint8Array, crop.width, crop.height, scale);
      expect(distance).toBeGreaterThan(0.5);
      expect(distance).toBeLessThan(20);

      const inFile = join(scratch, `${photo}-x${scale}-in.npy`);
      const outFile = join(scratch, `${photo}-x${scale}-onnx.npy`);
      writeNpyUint8(inFile, [1, crop.height, crop.width, 3], input.pixels);
      const report = JSON.parse(
        await runSupportPython(triton.install, "upscale_outside_triton.py", [
          "--scale", String(scale),
          "--input", inFile,
          "--output", outFile,
        ]),
      ) as { max_abs_diff: number; tolerance: number; values: number; differing_values: number };
      const outside = readNpyUint8(outFile);

      expect(outside.shape).toEqual(output.shape);
      expect(Buffer.from(output.data.buffer, output.data.byteOffset, output.data.byteLength).equals(Buffer.from(outside.data))).toBe(true);
      expect(report.values).toBe(output.data.length);
      expect(report.tolerance).toBe(1);
      expect(report.max_abs_diff).toBeLessThanOrEqual(1);
    },
  );

  it("answers concurrent requests, batched by the server, with the bytes of sequential ones", async () => {
    const crop = (left: number, top: number): Crop => ({ left, top, width: 40, height: 40 });
    const tiles = await Promise.all([
      tile("astronaut.png", crop(200, 90)),
      tile("astronaut.png", crop(300, 300)),
      tile("chelsea.png", crop(120, 100)),
      tile("chelsea.png", crop(250, 40)),
      tile("coffee.png", crop(100, 150)),
      tile("coffee.png", crop(380, 200)),
    ]);
    const sequential: Uint8Array[] = [];
    for (const t of tiles) sequential.push(onlyOutput(await upscale([t], 4)).data as Uint8Array);

    const before = await modelStats();
    const concurrent = await Promise.all(tiles.map((t) => upscale([t], 4)));
    // Triton records an execution's statistics after its responses go out: read until they are in.
    let after = await modelStats();
    for (let tries = 0; after.inferenceCount - before.inferenceCount < tiles.length && tries < 50; tries += 1) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      after = await modelStats();
    }

    concurrent.forEach((result, i) => {
      expect(Buffer.from(onlyOutput(result).data).equals(Buffer.from(sequential[i] as Uint8Array))).toBe(true);
    });
    expect(after.inferenceCount - before.inferenceCount).toBe(tiles.length);
    // Fewer model executions than requests: the dynamic batcher grouped some of them.
    expect(after.executionCount - before.executionCount).toBeLessThan(tiles.length);
  });

  it("keeps concurrent requests of different scales and tile sizes apart", async () => {
    const small = await tile("coffee.png", { left: 60, top: 60, width: 24, height: 32 });
    const large = await tile("chelsea.png", { left: 60, top: 60, width: 48, height: 40 });
    const cases = [
      { t: small, scale: 2 },
      { t: large, scale: 4 },
      { t: small, scale: 4 },
      { t: large, scale: 2 },
    ];
    const expected: Uint8Array[] = [];
    for (const c of cases) expected.push(onlyOutput(await upscale([c.t], c.scale)).data as Uint8Array);

    const results = await Promise.all(cases.map((c) => upscale([c.t], c.scale)));

    results.forEach((result, i) => {
      const { t, scale } = cases[i]!;
      const output = onlyOutput(result);
      expect(output.shape).toEqual([1, t.crop.height * scale, t.crop.width * scale, 3]);
      expect(Buffer.from(output.data).equals(Buffer.from(expected[i] as Uint8Array))).toBe(true);
    });
  });

  it("upscales every row of a multi-tile request as if sent alone", async () => {
    const crop = (left: number): Crop => ({ left, top: 120, width: 32, height: 32 });
    const tiles = await Promise.all([tile("astronaut.png", crop(100)), tile("astronaut.png", crop(200)), tile("astronaut.png", crop(300))]);

    const output = onlyOutput(await upscale(tiles, 2));
    expect(output.shape).toEqual([3, 64, 64, 3]);
    const rowBytes = 64 * 64 * 3;
    for (const [i, t] of tiles.entries()) {
      const alone = onlyOutput(await upscale([t], 2)).data as Uint8Array;
      const row = (output.data as Uint8Array).subarray(i * rowBytes, (i + 1) * rowBytes);
      expect(Buffer.from(row).equals(Buffer.from(alone))).toBe(true);
    }
  });
});

async function modelStats(): Promise<{ inferenceCount: number; executionCount: number }> {
  const response = await fetch(`${triton.httpUrl}/v2/models/upscale/stats`);
  const body = (await response.json()) as { model_stats: { inference_count: number; execution_count: number }[] };
  const [stats] = body.model_stats;
  if (!stats) throw new Error("no stats for upscale");
  return { inferenceCount: stats.inference_count, executionCount: stats.execution_count };
}
