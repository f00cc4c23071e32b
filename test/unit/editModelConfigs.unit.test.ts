import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

const repository = new URL("../../triton/model_repository/", import.meta.url);
const read = (model: string, path: string) => readFileSync(new URL(`${model}/${path}`, repository), "utf8");

/** The config without comments and blank lines. */
function bare(config: string): string {
  return config
    .split("\n")
    .map((l) => l.replace(/#.*$/, "").trimEnd())
    .filter((l) => l.trim() !== "")
    .join("\n");
}

function withoutInstanceGroup(config: string): { rest: string; instanceGroup: string } {
  const text = bare(config);
  const match = /instance_group \[[\s\S]*?\n\]/.exec(text);
  if (!match) throw new Error("no instance_group");
  return { rest: text.replace(match[0], ""), instanceGroup: match[0] };
}

/** name, data_type and dims of each tensor of an `input [...]` or `output [...]` block. */
function tensors(config: string, block: "input" | "output"): { name: string; type: string; dims: string }[] {
  const match = new RegExp(`^${block} \\[([\\s\\S]*?)\\n\\]`, "m").exec(bare(config));
  if (!match) throw new Error(`no ${block} block`);
  return [...match[1]!.matchAll(/name: "(\w+)"\s+data_type: (\w+)\s+dims: \[([^\]]*)\]/g)].map((m) => ({
    name: m[1]!,
    type: m[2]!,
    dims: m[3]!.replace(/\s+/g, ""),
  }));
}

function numbers(config: string, key: string): number[] {
  const match = new RegExp(`${key}: \\[([^\\]]*)\\]`).exec(bare(config)) ?? new RegExp(`${key}: (\\d+)`).exec(bare(config));
  if (!match) throw new Error(`no ${key}`);
  return match[1]!.split(",").map((v) => Number(v.trim()));
}

const TILED = ["enhance", "comic", "aged"] as const;
const ALL = [...TILED, "remove_background"] as const;

describe("edit model configs", () => {
  it.each(ALL)("%s: the GPU config differs from the CPU one only in its instance group", (model) => {
    const cpu = withoutInstanceGroup(read(model, "config.pbtxt"));
    const gpu = withoutInstanceGroup(read(model, "configs/gpu.pbtxt"));
    expect(gpu.rest).toBe(cpu.rest);
    expect(cpu.instanceGroup).toMatch(/kind: KIND_CPU/);
    expect(gpu.instanceGroup).toMatch(/kind: KIND_GPU/);
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

  it.each(ALL)("%s: batches dynamically within its max batch size, with the two priority levels, latest version only", (model) => {
    const config = read(model, "config.pbtxt");
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
  });

  it("remove_background: carries its AGPL-3.0 notice", () => {
    const notice = read("remove_background", "LICENSE-NOTICE.md");
    expect(notice).toMatch(/AGPL-3\.0/);
    expect(notice).toMatch(/@imgly\/background-removal-node@1\.4\.5/);
    expect(read("remove_background", "config.pbtxt")).toMatch(/LICENSE-NOTICE\.md/);
  });
});
