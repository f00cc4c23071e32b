import { afterEach, describe, expect, it } from "vitest";
import { bufferPool } from "../../workers/edits/bufferPool.js";

describe("buffer pool", () => {
  afterEach(() => bufferPool.clear());

  it("gives a buffer given back to the next taker of that size", () => {
    const first = bufferPool.take(4096);
    first[0] = 7;
    bufferPool.give(first);
    expect(bufferPool.freeBytes()).toBe(4096);
    const again = bufferPool.take(4096);
    expect(again.buffer).toBe(first.buffer);
    expect(bufferPool.freeBytes()).toBe(0);
    expect(bufferPool.take(4096).buffer).not.toBe(first.buffer);
  });

  it("does not hand out a buffer of another size", () => {
    bufferPool.give(new Uint8Array(1000));
    expect(bufferPool.take(999).byteLength).toBe(999);
    expect(bufferPool.freeBytes()).toBe(1000);
  });

  it("keeps only whole buffers: a view into a larger one may still be in use", () => {
    const whole = new Uint8Array(2048);
    bufferPool.give(whole.subarray(0, 1024));
    bufferPool.give(whole.subarray(1024));
    expect(bufferPool.freeBytes()).toBe(0);
  });

  it("holds at most 128 MiB free, dropping the size used longest ago", () => {
    const big = 48 << 20;
    bufferPool.give(new Uint8Array(big));
    bufferPool.give(new Uint8Array(big + 1));
    bufferPool.give(new Uint8Array(big + 2));
    expect(bufferPool.freeBytes()).toBe(2 * big + 3);
    expect(bufferPool.take(big).byteLength).toBe(big);
    expect(bufferPool.freeBytes()).toBe(2 * big + 3);
  });
});
