import { describe, expect, it } from "vitest";
import { EventSchemaError, parseEvent } from "../../events/editEvents.js";
import { checkParams } from "../../events/operations.js";

describe("parseEvent", () => {
  const at = "2026-11-22T10:00:00.000Z";

  it("accepts a stored event that matches its schema", () => {
    const event = parseEvent({ seq: 3, at, type: "EditQueued", schemaVersion: 1, data: { attempt: 1 } });
    expect(event).toEqual({ seq: 3, at, type: "EditQueued", schemaVersion: 1, data: { attempt: 1 } });
  });

  it.each([
    [{ seq: 1, at, type: "EditExploded", data: {} }, /unknown event type/],
    [{ seq: 1, at, type: "constructor", data: {} }, /unknown event type/],
    [{ seq: 1, at, type: "toString", data: {} }, /unknown event type/],
    [{ seq: 1, at, type: "EditQueued", schemaVersion: 2, data: { attempt: 1 } }, /newer than this code/],
    [{ seq: 1, at, type: "EditQueued", schemaVersion: 1, data: { attempt: "one" } }, /does not match its schema/],
  ])("refuses %j", (raw, message) => {
    expect(() => parseEvent(raw)).toThrow(EventSchemaError);
    expect(() => parseEvent(raw)).toThrow(message);
  });
});

describe("checkParams", () => {
  it.each([
    ["upscale", {}, { ok: true, params: { scale: 4, model: "psnr" } }],
    ["upscale", { scale: "2" }, { ok: true, params: { scale: 2, model: "psnr" } }],
    ["upscale", { model: "perceptual" }, { ok: true, params: { scale: 4, model: "perceptual" } }],
    ["upscale", { model: "esrgan" }, { ok: false, param: "model", message: "model must be one of psnr, perceptual" }],
    ["upscale", { model: 1 }, { ok: false, param: "model" }],
    ["upscale", { scale: 3 }, { ok: false, param: "scale" }],
    ["upscale", { scale: "big" }, { ok: false, param: "scale" }],
    ["upscale", { sharpness: 1 }, { ok: false, param: "sharpness" }],
    ["enhance", { strength: 1.5 }, { ok: false, param: "strength" }],
    ["enhance", { strength: 0.25 }, { ok: true, params: { strength: 0.25 } }],
  ] as const)("%s with %j gives %j", (operation, raw, expected) => {
    expect(checkParams(operation, raw)).toMatchObject(expected);
  });
});

describe("checkParams: only the operation's own parameter names", () => {
  it.each(["__proto__", "constructor", "toString", "hasOwnProperty", "valueOf"])("refuses a parameter named %s", (name) => {
    const raw = JSON.parse(`{"${name}": 2}`) as Record<string, unknown>;
    expect(checkParams("upscale", raw)).toEqual({ ok: false, param: name, message: `upscale has no parameter "${name}"` });
  });
});
