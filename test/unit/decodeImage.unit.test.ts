import { crc32 } from "node:zlib";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { decodeImage } from "../../workers/edits/decodeImage.js";

/** A valid 8×8 PNG whose header claims `width`×`height`: a decompression bomb's header. */
async function claimingPng(width: number, height: number): Promise<Buffer> {
  const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: "#000" } }).png().toBuffer();
  png.writeUInt32BE(width, 16);
  png.writeUInt32BE(height, 20);
  png.writeUInt32BE(crc32(png.subarray(12, 29)), 29);
  return png;
}

describe("decoding an upload", () => {
  it("refuses a decompression bomb by its size, from the header alone", async () => {
    await expect(decodeImage(await claimingPng(20_000, 20_000), { maxInputPixels: 40_000_000 })).rejects.toMatchObject({
      code: "image_too_large",
      retryable: false,
      message: "The image is 20000×20000 (400.0 megapixels); the limit is 40 megapixels.",
    });
  });

  it("keeps transparency apart, and drops an alpha channel with nothing transparent in it", async () => {
    const rgba = Buffer.alloc(4 * 4 * 4, 255);
    rgba[3] = 0;
    const clear = await decodeImage(await sharp(rgba, { raw: { width: 4, height: 4, channels: 4 } }).png().toBuffer(), { maxInputPixels: 100 });
    expect(clear.rgb.length).toBe(48);
    expect(Array.from(clear.alpha ?? [])).toEqual([0, ...new Array(15).fill(255)]);
    const opaque = await decodeImage(await sharp(Buffer.alloc(64, 255), { raw: { width: 4, height: 4, channels: 4 } }).png().toBuffer(), { maxInputPixels: 100 });
    expect(opaque.alpha).toBeUndefined();
  });
});
