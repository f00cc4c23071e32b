/** The image types people may upload, and a check of what the bytes really are. */

export const ACCEPTED_CONTENT_TYPES: readonly string[] = ["image/jpeg", "image/png", "image/webp", "image/avif"];

/** The content types of HEIC/HEIF photos, which are named so that they get `HEIC_REFUSAL`. */
export const HEIF_CONTENT_TYPES: readonly string[] = ["image/heic", "image/heif", "image/heic-sequence", "image/heif-sequence"];

/**
 * Why a HEIC/HEIF photo is refused, and what to send instead. The prebuilt libvips in sharp
 * reads a HEIC header but has no HEVC decoder (docs/api.md, "Phone formats").
 */
export const HEIC_REFUSAL =
  "HEIC/HEIF photos (the iPhone camera's default) cannot be decoded here: their HEVC codec is not licensed in this service. Send a JPEG, PNG, WebP or AVIF instead; on an iPhone, choose Settings › Camera › Formats › Most Compatible, or export the photo as JPEG";

/** The content type the leading bytes announce, or undefined when they are none we accept. */
export function sniffImageType(bytes: Uint8Array): string | undefined {
  const starts = (...signature: number[]) => signature.every((byte, index) => bytes[index] === byte);
  if (starts(0xff, 0xd8, 0xff)) return "image/jpeg";
  if (starts(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return "image/png";
  if (starts(0x52, 0x49, 0x46, 0x46) && bytes[8] === 0x57 && bytes[9] === 0x45 && bytes[10] === 0x42 && bytes[11] === 0x50) {
    return "image/webp";
  }
  if (isoBrands(bytes).some((brand) => AVIF_BRANDS.includes(brand))) return "image/avif";
  return undefined;
}

const AVIF_BRANDS = ["avif", "avis"];
const HEVC_BRANDS = ["heic", "heix", "hevc", "hevx", "heim", "heis", "hevm", "hevs"];

/**
 * True for a HEIC/HEIF file (an ISO media file whose brands name HEVC, or the generic HEIF
 * brands without AVIF's), which `sniffImageType` does not accept.
 */
export function isHeif(bytes: Uint8Array): boolean {
  const brands = isoBrands(bytes);
  if (brands.some((brand) => AVIF_BRANDS.includes(brand))) return false;
  return brands.some((brand) => HEVC_BRANDS.includes(brand) || brand === "mif1" || brand === "msf1");
}

/** The major and compatible brands of an ISO base media file's leading `ftyp` box; empty for anything else. */
function isoBrands(bytes: Uint8Array): string[] {
  if (bytes.length < 16 || String.fromCharCode(...bytes.subarray(4, 8)) !== "ftyp") return [];
  const size = (((bytes[0] ?? 0) << 24) | ((bytes[1] ?? 0) << 16) | ((bytes[2] ?? 0) << 8) | (bytes[3] ?? 0)) >>> 0;
  const end = Math.min(size, bytes.length);
  const brands = [String.fromCharCode(...bytes.subarray(8, 12))];
  for (let offset = 16; offset + 4 <= end; offset += 4) brands.push(String.fromCharCode(...bytes.subarray(offset, offset + 4)));
  return brands;
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
