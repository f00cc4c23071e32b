import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { withoutBlock } from "../../local/bench/benchModels.js";

describe("the batching-off copy of a model config", () => {
  it("drops the whole dynamic_batching block, nested blocks included, and keeps the rest", () => {
    const config = readFileSync("triton/model_repository/upscale/config.pbtxt", "utf8");
    expect(config).toMatch(/^dynamic_batching \{/m);
    const stripped = withoutBlock(config, "dynamic_batching");
    expect(stripped).not.toMatch(/dynamic_batching|default_queue_policy|preferred_batch_size/);
    expect(stripped).toMatch(/^instance_group \[/m);
    expect(stripped).toMatch(/max_batch_size: 16/);
    expect(stripped).toMatch(/^version_policy/m);
  });

  it("leaves a config without the block as it is", () => {
    expect(withoutBlock("name: \"m\"\nmax_batch_size: 4\n", "dynamic_batching")).toBe("name: \"m\"\nmax_batch_size: 4\n");
  });
});
