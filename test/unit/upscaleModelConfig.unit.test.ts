import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

const dir = new URL("../../triton/model_repository/upscale/", import.meta.url);
const read = (path: string) => readFileSync(new URL(path, dir), "utf8");

/** The config without comments and blank lines, and with its instance_group block cut out. */
function withoutInstanceGroup(config: string): { rest: string; instanceGroup: string } {
  const lines = config.split("\n").map((l) => l.replace(/#.*$/, "").trimEnd()).filter((l) => l.trim() !== "");
  const text = lines.join("\n");
  const match = /instance_group \[[\s\S]*?\n\]/.exec(text);
  if (!match) throw new Error("no instance_group");
  return { rest: text.replace(match[0], ""), instanceGroup: match[0] };
}

describe("upscale model configs", () => {
  it("the GPU config differs from the CPU one only in its instance group", () => {
    const cpu = withoutInstanceGroup(read("config.pbtxt"));
    const gpu = withoutInstanceGroup(read("configs/gpu.pbtxt"));
    expect(gpu.rest).toBe(cpu.rest);
    expect(cpu.instanceGroup).toMatch(/kind: KIND_CPU/);
    expect(gpu.instanceGroup).toMatch(/kind: KIND_GPU/);
  });
});
