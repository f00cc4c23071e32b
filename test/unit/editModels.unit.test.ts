import { describe, expect, it } from "vitest";
import { checkParams } from "../../events/operations.js";
import { PERCEPTUAL_OVERLAP, editModel } from "../../workers/edits/editModels.js";

function upscaleParams(raw: Record<string, unknown>) {
  const checked = checkParams("upscale", raw);
  if (!checked.ok) throw new Error(checked.message);
  return checked.params;
}

describe("upscale's model parameter, as tensors", () => {
  it.each([
    [{}, 4, 0, 0],
    [{ scale: 2 }, 2, 0, 0],
    [{ model: "perceptual" }, 4, 1, PERCEPTUAL_OVERLAP],
    [{ scale: 2, model: "perceptual" }, 2, 1, PERCEPTUAL_OVERLAP],
  ])("%j sends SCALE %i and MODEL %i, with tiles overlapping at least %i px", (raw, scale, model, minOverlap) => {
    const tiled = editModel("upscale", upscaleParams(raw));
    if (tiled.kind !== "tiled") throw new Error("upscale is tiled");
    expect(tiled.paramInputs.map((t) => [t.name, t.datatype, t.shape, [...(t.data as Uint8Array)]])).toEqual([
      ["SCALE", "UINT8", [1, 1], [scale]],
      ["MODEL", "UINT8", [1, 1], [model]],
    ]);
    expect(tiled.minOverlap).toBe(minOverlap);
    expect(tiled.scale).toBe(scale);
  });

  it("keeps Real-ESRGAN's overlap under half the default 128-px tile", () => {
    expect(PERCEPTUAL_OVERLAP * 2).toBeLessThan(128);
  });
});
