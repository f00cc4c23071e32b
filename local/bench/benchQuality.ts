/**
 * `npm run bench -- --only quality`: do the learned edits beat what a classical filter does?
 *
 * On real photos (the public-domain scikit-image set, local/bench/photos.ts), a centre crop of each is
 * degraded in a known way, restored by the edit's model on a real local Triton (the whole crop
 * in one request, as the tiled worker's result equals the untiled one: the seam tests), and by
 * classical filters (sharp, i.e. libvips), and each result is scored against the clean crop:
 * PSNR on luma (BT.601 Y, as MATLAB's rgb2ycbcr), a 4-pixel border cropped, as the
 * super-resolution literature measures.
 * - ×4 and ×2 super-resolution of a bicubic downscale: `upscale` against bicubic and Lanczos-3;
 * - Gaussian noise σ = 15, 25, 50 (seeded): `enhance` at strength σ / 50 (its documented scale)
 *   against Gaussian blurs (σ 0.6 and 1), a 3×3 median and the noisy input;
 * - JPEG at quality 10, 15, 30: `enhance` at strength JPEG_STRENGTH against the JPEG itself and
 *   a light blur (σ 0.6).
 * Background removal is left out: the photos have no reference masks, and none can be made
 * honestly without a person drawing them.
 *
 * The photos are split in two: TUNED, which the models and strengths were chosen on, and
 * HELD_OUT, which nothing was chosen on; the table shows both means.
 */
import { join } from "node:path";
import sharp, { type Sharp } from "sharp";
import type { InferenceClient, Tensor } from "../../events/inferenceClient.js";
import { createTritonClient } from "../../adapters/triton/tritonClient.js";
import { ensurePhotos } from "./photos.js";
import { LOCAL_DIR } from "../stack/paths.js";
import { freePort } from "../stack/processes.js";
import { DEFAULT_MODEL_REPOSITORY, startTriton } from "../stack/triton.js";

export const TUNED = ["astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png", "camera.png"];
export const HELD_OUT = ["coins.png", "moon.png", "grass.png", "brick.png", "ihc.png"];
/** Side of the clean centre crop, a multiple of 4. */
export const CROP = 192;
export const BORDER = 4;
/** The enhance strength for JPEG artefacts (docs/models.md). */
export const JPEG_STRENGTH = 0.3;

export interface Image {
  width: number;
  height: number;
  /** RGB, row-major. */
  pixels: Uint8Array;
}

export type CaseName = "sr-x4" | "sr-x2" | "noise-15" | "noise-25" | "noise-50" | "jpeg-10" | "jpeg-15" | "jpeg-30";
export const CASES: CaseName[] = ["sr-x4", "sr-x2", "noise-15", "noise-25", "noise-50", "jpeg-10", "jpeg-15", "jpeg-30"];

export interface QualityFigures {
  repository: string;
  crop: number;
  border: number;
  /** case -> method -> photo -> PSNR (dB). */
  psnr: Record<string, Record<string, Record<string, number>>>;
  /** The model's method name in each case. */
  model: Record<string, string>;
  /** Milliseconds of each model call on this machine (one crop per call), by case. */
  modelMs: Record<string, number[]>;
}

export interface QualityOptions {
  modelRepository?: string;
  /** One enhance strength for every noise and JPEG case (e.g. another checkout's own scale). */
  enhanceStrength?: number;
  log: (line: string) => void;
}

export async function benchQuality(options: QualityOptions): Promise<QualityFigures> {
  const repository = options.modelRepository ?? DEFAULT_MODEL_REPOSITORY;
  const [grpcPort, httpPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
  options.log(`starting Triton on ${repository}`);
  const server = await startTriton({
    grpcPort,
    httpPort,
    metricsPort,
    modelRepository: repository,
    logFile: join(LOCAL_DIR, "logs", "bench-triton-quality.log"),
  });
  const client = createTritonClient({ url: `127.0.0.1:${grpcPort}`, defaultTimeoutMs: 600_000 });
  const figures: QualityFigures = { repository, crop: CROP, border: BORDER, psnr: {}, model: {}, modelMs: {} };
  const record = (name: CaseName, method: string, photo: string, restored: Image, clean: Image) => {
    const byMethod = (figures.psnr[name] ??= {});
    (byMethod[method] ??= {})[photo] = lumaPsnr(restored, clean, BORDER);
  };
  const timed = async (name: CaseName, call: () => Promise<Image>) => {
    const began = performance.now();
    const image = await call();
    (figures.modelMs[name] ??= []).push(performance.now() - began);
    return image;
  };
  try {
    const dir = await ensurePhotos();
    for (const photo of [...TUNED, ...HELD_OUT]) {
      const clean = await centreCrop(join(dir, photo), CROP);
      options.log(`${photo}: ${CROP}×${CROP} centre crop`);
      for (const scale of [4, 2] as const) {
        const name: CaseName = scale === 4 ? "sr-x4" : "sr-x2";
        const small = await resize(clean, CROP / scale, "cubic");
        figures.model[name] = "upscale";
        record(name, "upscale", photo, await timed(name, () => upscale(client, small, scale)), clean);
        record(name, "bicubic", photo, enlarge(small, scale, cubic, 2), clean);
        record(name, "lanczos3", photo, enlarge(small, scale, lanczos3, 3), clean);
      }
      for (const sigma of [15, 25, 50] as const) {
        const name = `noise-${sigma}` as CaseName;
        const noisy = addNoise(clean, sigma, seedOf(photo, sigma));
        const strength = options.enhanceStrength ?? sigma / 50;
        figures.model[name] = `enhance s=${strength}`;
        record(name, figures.model[name], photo, await timed(name, () => enhance(client, noisy, strength)), clean);
        record(name, "noisy input", photo, noisy, clean);
        record(name, "gaussian σ0.6", photo, await filter(noisy, (s) => s.blur(0.6)), clean);
        record(name, "gaussian σ1", photo, await filter(noisy, (s) => s.blur(1)), clean);
        record(name, "median 3×3", photo, await filter(noisy, (s) => s.median(3)), clean);
      }
      for (const quality of [10, 15, 30] as const) {
        const name = `jpeg-${quality}` as CaseName;
        const jpeg = await jpegRoundTrip(clean, quality);
        const strength = options.enhanceStrength ?? JPEG_STRENGTH;
        figures.model[name] = `enhance s=${strength}`;
        record(name, figures.model[name], photo, await timed(name, () => enhance(client, jpeg, strength)), clean);
        record(name, "the JPEG", photo, jpeg, clean);
        record(name, "gaussian σ0.6", photo, await filter(jpeg, (s) => s.blur(0.6)), clean);
      }
    }
    return figures;
  } finally {
    client.close();
    await server.stop();
  }
}

// --- Scores ------------------------------------------------------------------------------

/** PSNR (dB) of BT.601 luma (MATLAB rgb2ycbcr's Y, 16..235), `border` pixels cropped per side. */
export function lumaPsnr(a: Image, b: Image, border: number): number {
  if (a.width !== b.width || a.height !== b.height) throw new Error(`sizes differ: ${a.width}×${a.height} and ${b.width}×${b.height}`);
  let sum = 0;
  let count = 0;
  for (let y = border; y < a.height - border; y++) {
    for (let x = border; x < a.width - border; x++) {
      const i = (y * a.width + x) * 3;
      const d = luma(a.pixels, i) - luma(b.pixels, i);
      sum += d * d;
      count += 1;
    }
  }
  const mse = sum / count;
  return mse === 0 ? Number.POSITIVE_INFINITY : 10 * Math.log10((255 * 255) / mse);
}

function luma(p: Uint8Array, i: number): number {
  return 16 + (65.481 * (p[i] ?? 0) + 128.553 * (p[i + 1] ?? 0) + 24.966 * (p[i + 2] ?? 0)) / 255;
}

// --- Degradations and classical filters ----------------------------------------------------

async function centreCrop(path: string, side: number): Promise<Image> {
  const meta = await sharp(path).metadata();
  const left = Math.floor(((meta.width ?? 0) - side) / 2);
  const top = Math.floor(((meta.height ?? 0) - side) / 2);
  return toImage(sharp(path).extract({ left, top, width: side, height: side }).removeAlpha().toColourspace("srgb"));
}

function raw(image: Image): Sharp {
  return sharp(image.pixels, { raw: { width: image.width, height: image.height, channels: 3 } });
}

async function toImage(pipeline: Sharp): Promise<Image> {
  const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`expected RGB, got ${info.channels} channels`);
  return { width: info.width, height: info.height, pixels: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/** The bicubic (anti-aliased) reduction every super-resolution case starts from: libvips' cubic. */
function resize(image: Image, side: number, kernel: "cubic"): Promise<Image> {
  return toImage(raw(image).resize(side, side, { kernel, fit: "fill" }));
}

/** Keys' cubic convolution, a = -0.5 (MATLAB's imresize "bicubic"). */
export function cubic(x: number): number {
  const t = Math.abs(x);
  if (t <= 1) return 1.5 * t ** 3 - 2.5 * t ** 2 + 1;
  if (t < 2) return -0.5 * t ** 3 + 2.5 * t ** 2 - 4 * t + 2;
  return 0;
}

export function lanczos3(x: number): number {
  if (x === 0) return 1;
  if (Math.abs(x) >= 3) return 0;
  const px = Math.PI * x;
  return (3 * Math.sin(px) * Math.sin(px / 3)) / (px * px);
}

/**
 * Enlarges by an integer factor with a separable kernel of the given support, pixel centres
 * aligned (x_in = (x_out + 0.5) / factor - 0.5), edges clamped, weights normalised. (libvips,
 * and so sharp, enlarges with its bicubic interpolator whatever the kernel, so Lanczos is ours.)
 */
export function enlarge(image: Image, factor: number, kernel: (x: number) => number, support: number): Image {
  const pass = (src: Float64Array, w: number, h: number, horizontal: boolean): Float64Array => {
    const outW = horizontal ? w * factor : w;
    const outH = horizontal ? h : h * factor;
    const out = new Float64Array(outW * outH * 3);
    const length = horizontal ? w : h;
    for (let o = 0; o < (horizontal ? outW : outH); o++) {
      const centre = (o + 0.5) / factor - 0.5;
      const first = Math.floor(centre) - support + 1;
      const taps: Array<[number, number]> = [];
      let total = 0;
      for (let i = first; i < first + 2 * support; i++) {
        const weight = kernel(centre - i);
        taps.push([Math.min(length - 1, Math.max(0, i)), weight]);
        total += weight;
      }
      for (let a = 0; a < (horizontal ? outH : outW); a++) {
        for (let c = 0; c < 3; c++) {
          let v = 0;
          for (const [i, weight] of taps) v += weight * (src[((horizontal ? a * w + i : i * w + a) * 3) + c] ?? 0);
          out[((horizontal ? a * outW + o : o * outW + a) * 3) + c] = v / total;
        }
      }
    }
    return out;
  };
  const wide = pass(Float64Array.from(image.pixels), image.width, image.height, true);
  const both = pass(wide, image.width * factor, image.height, false);
  const pixels = new Uint8Array(both.length);
  for (let i = 0; i < both.length; i++) pixels[i] = Math.max(0, Math.min(255, Math.round(both[i] ?? 0)));
  return { width: image.width * factor, height: image.height * factor, pixels };
}

function filter(image: Image, apply: (pipeline: Sharp) => Sharp): Promise<Image> {
  return toImage(apply(raw(image)));
}

async function jpegRoundTrip(image: Image, quality: number): Promise<Image> {
  return toImage(sharp(await raw(image).jpeg({ quality }).toBuffer()));
}

/** Additive Gaussian noise of standard deviation `sigma` levels, rounded and clipped to 0..255. */
export function addNoise(image: Image, sigma: number, seed: number): Image {
  const random = lcg(seed);
  const pixels = new Uint8Array(image.pixels.length);
  for (let i = 0; i < pixels.length; i++) {
    const u1 = Math.max(random(), 1e-12);
    const u2 = random();
    const normal = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    pixels[i] = Math.max(0, Math.min(255, Math.round((image.pixels[i] ?? 0) + sigma * normal)));
  }
  return { ...image, pixels };
}

function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function seedOf(photo: string, sigma: number): number {
  let h = sigma;
  for (const c of photo) h = (Math.imul(h, 31) + c.charCodeAt(0)) >>> 0;
  return h;
}

// --- The models on Triton ----------------------------------------------------------------

function imageTensor(image: Image): Tensor {
  return { name: "IMAGE", datatype: "UINT8", shape: [1, image.height, image.width, 3], data: image.pixels };
}

async function upscale(client: InferenceClient, image: Image, scale: number): Promise<Image> {
  const result = await client.infer({
    model: "upscale",
    inputs: [imageTensor(image), { name: "SCALE", datatype: "UINT8", shape: [1, 1], data: Uint8Array.of(scale) }],
    outputs: ["IMAGE_OUT"],
  });
  return fromResult(result.outputs[0], image.width * scale, image.height * scale);
}

async function enhance(client: InferenceClient, image: Image, strength: number): Promise<Image> {
  const result = await client.infer({
    model: "enhance",
    inputs: [imageTensor(image), { name: "STRENGTH", datatype: "FP32", shape: [1, 1], data: Float32Array.of(strength) }],
    outputs: ["IMAGE_OUT"],
  });
  return fromResult(result.outputs[0], image.width, image.height);
}

function fromResult(output: Tensor | undefined, width: number, height: number): Image {
  if (!output || !(output.data instanceof Uint8Array) || output.data.length !== width * height * 3) {
    throw new Error(`expected a ${width}×${height} RGB image, got ${JSON.stringify(output?.shape)}`);
  }
  return { width, height, pixels: output.data };
}

// --- The table ---------------------------------------------------------------------------

function mean(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

/** Mean PSNR of one method over some photos. */
export function meanPsnr(figures: QualityFigures, name: string, method: string, photos: string[]): number {
  const byPhoto = figures.psnr[name]?.[method] ?? {};
  return mean(photos.map((photo) => byPhoto[photo] ?? Number.NaN));
}

export function qualityTable(figures: QualityFigures): string {
  const lines = [
    `| case | method | tuned photos (${TUNED.length}) | held out (${HELD_OUT.length}) | model − best classical, held out |`,
    "|---|---|---:|---:|---:|",
  ];
  for (const name of CASES) {
    const methods = Object.keys(figures.psnr[name] ?? {});
    const model = figures.model[name] ?? "";
    const classical = methods.filter((m) => m !== model && m !== "noisy input" && m !== "the JPEG");
    const baselines = methods.filter((m) => m !== model);
    const bestHeld = Math.max(...baselines.map((m) => meanPsnr(figures, name, m, HELD_OUT)));
    for (const method of [model, ...baselines]) {
      const tuned = meanPsnr(figures, name, method, TUNED);
      const held = meanPsnr(figures, name, method, HELD_OUT);
      const gain = method === model ? `${signed(held - bestHeld)} dB` : "";
      lines.push(`| ${method === model ? name : ""} | ${method}${classical.includes(method) ? "" : method === model ? " (model)" : ""} | ${tuned.toFixed(2)} | ${held.toFixed(2)} | ${gain} |`);
    }
  }
  const times = CASES.map((name) => `${name} ${Math.round(median(figures.modelMs[name] ?? []))} ms`).join(", ");
  lines.push("", `Median model call per ${CROP}×${CROP} crop (the input of ×4 and ×2 is ${CROP / 4} and ${CROP / 2} px): ${times}.`);
  return lines.join("\n");
}

function signed(value: number): string {
  return `${value >= 0 ? "+" : "−"}${Math.abs(value).toFixed(2)}`;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}
