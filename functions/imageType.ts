/** The image types people may upload, and a check of what the bytes really are. */

export const ACCEPTED_CONTENT_TYPES: readonly string[] = ["image/jpeg", "image/png", "image/webp"];

/** The content type the leading bytes announce, or undefined when they are none we accept. */
export function sniffImageType(bytes: Uint8Array): string | undefined {
  const starts = (...signature: number[]) => signature.every((byte, index) => bytes[index] === byte);
  if (starts(0xff, 0xd8, 0xff)) return "image/jpeg";
  if (starts(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return "image/png";
  if (starts(0x52, 0x49, 0x46, 0x46) && bytes[8] === 0x57 && bytes[9] === 0x45 && bytes[10] === 0x42 && bytes[11] === 0x50) {
    return "image/webp";
  }
  return undefined;
}

/**
 * True for an animated PNG (APNG): an `acTL` chunk before the first `IDAT`. Its first frame would
 * decode as a still image, which is not what the person sent, so it is refused instead.
 */
export function isAnimatedPng(bytes: Uint8Array): boolean {
  let offset = 8;
  while (offset + 8 <= bytes.length) {
    const length = ((bytes[offset] ?? 0) << 24) | ((bytes[offset + 1] ?? 0) << 16) | ((bytes[offset + 2] ?? 0) << 8) | (bytes[offset + 3] ?? 0);
    const type = String.fromCharCode(...bytes.subarray(offset + 4, offset + 8));
    if (type === "acTL") return true;
    if (type === "IDAT" || length < 0) return false;
    offset += 12 + length;
  }
  return false;
}
