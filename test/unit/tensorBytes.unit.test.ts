import { describe, expect, it } from "vitest";
import { InferenceError } from "../../events/inferenceClient.js";
import { tensorFromBytes, tensorToBytes } from "../../adapters/triton/tensorBytes.js";

describe("tensor bytes", () => {
  it("sends a typed array's own bytes, little-endian, without copying, even from a subarray", () => {
    const backing = new Float32Array([9, 1.5, -2, 9]);
    const view = backing.subarray(1, 3);
    const bytes = tensorToBytes("X", "FP32", [2], view);
    expect([...bytes]).toEqual([0x00, 0x00, 0xc0, 0x3f, 0x00, 0x00, 0x00, 0xc0]);
    expect(bytes.buffer).toBe(backing.buffer);
    expect(bytes.byteOffset).toBe(4);
  });

  it("rejects data whose type or length does not match the tensor", () => {
    const wrongType = () => tensorToBytes("X", "INT32", [2], new Float32Array(2));
    const wrongLength = () => tensorToBytes("X", "UINT8", [2, 3], new Uint8Array(5));
    expect(wrongType).toThrow(InferenceError);
    expect(wrongType).toThrow(/INT32 needs a Int32Array, got Float32Array/);
    expect(wrongLength).toThrow(/shape \[2,3\] holds 6 elements, data has 5/);
  });

  it("reads FP32 and INT32 from bytes at an odd offset by copying them to an aligned buffer", () => {
    const message = new Uint8Array(1 + 8);
    new DataView(message.buffer).setFloat32(1, 3.25, true);
    new DataView(message.buffer).setFloat32(5, -0.5, true);
    const floats = tensorFromBytes("Y", "FP32", [2], message.subarray(1));
    expect([...floats]).toEqual([3.25, -0.5]);

    new DataView(message.buffer).setInt32(1, -7, true);
    new DataView(message.buffer).setInt32(5, 123456, true);
    const ints = tensorFromBytes("Y", "INT32", [1, 2], message.subarray(1));
    expect(ints).toBeInstanceOf(Int32Array);
    expect([...ints]).toEqual([-7, 123456]);
  });

  it("reads aligned FP32 bytes and UINT8 bytes as views", () => {
    const message = new Uint8Array(12);
    new DataView(message.buffer).setFloat32(4, 1, true);
    const floats = tensorFromBytes("Y", "FP32", [2], message.subarray(4));
    expect(floats.buffer).toBe(message.buffer);
    expect([...floats]).toEqual([1, 0]);
    const pixels = tensorFromBytes("Y", "UINT8", [3], message.subarray(5, 8));
    expect(pixels.buffer).toBe(message.buffer);
    expect(pixels.length).toBe(3);
  });

  it("rejects output bytes that do not fill the shape", () => {
    expect(() => tensorFromBytes("Y", "FP32", [3], new Uint8Array(8))).toThrow(/needs 12 bytes, got 8/);
  });
});
