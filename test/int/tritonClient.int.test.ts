/**
 * Our KServe v2 gRPC client against a real Triton: health, metadata, start-up checks, the same
 * bytes as Triton's own Python client, and every failure in the port's words.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InferenceError, type InferenceRequest } from "../../events/inferenceClient.js";
import { freePort } from "../../local/stack/processes.js";
import { checkModels, ModelCheckError, type ExpectedModel } from "../../workers/checkModels.js";
import { createTritonClient } from "../../adapters/triton/tritonClient.js";
import { inferenceContract } from "../support/inferenceContract.js";
import { readNpyUint8, writeNpyUint8 } from "../support/npy.js";
import { readPhotoTile } from "../../local/bench/photos.js";
import { sharedTriton, type SharedTriton } from "../support/tritonServer.js";
import { runSupportPython } from "../support/venvPython.js";

let triton: SharedTriton;
let client: ReturnType<typeof createTritonClient>;
let scratch: string;

beforeAll(async () => {
  triton = await sharedTriton();
  client = createTritonClient({ url: triton.grpcUrl, defaultTimeoutMs: 30_000 });
  scratch = mkdtempSync(join(tmpdir(), "triton-client-"));
}, 600_000);

afterAll(async () => {
  client?.close();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

inferenceContract("Triton (a real server)", () => client);

const UPSCALE: ExpectedModel = {
  model: "upscale",
  inputs: [
    { name: "IMAGE", datatype: "UINT8", shape: [-1, -1, -1, 3] },
    { name: "SCALE", datatype: "UINT8", shape: [-1, 1] },
    // Optional (config.pbtxt), but listed in the metadata like any input: 0 SRMD, 1 Real-ESRGAN.
    { name: "MODEL", datatype: "UINT8", shape: [-1, 1] },
  ],
  outputs: [{ name: "IMAGE_OUT", datatype: "UINT8", shape: [-1, -1, -1, 3] }],
};

function upscaleRequest(pixels: Uint8Array, size: number, batch: number, scale: number): InferenceRequest {
  return {
    model: "upscale",
    inputs: [
      { name: "IMAGE", datatype: "UINT8", shape: [batch, size, size, 3], data: pixels },
      { name: "SCALE", datatype: "UINT8", shape: [batch, 1], data: new Uint8Array(batch).fill(scale) },
    ],
  };
}

/** A tile of `size` repeated `batch` times: enough work to still be running after a few ms. */
async function photoBatch(size: number, batch: number): Promise<Uint8Array> {
  const tile = await readPhotoTile("coffee.png", { left: 100, top: 100, width: size, height: size });
  const pixels = new Uint8Array(tile.length * batch);
  for (let i = 0; i < batch; i++) pixels.set(tile, i * tile.length);
  return pixels;
}

async function failure(promise: Promise<unknown>): Promise<InferenceError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(InferenceError);
  return error as InferenceError;
}

describe("Triton gRPC client", () => {
  it("sees the server live and ready, the upscale model ready and an unknown one not", async () => {
    expect(await client.isLive()).toBe(true);
    expect(await client.isReady()).toBe(true);
    expect(await client.isModelReady("upscale")).toBe(true);
    expect(await client.isModelReady("upscale", "1")).toBe(true);
    expect(await client.isModelReady(`missing-${randomUUID()}`)).toBe(false);
  });

  it("describes the upscale model's inputs, outputs and batching", async () => {
    const description = await client.describeModel("upscale");
    expect(description.name).toBe("upscale");
    expect(description.versions).toEqual(["1"]);
    expect(description.inputs).toEqual(UPSCALE.inputs);
    expect(description.outputs).toEqual(UPSCALE.outputs);

    const config = await client.readModelConfig("upscale");
    expect(config.backend).toBe("python");
    expect(config.max_batch_size).toBe(16);
    expect(config.dynamic_batching?.preferred_batch_size).toEqual([4, 8, 16]);
    expect(config.dynamic_batching?.priority_levels).toBe(2);
    expect(config.instance_group.map((g) => g.kind)).toEqual(["KIND_CPU"]);
  });

  it("passes the start-up check for the models it needs, and names every mismatch otherwise", async () => {
    await expect(checkModels(client, [UPSCALE])).resolves.toBeUndefined();

    const missing = `missing-${randomUUID()}`;
    const error = await checkModels(client, [
      { ...UPSCALE, inputs: [{ name: "IMAGE", datatype: "FP32", shape: [-1, -1, -1, 3] }, { name: "MASK", datatype: "UINT8", shape: [-1, 1] }] },
      { model: missing, inputs: [], outputs: [] },
    ]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ModelCheckError);
    const problems = (error as ModelCheckError).problems;
    expect(problems).toHaveLength(3);
    expect(problems[0]).toMatch(/upscale input IMAGE: server has UINT8 \[-1,-1,-1,3\], expected FP32/);
    expect(problems[1]).toMatch(/upscale input MASK: missing/);
    expect(problems[2]).toBe(`${missing}: not ready`);
  });

  it("gets the same bytes as Triton's own Python client for the same tile", async () => {
    const size = 56;
    const pixels = await readPhotoTile("astronaut.png", { left: 220, top: 120, width: size, height: size });
    const result = await client.infer({ ...upscaleRequest(pixels, size, 1, 4), priority: 1, timeoutMs: 60_000 });
    const [output] = result.outputs;
    expect(result.model).toBe("upscale");
    expect(result.version).toBe("1");
    expect(output?.shape).toEqual([1, size * 4, size * 4, 3]);

    const inFile = join(scratch, "cross-in.npy");
    const outFile = join(scratch, "cross-out.npy");
    writeNpyUint8(inFile, [1, size, size, 3], pixels);
    await runSupportPython(triton.install, "tritonclient_infer.py", [
      "--url", triton.grpcUrl, "--scale", "4", "--input", inFile, "--output", outFile,
    ]);
    const theirs = readNpyUint8(outFile);
    expect(theirs.shape).toEqual(output?.shape);
    const ours = output!.data as Uint8Array;
    expect(Buffer.from(ours.buffer, ours.byteOffset, ours.byteLength).equals(Buffer.from(theirs.data))).toBe(true);
  });

  it("receives the answer into the buffer the caller gives, byte for byte as without one", async () => {
    const size = 40;
    const pixels = await readPhotoTile("coffee.png", { left: 30, top: 60, width: size, height: size });
    const plain = (await client.infer(upscaleRequest(pixels, size, 1, 2))).outputs[0]?.data as Uint8Array;
    const given: Uint8Array[] = [];
    const result = await client.infer({
      ...upscaleRequest(pixels, size, 1, 2),
      allocate: (byteLength) => {
        const buffer = new Uint8Array(byteLength).fill(0xaa);
        given.push(buffer);
        return buffer;
      },
    });
    const output = result.outputs[0]?.data as Uint8Array;
    expect(given).toHaveLength(1);
    expect(output.buffer).toBe(given[0]?.buffer);
    expect(output.byteLength).toBe(size * 2 * size * 2 * 3);
    expect(Buffer.from(output).equals(Buffer.from(plain))).toBe(true);
  });

  it("gets the same bytes as Triton's own Python client with an FP32 input", async () => {
    const size = 48;
    const pixels = await readPhotoTile("astronaut.png", { left: 200, top: 80, width: size, height: size });
    const ours = await client.infer({
      model: "enhance",
      inputs: [
        { name: "IMAGE", datatype: "UINT8", shape: [1, size, size, 3], data: pixels },
        { name: "STRENGTH", datatype: "FP32", shape: [1, 1], data: Float32Array.of(0.75) },
      ],
      outputs: ["IMAGE_OUT"],
    });
    const inFile = join(scratch, "fp32-in.npy");
    const outFile = join(scratch, "fp32-out.npy");
    writeNpyUint8(inFile, [1, size, size, 3], pixels);
    await runSupportPython(triton.install, "tritonclient_infer.py", [
      "--url", triton.grpcUrl, "--model", "enhance", "--strength", "0.75", "--input", inFile, "--output", outFile,
    ]);
    const theirs = readNpyUint8(outFile);
    const mine = ours.outputs[0]!.data as Uint8Array;
    expect(ours.outputs[0]?.shape).toEqual(theirs.shape);
    expect(Buffer.from(mine.buffer, mine.byteOffset, mine.byteLength).equals(Buffer.from(theirs.data))).toBe(true);
    // Not a trivial pass: strength 0.75 changes the tile.
    expect(Buffer.from(mine).equals(Buffer.from(pixels))).toBe(false);
  });

  it("reports a SCALE the model rejects as an invalid request, and keeps serving", async () => {
    const pixels = await photoBatch(16, 1);
    const error = await failure(client.infer(upscaleRequest(pixels, 16, 1, 3)));
    expect(error.code).toBe("invalid_request");
    expect(error.retryable).toBe(false);
    expect(error.wire).toEqual({ code: 3, details: "SCALE must be one of [2, 4] for every row of a request, got [3]" });

    const ok = await client.infer(upscaleRequest(pixels, 16, 1, 2));
    expect(ok.outputs[0]?.shape).toEqual([1, 32, 32, 3]);
  });

  it("reports an input that does not match its shape before sending it", async () => {
    const error = await failure(client.infer(upscaleRequest(new Uint8Array(10), 16, 1, 2)));
    expect(error.code).toBe("invalid_request");
    expect(error.message).toMatch(/holds 768 elements, data has 10/);
  });

  it("reports an unknown model as model_not_found", async () => {
    const pixels = await photoBatch(16, 1);
    const error = await failure(client.infer({ ...upscaleRequest(pixels, 16, 1, 2), model: `missing-${randomUUID()}` }));
    expect(error.code).toBe("model_not_found");
    expect(error.wire?.code).toBe(5);
  });

  it("gives up at the deadline with deadline_exceeded", async () => {
    const pixels = await photoBatch(128, 4);
    const started = Date.now();
    const error = await failure(client.infer({ ...upscaleRequest(pixels, 128, 4, 4), timeoutMs: 50 }));
    expect(error.code).toBe("deadline_exceeded");
    expect(error.retryable).toBe(true);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it("cancels the call when the signal aborts, before or during the call", async () => {
    const pixels = await photoBatch(128, 4);
    const controller = new AbortController();
    const call = client.infer({ ...upscaleRequest(pixels, 128, 4, 4), signal: controller.signal });
    setTimeout(() => controller.abort(), 30);
    const started = Date.now();
    const error = await failure(call);
    expect(error.code).toBe("canceled");
    expect(error.wire?.code).toBe(1);
    expect(Date.now() - started).toBeLessThan(1_000);

    const before = await failure(client.infer({ ...upscaleRequest(pixels, 128, 4, 4), signal: AbortSignal.abort() }));
    expect(before.code).toBe("canceled");

    expect(await client.isReady()).toBe(true);
  });

  it("reports a server nobody answers on as unavailable", async () => {
    const nowhere = createTritonClient({ url: `127.0.0.1:${await freePort()}`, defaultTimeoutMs: 3_000 });
    try {
      const error = await failure(nowhere.isLive());
      expect(error.code).toBe("unavailable");
      expect(error.retryable).toBe(true);
      // Inference goes on its own connection (rawUnaryCall.ts): the same answer.
      const inferError = await failure(nowhere.infer(upscaleRequest(await photoBatch(16, 1), 16, 1, 2)));
      expect(inferError.code).toBe("unavailable");
      expect(inferError.wire?.code).toBe(14);
    } finally {
      nowhere.close();
    }
  });
});
