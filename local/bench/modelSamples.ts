/**
 * `npx tsx local/modelSamples.ts`: one sample of each edit model on the astronaut photo, served by
 * a real Triton server of its own, written to `.local/samples/<model>.png` to look at. The tiled
 * models get the whole 512x512 photo as one tile (their operators are local, so that is what the
 * worker's stitched tiles give, borders aside) at the API's default strength; remove_background
 * gets the photo stretched to 1024x1024, and its mask, scaled back, becomes the PNG's alpha.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import sharp from "sharp";
import { createTritonClient } from "../../adapters/triton/tritonClient.js";
import { LOCAL_DIR } from "../stack/paths.js";
import { ensurePhotos } from "./photos.js";
import { freePort } from "../stack/processes.js";
import { startTriton } from "../stack/triton.js";

const SAMPLES = join(LOCAL_DIR, "samples");
const DEFAULT_STRENGTHS = { enhance: 0.5, comic: 0.7, aged: 0.7 } as const;

const photo = join(await ensurePhotos(), "astronaut.png");
const { data, info } = await sharp(photo).removeAlpha().toColourspace("srgb").raw().toBuffer({ resolveWithObject: true });
const pixels = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
const [grpcPort, httpPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
const triton = await startTriton({ grpcPort, httpPort, metricsPort, logFile: join(LOCAL_DIR, "logs", "triton-samples.log") });
const client = createTritonClient({ url: `127.0.0.1:${grpcPort}`, defaultTimeoutMs: 600_000 });
mkdirSync(SAMPLES, { recursive: true });
try {
  for (const [model, strength] of Object.entries(DEFAULT_STRENGTHS)) {
    const result = await client.infer({
      model,
      inputs: [
        { name: "IMAGE", datatype: "UINT8", shape: [1, info.height, info.width, 3], data: pixels },
        { name: "STRENGTH", datatype: "FP32", shape: [1, 1], data: Float32Array.of(strength) },
      ],
      outputs: ["IMAGE_OUT"],
    });
    const out = result.outputs[0]!.data as Uint8Array;
    const file = join(SAMPLES, `${model}.png`);
    await sharp(Buffer.from(out), { raw: { width: info.width, height: info.height, channels: 3 } }).png().toFile(file);
    console.log(`${model} (strength ${strength}): ${file}`);
  }

  const resized = await sharp(photo).removeAlpha().toColourspace("srgb").resize(1024, 1024, { fit: "fill" }).raw().toBuffer();
  const result = await client.infer({
    model: "remove_background",
    inputs: [{ name: "IMAGE", datatype: "UINT8", shape: [1, 1024, 1024, 3], data: new Uint8Array(resized) }],
    outputs: ["MASK"],
  });
  const mask = await sharp(Buffer.from(result.outputs[0]!.data as Uint8Array), { raw: { width: 1024, height: 1024, channels: 1 } })
    .resize(info.width, info.height, { fit: "fill" })
    .extractChannel(0)
    .raw()
    .toBuffer();
  if (mask.length !== info.width * info.height) throw new Error(`the scaled mask has ${mask.length} bytes`);
  const file = join(SAMPLES, "remove_background.png");
  await sharp(Buffer.from(pixels), { raw: { width: info.width, height: info.height, channels: 3 } })
    .joinChannel(mask, { raw: { width: info.width, height: info.height, channels: 1 } })
    .png()
    .toFile(file);
  console.log(`remove_background: ${file}`);
} finally {
  client.close();
  await triton.stop();
}
