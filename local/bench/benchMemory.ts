/**
 * The worker's peak memory on the largest images: a local stack with no worker of its own, then
 * for each case a fresh worker process, one job through the signed-upload flow, and the
 * process's high-water mark of resident memory (VmHWM in /proc/<pid>/status) once the job has
 * ended. The input is a real photo enlarged to the case's size and sent as a JPEG.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import sharp from "sharp";
import type { EditParams, Operation } from "../../events/operations.js";
import type { OutputFormat } from "../../events/outputFormat.js";
import { emulatorIdToken } from "../auth/emulatorUsers.js";
import { startLocalStack } from "../stack/localStack.js";
import { ensurePhotos } from "./photos.js";

export interface MemoryCase {
  label: string;
  operation: Operation;
  params: EditParams;
  width: number;
  height: number;
  /** Worker settings the case needs, e.g. a raised output limit. */
  workerEnv?: Record<string, string>;
  /** The result's format; absent, PNG. */
  output?: OutputFormat;
}

export interface MemoryFigures extends MemoryCase {
  status: string;
  peakRssMb: number;
  seconds: number;
  outputMegapixels: number;
  outputMb: number;
}

export const MEMORY_CASES: MemoryCase[] = [
  {
    label: "4096×4096 photo, upscale ×4 (268 megapixels out: the output limit raised for this case)",
    operation: "upscale",
    params: { scale: 4 },
    width: 4096,
    height: 4096,
    workerEnv: { MAX_OUTPUT_PIXELS: "300000000" },
  },
  {
    label: "6324×6324 photo (40 megapixels, the input limit), upscale ×2 (160 megapixels, the output limit)",
    operation: "upscale",
    params: { scale: 2 },
    width: 6324,
    height: 6324,
  },
];

/**
 * The streamed JPEG at the largest output, and WebP (encoded whole) at its own limit,
 * MAX_WEBP_OUTPUT_PIXELS: `npm run bench -- --only memory-formats`, with the worker ceiling's
 * instant models (the worker's memory does not depend on the model).
 */
export const FORMAT_MEMORY_CASES: MemoryCase[] = [
  { ...(MEMORY_CASES[0] as MemoryCase), label: "4096×4096 photo, upscale ×4 as JPEG q90 (268 MP, streamed in strips)", output: { format: "jpeg", quality: 90 } },
  { label: "3162×3162 photo, upscale ×2 as WebP q90 (40 MP, the WebP limit; encoded whole)", operation: "upscale", params: { scale: 2 }, width: 3162, height: 3162, output: { format: "webp", quality: 90 } },
];

/** `modelRepository`: another repository for Triton, e.g. the worker ceiling's instant upscale, to measure the worker's memory without waiting on the CPU model. */
export async function benchMemory(cases: MemoryCase[], log: (line: string) => void, modelRepository?: string): Promise<MemoryFigures[]> {
  const stack = await startLocalStack({ withoutWorker: true, log, ...(modelRepository === undefined ? {} : { modelRepository }) });
  try {
    const token = await emulatorIdToken(stack.emulatorEnv.FIREBASE_AUTH_EMULATOR_HOST, "bench-memory");
    const photo = join(await ensurePhotos(), "astronaut.png");
    const figures: MemoryFigures[] = [];
    for (const [index, one] of cases.entries()) {
      const input = await sharp(photo).resize(one.width, one.height, { kernel: "lanczos3" }).jpeg({ quality: 92 }).toBuffer();
      const worker = await stack.startWorker(`memory-worker-${index + 1}`, one.workerEnv ?? {});
      try {
        log(`${one.label}: ${(input.length / 1e6).toFixed(1)} MB in, worker PID ${worker.pid}`);
        const began = performance.now();
        const job = await runJob(stack.apiUrl, token, one, input);
        const seconds = (performance.now() - began) / 1000;
        const peakRssMb = highWaterMb(worker.pid);
        const output = job.output ?? { width: 0, height: 0, sizeBytes: 0 };
        figures.push({
          ...one,
          status: job.status + (job.error ? `: ${job.error.message}` : ""),
          peakRssMb,
          seconds,
          outputMegapixels: (output.width * output.height) / 1e6,
          outputMb: output.sizeBytes / 1e6,
        });
        log(`${one.label}: ${job.status} in ${seconds.toFixed(0)} s, peak RSS ${peakRssMb} MB`);
      } finally {
        await worker.stop();
      }
    }
    return figures;
  } finally {
    await stack.stop();
  }
}

interface JobView {
  status: string;
  output?: { width: number; height: number; sizeBytes: number };
  error?: { message: string };
}

async function runJob(apiUrl: string, token: string, one: MemoryCase, input: Buffer): Promise<JobView> {
  const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
  const created = (await (
    await fetch(`${apiUrl}/v1/edits`, {
      method: "POST",
      headers,
      body: JSON.stringify({ operation: one.operation, params: one.params, contentType: "image/jpeg", cache: false, ...(one.output ? { output: one.output } : {}) }),
    })
  ).json()) as { jobId: string; upload: { url: string; headers: Record<string, string> } };
  const put = await fetch(created.upload.url, { method: "PUT", headers: created.upload.headers, body: new Uint8Array(input) });
  if (!put.ok) throw new Error(`upload failed: ${put.status}`);
  const deadline = Date.now() + 30 * 60_000;
  for (;;) {
    const job = (await (await fetch(`${apiUrl}/v1/edits/${created.jobId}`, { headers })).json()) as JobView;
    if (["succeeded", "failed", "canceled"].includes(job.status)) return job;
    if (Date.now() > deadline) throw new Error(`job ${created.jobId} still ${job.status} after 30 minutes`);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
}

/** The process's peak resident memory so far, in MB. */
function highWaterMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1]);
  return Math.round(kb / 1024);
}

export function memoryTable(figures: MemoryFigures[]): string {
  const lines = ["| case | result | time s | output MP | output PNG MB | worker peak RSS MB |", "|---|---|---:|---:|---:|---:|"];
  for (const f of figures) {
    lines.push(`| ${f.label} | ${f.status} | ${f.seconds.toFixed(0)} | ${f.outputMegapixels.toFixed(0)} | ${f.outputMb.toFixed(0)} | ${f.peakRssMb} |`);
  }
  return lines.join("\n");
}
