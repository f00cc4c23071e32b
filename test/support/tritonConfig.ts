/** Reading Triton's config.pbtxt text in the model config tests, without a protobuf parser. */
import { readFileSync } from "node:fs";

const repository = new URL("../../triton/model_repository/", import.meta.url);

export const readModelFile = (model: string, path: string) => readFileSync(new URL(`${model}/${path}`, repository), "utf8");
export const readModelBytes = (model: string, path: string) => readFileSync(new URL(`${model}/${path}`, repository));

/** The config without comments and blank lines. */
export function bare(config: string): string {
  return config
    .split("\n")
    .map((l) => l.replace(/#.*$/, "").trimEnd())
    .filter((l) => l.trim() !== "")
    .join("\n");
}

/** Every top-level block that opens with `opening` (its first line, at column 0) up to its closing line at column 0. */
export function blocks(config: string, opening: string): string[] {
  const escaped = opening.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return [...bare(config).matchAll(new RegExp(`^${escaped}[^\\n]*\\n[\\s\\S]*?^[\\]}]\\n?`, "gm"))].map((m) => m[0]);
}

/**
 * What a GPU config must share with the CPU one: the config with the blocks and lines a GPU may
 * set its own way taken out (instance group, warm-up, parameters, and the batcher's preferred
 * sizes and queue delay). Left in: name, backend, max_batch_size, inputs, outputs, the priority
 * levels and queue policy, the version policy.
 */
export function sharedPart(config: string): string {
  let text = bare(config) + "\n";
  for (const opening of ["instance_group [", "model_warmup [", "parameters: {"]) {
    for (const block of blocks(text, opening)) text = text.replace(block, "");
  }
  return text
    .split("\n")
    .filter((l) => !/^\s*(preferred_batch_size|max_queue_delay_microseconds):/.test(l))
    .join("\n")
    .trim();
}

/** name, data_type and dims of each tensor of an `input [...]` or `output [...]` block. */
export function tensors(config: string, block: "input" | "output"): { name: string; type: string; dims: string }[] {
  const match = new RegExp(`^${block} \\[([\\s\\S]*?)\\n\\]`, "m").exec(bare(config));
  if (!match) throw new Error(`no ${block} block`);
  return [...match[1]!.matchAll(/name: "(\w+)"\s+data_type: (\w+)\s+dims: \[([^\]]*)\]/g)].map((m) => ({
    name: m[1]!,
    type: m[2]!,
    dims: m[3]!.replace(/\s+/g, ""),
  }));
}

export function numbers(config: string, key: string): number[] {
  const text = bare(config);
  const match = new RegExp(`${key}: \\[([^\\]]*)\\]`).exec(text) ?? new RegExp(`${key}: (\\d+)`).exec(text);
  if (!match) throw new Error(`no ${key}`);
  return match[1]!.split(",").map((v) => Number(v.trim()));
}

/** A `parameters` entry's string value, or undefined. */
export function parameter(config: string, key: string): string | undefined {
  for (const block of blocks(config, "parameters: {")) {
    const match = new RegExp(`key: "${key}"\\s+value: \\{ string_value: "([^"]*)" \\}`).exec(block);
    if (match) return match[1];
  }
  return undefined;
}

export interface WarmupSample {
  name: string;
  batchSize: number;
  inputs: { key: string; type: string; dims: string; source: string }[];
}

/** The `model_warmup` entries: batch size and, per input, its type, dims and data source. */
export function warmups(config: string): WarmupSample[] {
  const [block] = blocks(config, "model_warmup [");
  if (!block) return [];
  return [...block.matchAll(/\{\n\s*name: "([^"]*)"\n\s*batch_size: (\d+)\n([\s\S]*?)\n\s*\}(?=,|\n\])/g)].map((m) => ({
    name: m[1]!,
    batchSize: Number(m[2]),
    inputs: [...m[3]!.matchAll(/key: "(\w+)" value: \{ data_type: (\w+) dims: \[([^\]]*)\] (random_data: true|input_data_file: "[^"]*")/g)].map((i) => ({
      key: i[1]!,
      type: i[2]!,
      dims: i[3]!.replace(/\s+/g, ""),
      source: i[4]!,
    })),
  }));
}
