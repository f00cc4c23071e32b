import { describe, expect, it } from "vitest";
import { OPERATION_SPECS } from "../../events/operations.js";
import { fieldValue, paramField } from "../../web/src/paramFields.js";

describe("the web app asks for each parameter from the model table alone", () => {
  it("offers upscale's scale as a choice of 2 or 4, explained, defaulting to 4", () => {
    const field = paramField("scale", OPERATION_SPECS.upscale.params.scale!);
    expect(field).toEqual({ control: "choice", name: "scale", label: "Scale", help: "How many times larger each side becomes. Default: 4.", options: [2, 4], value: "4" });
    expect(fieldValue(field, "2")).toBe(2);
  });

  it("offers a number with a range as a slider with a sensible step", () => {
    const field = paramField("strength", OPERATION_SPECS.enhance.params.strength!);
    expect(field).toMatchObject({ control: "range", min: 0, max: 1, step: 0.01, value: "0.5" });
    expect(fieldValue(field, "0.75")).toBe(0.75);
    expect(paramField("tile_size", { kind: "integer", min: 64, max: 512, default: 128, description: "Tile side." })).toMatchObject({ control: "range", step: 1, label: "Tile size" });
  });

  it("handles shapes it has not seen: booleans as toggles, anything else as text", () => {
    const toggle = paramField("keep_alpha", { default: true, description: "Keep transparency." });
    expect(toggle).toMatchObject({ control: "toggle", value: true });
    expect(fieldValue(toggle, false)).toBe(false);
    const text = paramField("style", { kind: "enum-to-come", default: "soft" });
    expect(text).toMatchObject({ control: "text", value: "soft", help: "Default: soft." });
    expect(fieldValue(text, "3")).toBe(3);
    expect(fieldValue(text, "sharp")).toBe("sharp");
  });
});
