import { describe, expect, it } from "vitest";
import { bare, numbers, parameter, readModelBytes, readModelFile as read, sharedPart, tensors, warmups } from "../support/tritonConfig.js";

const TILED = ["enhance", "comic", "aged"] as const;
const ALL = [...TILED, "remove_background"] as const;
/** The learned models, whose GPU configs have their own batching, warm-up and onnxruntime sessions. */
const LEARNED = ["enhance", "remove_background"] as const;
const CLASSICAL = ["comic", "aged"] as const;

describe("edit model configs", () => {
  it.each(CLASSICAL)("%s: the GPU config differs from the CPU one only in its instance group", (model) => {
    const cut = (config: string) => bare(config).replace(/instance_group \[[\s\S]*?\n\]/, "");
    expect(cut(read(model, "configs/gpu.pbtxt"))).toBe(cut(read(model, "config.pbtxt")));
    expect(read(model, "config.pbtxt")).toMatch(/kind: KIND_CPU/);
    expect(read(model, "configs/gpu.pbtxt")).toMatch(/kind: KIND_GPU/);
  });

  it.each(LEARNED)("%s: the GPU config keeps the CPU config's contract and differs only where a GPU should", (model) => {
    expect(sharedPart(read(model, "configs/gpu.pbtxt"))).toBe(sharedPart(read(model, "config.pbtxt")));
    expect(read(model, "config.pbtxt")).toMatch(/kind: KIND_CPU/);
    expect(read(model, "configs/gpu.pbtxt")).toMatch(/kind: KIND_GPU/);
    expect(read(model, "config.pbtxt")).not.toMatch(/model_warmup|ONNX_PRECISION|BATCH_BUCKETS/);
  });

  it.each(LEARNED)("%s: the GPU config keeps a session per bucket, holding every preferred batch and up to the max", (model) => {
    const gpu = read(model, "configs/gpu.pbtxt");
    const buckets = parameter(gpu, "BATCH_BUCKETS")!.split(",").map(Number);
    expect(buckets).toEqual([...buckets].sort((a, b) => a - b));
    expect(Math.max(...buckets)).toBe(numbers(gpu, "max_batch_size")[0]);
    for (const size of numbers(gpu, "preferred_batch_size")) expect(buckets).toContain(size);
  });

  it.each(LEARNED)("%s: the GPU config warms up every batch size the scheduler can form", (model) => {
    const gpu = read(model, "configs/gpu.pbtxt");
    const [maxBatch] = numbers(gpu, "max_batch_size");
    const sizes = warmups(gpu).map((s) => s.batchSize);
    expect(sizes.sort((a, b) => a - b)).toEqual(Array.from({ length: maxBatch! }, (_, i) => i + 1));
    const inputs = tensors(gpu, "input");
    for (const sample of warmups(gpu)) {
      expect(sample.inputs.map((i) => [i.key, i.type])).toEqual(inputs.map((t) => [t.name, t.type]));
    }
  });

  it("enhance: the GPU config runs the float32 graph (its noise level is a float32 input) and warms it with a valid STRENGTH", () => {
    const gpu = read("enhance", "configs/gpu.pbtxt");
    expect(parameter(gpu, "ONNX_PRECISION")).toBe("fp32");
    for (const sample of warmups(gpu)) {
      const strength = sample.inputs.find((i) => i.key === "STRENGTH")!;
      expect(strength.source).toBe('input_data_file: "strength_0.75"');
    }
    // The SRMD denoiser is one session whatever the strength; 0.75 is within [0, 1], as model.py requires.
    expect(readModelBytes("enhance", "warmup/strength_0.75").readFloatLE(0)).toBe(0.75);
  });

  it.each(TILED)("%s: keeps the tiled edit contract the worker is written against", (model) => {
    const config = read(model, "config.pbtxt");
    expect(bare(config)).toMatch(new RegExp(`^name: "${model}"\\nbackend: "python"\\nmax_batch_size: 16$`, "m"));
    expect(tensors(config, "input")).toEqual([
      { name: "IMAGE", type: "TYPE_UINT8", dims: "-1,-1,3" },
      { name: "STRENGTH", type: "TYPE_FP32", dims: "1" },
    ]);
    expect(tensors(config, "output")).toEqual([{ name: "IMAGE_OUT", type: "TYPE_UINT8", dims: "-1,-1,3" }]);
  });

  it("remove_background: keeps the whole-photo contract the worker is written against", () => {
    const config = read("remove_background", "config.pbtxt");
    expect(bare(config)).toMatch(/^name: "remove_background"\nbackend: "python"\nmax_batch_size: 4$/m);
    expect(tensors(config, "input")).toEqual([{ name: "IMAGE", type: "TYPE_UINT8", dims: "1024,1024,3" }]);
    expect(tensors(config, "output")).toEqual([{ name: "MASK", type: "TYPE_UINT8", dims: "1024,1024,1" }]);
  });

  it.each(ALL.flatMap((model) => [[model, "config.pbtxt"], [model, "configs/gpu.pbtxt"]]))(
    "%s %s: batches dynamically within its max batch size, with the two priority levels, latest version only",
    (model, file) => {
      const config = read(model, file);
      const [maxBatch] = numbers(config, "max_batch_size");
      const preferred = numbers(config, "preferred_batch_size");
      expect(preferred.length).toBeGreaterThan(0);
      for (const size of preferred) {
        expect(size).toBeGreaterThanOrEqual(1);
        expect(size).toBeLessThanOrEqual(maxBatch!);
      }
      expect(numbers(config, "max_queue_delay_microseconds")[0]).toBeGreaterThanOrEqual(0);
      expect(bare(config)).toMatch(/priority_levels: 2\n\s*default_priority_level: 2/);
      expect(bare(config)).toMatch(/version_policy: \{ latest \{ num_versions: 1 \} \}/);
    },
  );

  it("remove_background: carries its AGPL-3.0 notice", () => {
    const notice = read("remove_background", "LICENSE-NOTICE.md");
    expect(notice).toMatch(/AGPL-3\.0/);
    expect(notice).toMatch(/@imgly\/background-removal-node@1\.4\.5/);
    expect(read("remove_background", "config.pbtxt")).toMatch(/LICENSE-NOTICE\.md/);
  });
});
