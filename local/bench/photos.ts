/**
 * Real photos for the tests and the benchmark: the public-domain images scikit-image ships (astronaut, chelsea,
 * coffee, ...), taken from Debian's python3-skimage package into `.local/photos/`.
 */
import { execFile } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import sharp from "sharp";
import { LOCAL_DIR } from "../stack/paths.js";

const execFileAsync = promisify(execFile);

const CACHE = join(LOCAL_DIR, "cache");
const PHOTOS = join(LOCAL_DIR, "photos");
const DATA_IN_PACKAGE = join("usr", "lib", "python3", "dist-packages", "skimage", "data");
/** Photos every caller can count on. */
const REQUIRED = ["astronaut.png", "chelsea.png", "coffee.png"];

/** The directory holding the photos' PNGs; downloads and unpacks the package on first use. */
export async function ensurePhotos(): Promise<string> {
  if (REQUIRED.every((name) => existsSync(join(PHOTOS, name)))) return PHOTOS;
  mkdirSync(CACHE, { recursive: true });
  let deb = findDeb();
  if (!deb) {
    try {
      await execFileAsync("apt-get", ["download", "python3-skimage"], { cwd: CACHE });
    } catch {
      await execFileAsync("apt-get", ["update"]);
      await execFileAsync("apt-get", ["download", "python3-skimage"], { cwd: CACHE });
    }
    deb = findDeb();
    if (!deb) throw new Error(`apt-get download python3-skimage left no .deb in ${CACHE}`);
  }
  const unpacked = join(CACHE, "python3-skimage");
  rmSync(unpacked, { recursive: true, force: true });
  await execFileAsync("dpkg-deb", ["-x", deb, unpacked]);
  const data = join(unpacked, DATA_IN_PACKAGE);
  mkdirSync(PHOTOS, { recursive: true });
  for (const name of readdirSync(data).filter((n) => n.endsWith(".png"))) {
    copyFileSync(join(data, name), join(PHOTOS, name));
  }
  rmSync(unpacked, { recursive: true, force: true });
  const missing = REQUIRED.filter((name) => !existsSync(join(PHOTOS, name)));
  if (missing.length > 0) throw new Error(`python3-skimage has no ${missing.join(", ")}`);
  return PHOTOS;
}

function findDeb(): string | undefined {
  const name = readdirSync(CACHE).find((n) => n.startsWith("python3-skimage_") && n.endsWith(".deb"));
  return name && join(CACHE, name);
}

export interface Crop {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** A crop of a photo as RGB bytes, row-major [height, width, 3]. */
export async function readPhotoTile(photo: string, crop: Crop): Promise<Uint8Array> {
  const dir = await ensurePhotos();
  const { data, info } = await sharp(join(dir, photo))
    .extract(crop)
    .removeAlpha()
    .toColourspace("srgb")
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3 || info.width !== crop.width || info.height !== crop.height) {
    throw new Error(`${photo}: crop came out ${info.width}x${info.height}x${info.channels}`);
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
