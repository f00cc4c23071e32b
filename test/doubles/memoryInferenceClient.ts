/**
 * An in-memory inference server: the `InferenceClient` port's double (events/inferenceClient.ts).
 * It serves every model of the catalogue with the tensors the worker expects
 * (workers/edits/editModels.ts) and stand-in arithmetic for the learned models: upscale repeats
 * pixels, the strength models lighten by `STRENGTH`, the mask keeps the bright pixels. It fails
 * as Triton does, in the port's words, and passes the same contract suite as the Triton client
 * (test/support/inferenceContract.ts).
 */
import { InferenceError, type InferenceClient, type InferenceRequest, type Tensor } from "../../events/inferenceClient.js";
import { OPERATION_SPECS, OPERATIONS, type Operation } from "../../events/operations.js";
import { MODEL_CONTRACTS } from "../../workers/edits/editModels.js";

export interface MemoryInferenceClient extends InferenceClient {
  /** While false, the server is down: not ready, and every call fails "unavailable". */
  setAvailable(available: boolean): void;
  /** Every call fails with this error while it is set. */
  setFailure(error: InferenceError | undefined): void;
  /** Inference calls made so far. */
  calls(): number;
  /** The request priority of each inference call so far, in order (undefined: none given). */
  priorities(): Array<number | undefined>;
}

/** `latencyMs`: how long each call takes; an abort during it cancels the call. */
export function createMemoryInferenceClient(options: { latencyMs?: number } = {}): MemoryInferenceClient {
  const models = new Map<string, Operation>(OPERATIONS.map((operation) => [OPERATION_SPECS[operation].model, operation]));
  let available = true;
  let failure: InferenceError | undefined;
  let calls = 0;
  const priorities: Array<number | undefined> = [];
  const down = () => new InferenceError("unavailable", "the inference server is not reachable", { code: 14 });
  const known = (model: string): Operation => {
    const operation = models.get(model);
    if (!operation) throw new InferenceError("model_not_found", `infer ${model}: unknown model`, { code: 5 });
    return operation;
  };

  return {
    async isLive() {
      if (!available) throw down();
      return true;
    },
    async isReady() {
      return available;
    },
    async isModelReady(model) {
      if (!available) throw down();
      return models.has(model);
    },
    async describeModel(model) {
      if (!available) throw down();
      const contract = MODEL_CONTRACTS[known(model)];
      return { name: model, versions: ["1"], inputs: structuredClone(contract.inputs), outputs: structuredClone(contract.outputs) };
    },
    async infer(request) {
      calls += 1;
      priorities.push(request.priority);
      if (request.signal?.aborted) throw new InferenceError("canceled", `infer ${request.model}: canceled`, { code: 1 });
      if (!available) throw down();
      if (failure) throw failure;
      const operation = known(request.model);
      for (const tensor of request.inputs) {
        const elements = tensor.shape.reduce((a, b) => a * b, 1);
        if (elements !== tensor.data.length) {
          throw new InferenceError("invalid_request", `${tensor.name} of shape [${tensor.shape}] holds ${elements} elements, data has ${tensor.data.length}`);
        }
      }
      if (options.latencyMs) await pause(options.latencyMs, request);
      return { model: request.model, version: "1", outputs: run(operation, request) };
    },
    close() {},
    setAvailable(value) {
      available = value;
    },
    setFailure(error) {
      failure = error;
    },
    calls: () => calls,
    priorities: () => [...priorities],
  };
}

function pause(ms: number, request: InferenceRequest): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    request.signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(new InferenceError("canceled", `infer ${request.model}: canceled`, { code: 1 }));
    });
  });
}

function input(request: InferenceRequest, name: string): Tensor {
  const tensor = request.inputs.find((each) => each.name === name);
  if (!tensor) throw new InferenceError("invalid_request", `infer ${request.model}: input ${name} is missing`, { code: 3 });
  return tensor;
}

function run(operation: Operation, request: InferenceRequest): Tensor[] {
  const image = input(request, "IMAGE");
  const [batch = 1, height = 0, width = 0] = image.shape;
  const pixels = image.data as Uint8Array;
  if (operation === "remove_background") {
    const mask = new Uint8Array(batch * height * width);
    for (let i = 0; i < mask.length; i += 1) mask[i] = Math.max(pixels[i * 3] ?? 0, pixels[i * 3 + 1] ?? 0, pixels[i * 3 + 2] ?? 0) > 96 ? 255 : 0;
    return [{ name: "MASK", datatype: "UINT8", shape: [batch, height, width, 1], data: mask }];
  }
  if (operation === "upscale") {
    const scales = [...(input(request, "SCALE").data as Uint8Array)];
    if (scales.some((scale) => scale !== 2 && scale !== 4)) {
      throw new InferenceError("invalid_request", `SCALE must be one of [2, 4] for every row of a request, got [${scales}]`, { code: 3 });
    }
    const scale = scales[0] as number;
    const out = new Uint8Array(pixels.length * scale * scale);
    const outWidth = width * scale;
    for (let b = 0; b < batch; b += 1) {
      for (let y = 0; y < height * scale; y += 1) {
        for (let x = 0; x < outWidth; x += 1) {
          const from = ((b * height + Math.floor(y / scale)) * width + Math.floor(x / scale)) * 3;
          out.set(pixels.subarray(from, from + 3), ((b * height * scale + y) * outWidth + x) * 3);
        }
      }
    }
    return [{ name: "IMAGE_OUT", datatype: "UINT8", shape: [batch, height * scale, outWidth, 3], data: out }];
  }
  const strength = (input(request, "STRENGTH").data as Float32Array)[0] ?? 0;
  const out = pixels.map((value) => Math.round(value + (255 - value) * strength * 0.25));
  return [{ name: "IMAGE_OUT", datatype: "UINT8", shape: [batch, height, width, 3], data: out }];
}
