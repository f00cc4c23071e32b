/**
 * The side-by-side crops in docs/models.md ("Real-ESRGAN: the perceptual upscale"): a 256×256
 * crop of skimage's astronaut, reduced ×4 with bicubic (as the quality bench does), and enlarged
 * back ×4 by bicubic, by SRMD (model=psnr) and by Real-ESRGAN x4plus (model=perceptual) on a
 * local Triton. Writes docs/images/upscale-*.png and prints each one's luma PSNR and time.
 *
 *     npx tsx local/bench/upscaleCrops.ts
 */
import { join } from "node:path";
import sharp, { type Sharp } from "sharp";
import { createTritonClient } from "../../adapters/triton/tritonClient.js";
import { UPSCALE_MODELS, type UpscaleModel } from "../../events/operations.js";
import { REPO_ROOT, LOCAL_DIR } from "../stack/paths.js";
import { freePort } from "../stack/processes.js";
import { DEFAULT_MODEL_REPOSITORY, startTriton } from "../stack/triton.js";
import { BORDER, cubic, enlarge, lumaPsnr, type Image } from "./benchQuality.js";
import { ensurePhotos } from "./photos.js";

const CROP = { left: 150, top: 40, width: 256, height: 256 };
const SCALE = 4;
const OUT = join(REPO_ROOT, "docs", "images");

async function toImage(pipeline: Sharp): Promise<Image> {
  const { data, info } = await pipeline.removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, pixels: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

async function save(name: string, image: Image): Promise<void> {
  const raw = { width: image.width, height: image.height, channels: 3 as const };
  await sharp(image.pixels, { raw }).png({ compressionLevel: 9 }).toFile(join(OUT, `upscale-${name}.png`));
}

const clean = await toImage(sharp(join(await ensurePhotos(), "astronaut.png")).extract(CROP));
const small = await toImage(sharp(clean.pixels, { raw: { width: 256, height: 256, channels: 3 } }).resize(256 / SCALE, 256 / SCALE, { kernel: "cubic", fit: "fill" }));
const [grpcPort, httpPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
const server = await startTriton({
  grpcPort,
  httpPort,
  metricsPort,
  modelRepository: DEFAULT_MODEL_REPOSITORY,
  logFile: join(LOCAL_DIR, "logs", "upscale-crops-triton.log"),
});
const client = createTritonClient({ url: `127.0.0.1:${grpcPort}`, defaultTimeoutMs: 600_000 });
try {
  await save("original", clean);
  const bicubic = enlarge(small, SCALE, cubic, 2);
  await save("bicubic", bicubic);
  console.log(`bicubic: ${lumaPsnr(bicubic, clean, BORDER).toFixed(2)} dB`);
  for (const model of UPSCALE_MODELS) {
    const call = () =>
      client.infer({
        model: "upscale",
        inputs: [
          { name: "IMAGE", datatype: "UINT8", shape: [1, small.height, small.width, 3], data: small.pixels },
          { name: "SCALE", datatype: "UINT8", shape: [1, 1], data: Uint8Array.of(SCALE) },
          { name: "MODEL", datatype: "UINT8", shape: [1, 1], data: Uint8Array.of(UPSCALE_MODELS.indexOf(model as UpscaleModel)) },
        ],
        outputs: ["IMAGE_OUT"],
      });
    await call(); // the first call of a shape pays onnxruntime's set-up
    const began = performance.now();
    const result = await call();
    const ms = performance.now() - began;
    const image = { width: 256, height: 256, pixels: result.outputs[0]?.data as Uint8Array };
    await save(model === "psnr" ? "srmd" : "realesrgan", image);
    console.log(`${model}: ${lumaPsnr(image, clean, BORDER).toFixed(2)} dB, ${ms.toFixed(0)} ms for a ${small.width}×${small.height} input`);
  }
} finally {
  client.close();
  await server.stop();
}
