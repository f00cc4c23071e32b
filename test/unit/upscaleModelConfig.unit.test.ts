import { describe, expect, it } from "vitest";
import { numbers, parameter, readModelBytes, readModelFile, sharedPart, tensors, warmups } from "../support/tritonConfig.js";

const read = (path: string) => readModelFile("upscale", path);

describe("upscale model configs", () => {
  it("the GPU config keeps the CPU config's contract and differs only where a GPU should", () => {
    expect(sharedPart(read("configs/gpu.pbtxt"))).toBe(sharedPart(read("config.pbtxt")));
    expect(tensors(read("configs/gpu.pbtxt"), "input")).toEqual([
      { name: "IMAGE", type: "TYPE_UINT8", dims: "-1,-1,3" },
      { name: "SCALE", type: "TYPE_UINT8", dims: "1" },
      // Added with Real-ESRGAN (0 SRMD, 1 Real-ESRGAN): optional, so requests without it stay valid.
      { name: "MODEL", type: "TYPE_UINT8", dims: "1" },
    ]);
    for (const file of ["config.pbtxt", "configs/gpu.pbtxt"]) {
      expect(read(file)).toMatch(/name: "MODEL"\s+data_type: TYPE_UINT8\s+dims: \[ 1 \]\s+optional: true/);
    }
    expect(tensors(read("configs/gpu.pbtxt"), "output")).toEqual([{ name: "IMAGE_OUT", type: "TYPE_UINT8", dims: "-1,-1,3" }]);
    expect(numbers(read("configs/gpu.pbtxt"), "max_batch_size")).toEqual([16]);
    expect(read("config.pbtxt")).toMatch(/kind: KIND_CPU/);
    expect(read("configs/gpu.pbtxt")).toMatch(/kind: KIND_GPU/);
  });

  it("the CPU config runs the float32 graphs with one session, as before", () => {
    expect(parameter(read("config.pbtxt"), "ONNX_PRECISION")).toBeUndefined();
    expect(parameter(read("config.pbtxt"), "BATCH_BUCKETS")).toBeUndefined();
    expect(read("config.pbtxt")).not.toMatch(/model_warmup/);
  });

  it("the GPU config runs the float16 graphs with a session per bucket that holds every preferred batch", () => {
    const gpu = read("configs/gpu.pbtxt");
    expect(parameter(gpu, "ONNX_PRECISION")).toBe("fp16");
    const buckets = parameter(gpu, "BATCH_BUCKETS")!.split(",").map(Number);
    expect(buckets).toEqual([...buckets].sort((a, b) => a - b));
    expect(Math.max(...buckets)).toBe(numbers(gpu, "max_batch_size")[0]);
    for (const size of numbers(gpu, "preferred_batch_size")) expect(buckets).toContain(size);
  });

  it("the GPU config warms up every batch size the scheduler can form, at both scales, with valid SCALE data", () => {
    const gpu = read("configs/gpu.pbtxt");
    const [maxBatch] = numbers(gpu, "max_batch_size");
    const samples = warmups(gpu);
    for (const scale of [2, 4]) {
      const file = `input_data_file: "scale_${scale}"`;
      const sizes = samples.filter((s) => s.inputs.some((i) => i.key === "SCALE" && i.source === file)).map((s) => s.batchSize);
      expect(sizes.sort((a, b) => a - b)).toEqual(Array.from({ length: maxBatch! }, (_, i) => i + 1));
      expect([...readModelBytes("upscale", `warmup/scale_${scale}`)]).toEqual([scale]);
    }
    for (const sample of samples) {
      expect(sample.inputs.map((i) => [i.key, i.type, i.dims])).toEqual([
        ["IMAGE", "TYPE_UINT8", "128,128,3"],
        ["SCALE", "TYPE_UINT8", "1"],
      ]);
    }
  });
});
