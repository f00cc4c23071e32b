/**
 * The contract every InferenceClient keeps, as one suite run against each of them (the Triton
 * client against a real Triton in the int tier, the in-memory double in the unit tier): the
 * catalogue's models are ready with the tensors the worker sends, outputs have the shapes the
 * edits expect, and every failure comes in the port's words with its retry decision.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { InferenceError, type InferenceClient, type InferenceRequest } from "../../events/inferenceClient.js";
import { OPERATION_SPECS } from "../../events/operations.js";
import { checkModels } from "../../workers/checkModels.js";
import { MODEL_CONTRACTS } from "../../workers/edits/editModels.js";

/** A `size`² RGB tile of fixed noise: every filter changes it. */
function noiseTile(size: number): Uint8Array {
  const pixels = new Uint8Array(size * size * 3);
  let seed = 7;
  for (let i = 0; i < pixels.length; i += 1) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    pixels[i] = 40 + (seed % 160);
  }
  return pixels;
}

const mean = (data: Uint8Array) => data.reduce((sum, value) => sum + value, 0) / data.length;

function upscale(pixels: Uint8Array, size: number, scale: number): InferenceRequest {
  return {
    model: OPERATION_SPECS.upscale.model,
    inputs: [
      { name: "IMAGE", datatype: "UINT8", shape: [1, size, size, 3], data: pixels },
      { name: "SCALE", datatype: "UINT8", shape: [1, 1], data: Uint8Array.of(scale) },
    ],
    outputs: ["IMAGE_OUT"],
  };
}

async function failure(work: Promise<unknown>): Promise<InferenceError> {
  const error = await work.then(() => undefined, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(InferenceError);
  return error as InferenceError;
}

export function inferenceContract(adapter: string, client: () => InferenceClient): void {
  describe(`InferenceClient contract: ${adapter}`, () => {
    it("is live and ready, with every available edit's model and the tensors the worker sends", async () => {
      expect(await client().isLive()).toBe(true);
      expect(await client().isReady()).toBe(true);
      const expected = Object.values(OPERATION_SPECS)
        .filter((spec) => spec.available)
        .map((spec) => ({ model: spec.model, ...MODEL_CONTRACTS[spec.operation] }));
      await expect(checkModels(client(), expected)).resolves.toBeUndefined();
    });

    it("upscales a tile to the size asked for, keeping its colours", async () => {
      const pixels = noiseTile(16);
      const result = await client().infer(upscale(pixels, 16, 2));
      const out = result.outputs.find((tensor) => tensor.name === "IMAGE_OUT");
      expect(out?.shape).toEqual([1, 32, 32, 3]);
      expect(out?.data).toBeInstanceOf(Uint8Array);
      expect(out?.data.length).toBe(32 * 32 * 3);
      expect(Math.abs(mean(out?.data as Uint8Array) - mean(pixels))).toBeLessThan(12);
    });

    it("runs a strength model on a tile, keeping its size and changing it", async () => {
      const pixels = noiseTile(16);
      const result = await client().infer({
        model: OPERATION_SPECS.enhance.model,
        inputs: [
          { name: "IMAGE", datatype: "UINT8", shape: [1, 16, 16, 3], data: pixels },
          { name: "STRENGTH", datatype: "FP32", shape: [1, 1], data: Float32Array.of(0.75) },
        ],
        outputs: ["IMAGE_OUT"],
      });
      const out = result.outputs.find((tensor) => tensor.name === "IMAGE_OUT");
      expect(out?.shape).toEqual([1, 16, 16, 3]);
      expect(Buffer.from(out?.data as Uint8Array).equals(Buffer.from(pixels))).toBe(false);
    });

    it("refuses a parameter the model rejects, or data that does not fill its shape, as a permanent invalid_request", async () => {
      const badScale = await failure(client().infer(upscale(noiseTile(16), 16, 3)));
      expect([badScale.code, badScale.retryable]).toEqual(["invalid_request", false]);
      const short = await failure(client().infer(upscale(new Uint8Array(10), 16, 2)));
      expect([short.code, short.retryable]).toEqual(["invalid_request", false]);
      // The server keeps serving after a refusal.
      expect((await client().infer(upscale(noiseTile(8), 8, 2))).outputs[0]?.shape).toEqual([1, 16, 16, 3]);
    });

    it("reports an unknown model as model_not_found, and an aborted call as canceled", async () => {
      const missing = await failure(client().infer({ ...upscale(noiseTile(8), 8, 2), model: `missing-${randomUUID()}` }));
      expect([missing.code, missing.retryable]).toEqual(["model_not_found", false]);
      const aborted = await failure(client().infer({ ...upscale(noiseTile(8), 8, 2), signal: AbortSignal.abort() }));
      expect([aborted.code, aborted.retryable]).toEqual(["canceled", false]);
    });
  });
}
