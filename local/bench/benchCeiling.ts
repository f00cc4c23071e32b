/**
 * `npm run bench -- --only ceiling`: the worker's own ceiling. Triton serves, as `upscale`, a
 * model that costs next to nothing (nearest-neighbour in NumPy, triton/bench_models/
 * upscale_instant, with upscale's tensor contract), so that one worker process, kept saturated
 * with real photos of several sizes through the real API, Pub/Sub, storage and Firestore of the
 * local stack, shows how many output megapixels a second it can turn out by itself. Beside the
 * rate: where the worker's time went, stage by stage (its own /metrics), and the CPU each of its
 * threads used (/proc/<pid>/task), so that the bottleneck is named. The rate is set against one
 * T4's rate for upscale ×4 (`T4_UPSCALE_X4`).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { Firestore } from "@google-cloud/firestore";
import sharp from "sharp";
import { emulatorIdToken } from "../auth/emulatorUsers.js";
import { startLocalStack } from "../stack/localStack.js";
import { LOCAL_DIR, REPO_ROOT } from "../stack/paths.js";
import { encodePng } from "../../workers/edits/pngStream.js";
import { tritonCpuTicks } from "./benchInstantTriton.js";
import { untilSucceeded } from "./benchPipeline.js";
import { ensurePhotos } from "./photos.js";

/**
 * One T4's output rate for upscale ×4, in output megapixels a second, until one is measured on
 * a T4 (triton/bench_models.py). Derived from the H100 measurement in docs/benchmarks.md: 695
 * tiles a second, 128² in and 512² out, unbatched at concurrency 16, i.e. 695 × 512² = 182 MP/s,
 * times T4 over H100 from NVIDIA's datasheets. Which H100 was measured is not recorded, so the
 * ratio is taken against the slower one, the H100 PCIe, and the larger of the two ratios that
 * bound a model like this one: FP32 8.1 / 51 TFLOPS = 0.159, memory bandwidth 320 / 2000 GB/s
 * = 0.160. (Against the H100 SXM: 8.1 / 67 = 0.121, 320 / 3350 = 0.096; FP16 tensor cores
 * 65 / 756 = 0.086.) The larger ratio gives the faster T4, which the worker has to out-run:
 * 182 × 0.160 = 29.2 MP/s. It counts a tile's whole 512² output, overlap included, which is
 * also generous to the T4: the worker's figures count the image's own pixels only.
 */
export const T4_UPSCALE_X4 = {
  outputMegapixelsPerSecond: (695 * 512 * 512 * 0.16) / 1e6,
  source: "H100 695 tiles/s × 512² = 182 MP/s, × 0.16 (T4/H100 PCIe memory bandwidth 320/2000 GB/s ≈ FP32 8.1/51 TFLOPS)",
};

/** The photos, at the sizes the worker is driven with; each job is upscale ×4. */
const INPUTS = [
  { photo: "chelsea.png", label: "chelsea 451×300 PNG" },
  { photo: "coffee.png", label: "coffee 600×400 PNG" },
  { photo: "astronaut.png", label: "astronaut 512×512 PNG" },
  { photo: "coffee.png", label: "coffee 1200×800 JPEG", width: 1200, height: 800 },
  { photo: "astronaut.png", label: "astronaut 1024×1024 JPEG", width: 1024, height: 1024 },
];

export interface CeilingOptions {
  /** Times the set of photos is sent, all at once, for one measurement (default 2). */
  repeats?: number;
  /** Worker settings to measure with, e.g. TRITON_MAX_IN_FLIGHT or TILE_SIZE. */
  workerEnv?: Record<string, string>;
  log: (line: string) => void;
}

export interface CeilingFigures {
  jobs: number;
  inputs: string[];
  workerEnv: Record<string, string>;
  outputMegapixels: number;
  seconds: number;
  outputMegapixelsPerSecond: number;
  t4MegapixelsPerSecond: number;
  t4Source: string;
  /** Ceiling over one T4; target ≥ 1.5. */
  ratioToT4: number;
  /** Stage seconds summed over the jobs (stages of jobs running side by side overlap). */
  stages: Record<string, number>;
  /** CPU seconds of the worker's threads over the measurement, by thread kind. */
  cpu: Record<string, number>;
  /** CPU seconds a second of the worker's threads, by kind, while it waited for work before the jobs. */
  idleCpuPerSecond: Record<string, number>;
  /** CPU seconds of Triton (the server and its Python model processes) over the measurement. */
  tritonCpuSeconds: number;
  /** The PNG encoder alone, in this process, on photo-like output (see measureEncoder). */
  encoder: { megapixels: number; seconds: number; cpuSeconds: number };
  loadAverageBefore: number;
  loadAverageAfter: number;
  cores: number;
  bottleneck: string;
}

export async function benchCeiling({ repeats = 2, workerEnv = {}, log }: CeilingOptions): Promise<CeilingFigures> {
  const stack = await startLocalStack({
    log,
    modelRepository: ceilingRepository(),
    withoutWorker: true,
    logDir: join(LOCAL_DIR, "logs", "bench-ceiling"),
    functionsEnv: { QUOTA_REQUESTS_PER_MINUTE: "100000", QUOTA_JOBS_IN_FLIGHT: "10000" },
  });
  try {
    process.env.FIRESTORE_EMULATOR_HOST = stack.emulatorEnv.FIRESTORE_EMULATOR_HOST;
    const firestore = new Firestore({ projectId: stack.names.projectId });
    const token = await emulatorIdToken(stack.emulatorEnv.FIREBASE_AUTH_EMULATOR_HOST, "bench-ceiling");
    const worker = await stack.startWorker("worker-1", workerEnv);
    const inputs = await Promise.all(INPUTS.map(encodeInput));
    const submit = async (input: Input): Promise<string> => {
      const response = await fetch(`${stack.apiUrl}/v1/edits?operation=upscale&params.scale=4&cache=false`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": input.contentType },
        body: new Uint8Array(input.bytes),
      });
      if (response.status !== 202) throw new Error(`POST /v1/edits answered ${response.status}: ${await response.text()}`);
      return ((await response.json()) as { jobId: string }).jobId;
    };
    // Warm-up, not counted: the first job of each size loads the clients and the model's stub.
    log("ceiling: warm-up, one job of each photo");
    await Promise.all((await Promise.all(inputs.map(submit))).map((jobId) => untilSucceeded(firestore, jobId)));

    // The worker's CPU while it waits for work (Pub/Sub's streaming pull, timers, metrics): on a
    // loaded machine a run takes longer, and this part of its CPU grows with the wall time.
    const idleBefore = threadCpu(worker.pid);
    const idleBegan = performance.now();
    await new Promise((resolve) => setTimeout(resolve, IDLE_SAMPLE_MS));
    const idleAfter = threadCpu(worker.pid);
    const idleSeconds = (performance.now() - idleBegan) / 1000;
    const idleCpuPerSecond: Record<string, number> = {};
    for (const [kind, ticks] of Object.entries(idleAfter)) idleCpuPerSecond[kind] = (ticks - (idleBefore[kind] ?? 0)) / CLOCK_TICKS / idleSeconds;

    const loadAverageBefore = loadavg()[0] as number;
    const metricsBefore = await stageSums(stack.metricsUrls.worker);
    const cpuBefore = threadCpu(worker.pid);
    const tritonBefore = tritonCpuTicks(stack.ports.tritonGrpc);
    const began = performance.now();
    log(`ceiling: ${inputs.length * repeats} jobs at once, worker PID ${worker.pid}`);
    const jobIds = await Promise.all(Array.from({ length: repeats }, () => inputs).flat().map(submit));
    await Promise.all(jobIds.map((jobId) => untilSucceeded(firestore, jobId)));
    const seconds = (performance.now() - began) / 1000;
    const cpuAfter = threadCpu(worker.pid);
    const tritonAfter = tritonCpuTicks(stack.ports.tritonGrpc);
    const metricsAfter = await stageSums(stack.metricsUrls.worker);
    const loadAverageAfter = loadavg()[0] as number;

    let outputMegapixels = 0;
    let inferenceSeconds = 0;
    for (const jobId of jobIds) {
      const state = (await firestore.doc(`jobs/${jobId}`).get()).data() as { output: { width: number; height: number } };
      outputMegapixels += (state.output.width * state.output.height) / 1e6;
      const succeeded = await firestore.collection(`jobs/${jobId}/events`).where("type", "==", "EditSucceeded").get();
      inferenceSeconds += ((succeeded.docs[0]?.get("data") as { inferenceMs: number }).inferenceMs ?? 0) / 1000;
    }
    await firestore.terminate();

    const stages: Record<string, number> = { "waiting on Triton (some tile call open)": inferenceSeconds };
    for (const [stage, sum] of Object.entries(metricsAfter)) stages[stage] = sum - (metricsBefore[stage] ?? 0);
    const cpu: Record<string, number> = {};
    for (const [kind, ticks] of Object.entries(cpuAfter)) cpu[kind] = (ticks - (cpuBefore[kind] ?? 0)) / CLOCK_TICKS;
    const rate = outputMegapixels / seconds;
    const encoder = await measureEncoder();
    const t4 = T4_UPSCALE_X4.outputMegapixelsPerSecond;
    return {
      jobs: jobIds.length,
      inputs: INPUTS.map((input) => input.label),
      workerEnv,
      outputMegapixels: round(outputMegapixels, 1),
      seconds: round(seconds, 2),
      outputMegapixelsPerSecond: round(rate, 1),
      t4MegapixelsPerSecond: round(t4, 1),
      t4Source: T4_UPSCALE_X4.source,
      ratioToT4: round(rate / t4, 2),
      stages: roundAll(stages),
      cpu: roundAll(cpu),
      idleCpuPerSecond: roundAll(idleCpuPerSecond, 4),
      loadAverageBefore: round(loadAverageBefore, 1),
      loadAverageAfter: round(loadAverageAfter, 1),
      cores: cpus().length,
      tritonCpuSeconds: round((tritonAfter - tritonBefore) / CLOCK_TICKS, 2),
      encoder,
      bottleneck: nameBottleneck(cpu, seconds, (tritonAfter - tritonBefore) / CLOCK_TICKS),
    };
  } finally {
    await stack.stop();
  }
}

/** The table and the one line the issue asks for. */
export function ceilingReport(f: CeilingFigures): string {
  const perMp = (value: number) => round((value * 1000) / f.outputMegapixels, 1);
  const workerCpu = Object.values(f.cpu).reduce((sum, value) => sum + value, 0);
  const mainCpu = Object.entries(f.cpu).find(([kind]) => kind.startsWith("main thread"))?.[1] ?? 0;
  const idleCpu = Object.values(f.idleCpuPerSecond).reduce((sum, value) => sum + value, 0);
  const idleMain = Object.entries(f.idleCpuPerSecond).find(([kind]) => kind.startsWith("main thread"))?.[1] ?? 0;
  const lines = [
    `Worker ceiling: one worker process, ${f.jobs} upscale ×4 jobs sent at once (${f.inputs.join(", ")}), Triton serving nearest-neighbour as \`upscale\`;` +
      ` ${f.cores} cores, load average ${f.loadAverageBefore} before and ${f.loadAverageAfter} after${Object.keys(f.workerEnv).length > 0 ? `; worker env ${JSON.stringify(f.workerEnv)}` : ""}:`,
    "| | value |",
    "|---|---:|",
    `| output | ${f.outputMegapixels} MP in ${f.seconds} s |`,
    `| **sustained** | **${f.outputMegapixelsPerSecond} output MP/s** |`,
    `| one T4, upscale ×4 | ${f.t4MegapixelsPerSecond} MP/s (${f.t4Source}) |`,
    "",
    "Where the worker's time went (stage seconds summed over jobs; jobs run side by side, so stages overlap):",
    "| stage | seconds | ms per output MP |",
    "|---|---:|---:|",
    ...Object.entries(f.stages).map(([stage, seconds]) => `| ${STAGE_LABELS[stage] ?? stage} | ${seconds} | ${perMp(seconds)} |`),
    "",
    "The worker's CPU by thread (from /proc/<pid>/task; the share is of the wall time, 1 = one core):",
    "| threads | CPU s | share | ms per output MP |",
    "|---|---:|---:|---:|",
    ...Object.entries(f.cpu).map(([kind, seconds]) => `| ${kind} | ${seconds} | ${round(seconds / f.seconds, 2)} | ${perMp(seconds)} |`),
    `| Triton (server and model processes) | ${f.tritonCpuSeconds} | ${round(f.tritonCpuSeconds / f.seconds, 2)} | ${perMp(f.tritonCpuSeconds)} |`,
    "",
    `The worker's own cost: ${perMp(workerCpu)} CPU ms per output MP, of which ${perMp(mainCpu)} on the event loop: with cores of its own,` +
      ` ${round(f.outputMegapixels / Math.max(mainCpu, 1e-9), 1)} MP/s before its event loop is full, ${round(f.outputMegapixels / Math.max(workerCpu, 1e-9), 1)} MP/s per core it is given.`,
    `While waiting for work the worker used ${round(idleCpu * 1000, 1)} CPU ms a second (${round(idleMain * 1000, 1)} on the event loop): over this run's` +
      ` ${f.seconds} s, ${perMp(idleCpu * f.seconds)} of the ms per output MP above; without it, ${perMp(workerCpu - idleCpu * f.seconds)} (${perMp(mainCpu - idleMain * f.seconds)} on the event loop).`,
    `The PNG encoder alone on photo-like output (a photo enlarged ×4 with Lanczos, ${f.encoder.megapixels} MP, in this process):` +
      ` ${round(f.encoder.megapixels / f.encoder.seconds, 1)} MP/s, ${round((f.encoder.cpuSeconds * 1000) / f.encoder.megapixels, 1)} CPU ms per MP` +
      " (nearest-neighbour output filters and deflates faster than a real model's).",
    "",
    `bottleneck: ${f.bottleneck}`,
    "",
    `worker ceiling: ${f.outputMegapixelsPerSecond} output MP/s (upscale x4) = ${f.ratioToT4} x one T4`,
  ];
  return lines.join("\n");
}

const STAGE_LABELS: Record<string, string> = {
  download: "download (storage read)",
  decode: "decode (sharp)",
  inference: "inference (first tile sent to last back, per job)",
  tiling: "tiling (cutting tiles, event loop)",
  stitching: "stitching (placing tile outputs, event loop)",
  filtering: "PNG Paeth filter (filter threads)",
  encode: "encode",
  upload: "upload (the streamed write: spans the edit)",
  events: "event appends and reads (Firestore)",
};

interface Input {
  bytes: Buffer;
  contentType: string;
}

async function encodeInput(input: (typeof INPUTS)[number]): Promise<Input> {
  const file = join(await ensurePhotos(), input.photo);
  if (input.width === undefined) return { bytes: readFileSync(file), contentType: "image/png" };
  const bytes = await sharp(file).resize(input.width, input.height, { kernel: "lanczos3" }).jpeg({ quality: 92 }).toBuffer();
  return { bytes, contentType: "image/jpeg" };
}

/**
 * A model repository of links: every model of triton/model_repository, except `upscale`, which
 * is the instant model. The links keep the models' own links to the shared Python working.
 */
export function ceilingRepository(): string {
  const models = join(REPO_ROOT, "triton", "model_repository");
  const dir = join(LOCAL_DIR, "bench", "ceiling-models");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const entry of readdirSync(models, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const target = entry.name === "upscale" ? join(REPO_ROOT, "triton", "bench_models", "upscale_instant") : join(models, entry.name);
    symlinkSync(target, join(dir, entry.name));
  }
  if (!existsSync(join(dir, "upscale", "config.pbtxt"))) throw new Error(`the instant model is missing from ${dir}`);
  return dir;
}

/** `image_edit_stage_seconds_sum` by stage, from the worker's /metrics. */
async function stageSums(metricsUrl: string): Promise<Record<string, number>> {
  const text = await (await fetch(metricsUrl)).text();
  const sums: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const match = /^image_edit_stage_seconds_sum\{[^}]*stage="([^"]+)"[^}]*\} ([0-9.e+-]+)/.exec(line);
    if (match) sums[match[1] as string] = (sums[match[1] as string] ?? 0) + Number(match[2]);
  }
  return sums;
}

const CLOCK_TICKS = 100;
/** How long the idle worker's CPU is sampled for, before the jobs. */
const IDLE_SAMPLE_MS = 5_000;

/**
 * CPU ticks (user + system) of the process's threads, grouped by kind: the main thread (all the
 * JavaScript), libuv's pool (zlib's deflate, sharp's decode, file work), V8's helpers (garbage
 * collection, compiling), and the rest.
 */
function threadCpu(pid: number): Record<string, number> {
  const kinds: Record<string, number> = {};
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
    } catch {
      continue; // the thread ended
    }
    const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    const kind =
      tid === String(pid)
        ? "main thread (JavaScript: tiling, stitching, filtering, gRPC, HTTP, Firestore)"
        : name.startsWith("libuv-worker")
          ? "libuv pool (deflate, sharp decode)"
          : name.startsWith("V8")
            ? "V8 helpers (GC, compiler)"
            : `other (${name.replace(/[0-9]+$/, "")})`;
    kinds[kind] = (kinds[kind] ?? 0) + ticks;
  }
  return kinds;
}

/**
 * The encoder on its own, on output like a real model's: nearest-neighbour output repeats each
 * pixel 16 times, which the Paeth filter predicts and zlib compresses far faster than a real
 * upscale. A photo enlarged ×4 with Lanczos stands in for that, encoded in bands as the worker does.
 */
async function measureEncoder(): Promise<{ megapixels: number; seconds: number; cpuSeconds: number }> {
  const side = 2048;
  const { data } = await sharp(join(await ensurePhotos(), "astronaut.png"))
    .removeAlpha()
    .resize(side, side, { kernel: "lanczos3" })
    .raw()
    .toBuffer({ resolveWithObject: true });
  const pixels = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const rowsPerBand = 416;
  async function* bands(): AsyncGenerator<Uint8Array> {
    for (let top = 0; top < side; top += rowsPerBand) yield pixels.slice(top * side * 3, Math.min(side, top + rowsPerBand) * side * 3);
  }
  const encodeAll = async () => {
    for await (const chunk of encodePng({ width: side, height: side, channels: 3 }, bands(), { moveBands: true })) void chunk;
  };
  await encodeAll(); // warm-up
  const cpuBefore = process.cpuUsage();
  const began = performance.now();
  const repeats = 3;
  for (let i = 0; i < repeats; i += 1) await encodeAll();
  const cpu = process.cpuUsage(cpuBefore);
  return {
    megapixels: round((repeats * side * side) / 1e6, 1),
    seconds: round((performance.now() - began) / 1000, 2),
    cpuSeconds: round((cpu.user + cpu.system) / 1e6, 2),
  };
}

function nameBottleneck(cpu: Record<string, number>, seconds: number, tritonCpu: number): string {
  const entries = Object.entries(cpu).sort((a, b) => b[1] - a[1]);
  const total = entries.reduce((sum, [, value]) => sum + value, 0);
  const main = entries.find(([kind]) => kind.startsWith("main thread"))?.[1] ?? 0;
  const busiest = entries[0];
  const mainShare = main / seconds;
  const where =
    mainShare > 0.85
      ? `the event loop: the main thread was busy ${Math.round(mainShare * 100)}% of the wall time`
      : `not the worker: its main thread was busy ${Math.round(mainShare * 100)}% of the wall time and it used ${round(total / seconds, 2)} cores in all;` +
        ` Triton used ${round(tritonCpu / seconds, 2)}; the rest of the machine's ${cpus().length} cores went to the emulators and other load`;
  return `${where}; most CPU in ${busiest?.[0] ?? "?"} (${round((busiest?.[1] ?? 0) / Math.max(total, 1e-9) * 100, 0)}% of the worker's)`;
}

function round(value: number, digits = 0): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

function roundAll(values: Record<string, number>, digits = 2): Record<string, number> {
  return Object.fromEntries(Object.entries(values).map(([key, value]) => [key, round(value, digits)]));
}
