/**
 * The output encoders' own peak memory, one format and size per process: synthetic RGB bands of
 * 256 rows streamed through encodeOutput, and the process's VmHWM at the end.
 *   npx tsx local/bench/benchEncoderMemory.ts jpeg 16384   # 268 MP, streamed in strips
 *   npx tsx local/bench/benchEncoderMemory.ts webp 6324    # 40 MP, the WebP limit, encoded whole
 * (`--only memory-formats` measures the whole worker, but needs the ceiling's instant models.)
 */
import { readFileSync } from "node:fs";
import { encodeOutput } from "../../workers/edits/encodeOutput.js";
const [format, side] = [process.argv[2] as "jpeg" | "webp" | "png", Number(process.argv[3])];
const width = side, height = side, rows = 256;
async function* bands() {
  for (let y = 0; y < height; y += rows) {
    const n = Math.min(rows, height - y);
    const band = new Uint8Array(width * n * 3);
    for (let i = 0; i < band.length; i += 1) band[i] = (i * 7 + y) & 255;
    yield band;
  }
}
const began = performance.now();
let bytes = 0;
for await (const chunk of encodeOutput({ width, height, channels: 3 }, bands(), { format, quality: 90 }, { moveBands: true }).body) bytes += chunk.length;
const hwm = Number(/^VmHWM:\s+(\d+) kB/m.exec(readFileSync("/proc/self/status", "utf8"))?.[1]) / 1024;
console.log(`${format} ${width}x${height} (${((width * height) / 1e6).toFixed(0)} MP): ${(bytes / 1e6).toFixed(1)} MB out in ${((performance.now() - began) / 1000).toFixed(1)} s, peak RSS ${hwm.toFixed(0)} MB`);
