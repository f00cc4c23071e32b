/**
 * `npm run bench`: the benchmark, in sections, each printed as a table:
 * - `pipeline`: the local stack on free ports, a 512×512 photo through the signed-upload flow
 *   several times (×4 upscale), and where each job's time went, read from the job's own events;
 *   with, beside it, the accept latency at a steady rate and the pipeline against Triton alone
 *   at saturation (local/benchPipeline.ts);
 * - `models`: every edit's Triton model driven directly at concurrency 1, 4 and 16, dynamic
 *   batching on and off side by side (local/benchModels.ts);
 * - `memory`: the worker's peak RSS on the largest images (local/benchMemory.ts);
 * - `quality`: PSNR of the learned edits against classical filters on degraded photos
 *   (local/bench/benchQuality.ts);
 * - `priority`: interactive jobs' latency under a backlog of long jobs, the backlog sent as batch
 *   and as interactive (local/bench/benchPriority.ts);
 * - `cache`: a repeated request answered from the per-user result cache, against a model run;
 * - `ceiling`: one worker process against an instant model, the output megapixels a second it
 *   sustains by itself, where its time goes, and how that compares with one T4
 *   (local/bench/benchCeiling.ts).
 * `--json` also writes the figures to bench-results/.
 *
 * - `instant` (never by default): Triton alone serving the ceiling's instant model, tiles/s and
 *   output MP/s by tile size (`--tiles 128,256,512`, `--concurrency N`; local/bench/benchInstantTriton.ts).
 * Options: --only pipeline,models,memory,quality,priority,cache,ceiling (default all; also memory-formats, never by default), --runs N (default 5;
 * for ceiling, the times the set of photos is sent, default 2), --seconds S per model
 * measurement (default 4), --model-repository DIR (quality only: another checkout's models,
 * e.g. for a before/after), --enhance-strength S (quality only: one enhance strength for every
 * case instead of the documented ones), --worker-env K=V,K=V (ceiling only: the worker's
 * settings, e.g. TILE_SIZE=256), --instant-models (memory only: the ceiling's instant upscale), --probes N and --backlog N (priority only: interactive jobs
 * measured, default 6, and long jobs kept queued, default 4), --json.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Firestore } from "@google-cloud/firestore";
import sharp from "sharp";
import { benchCeiling, ceilingReport, ceilingRepository } from "./benchCeiling.js";
import { benchInstantTriton, instantTable } from "./benchInstantTriton.js";
import { benchMemory, FORMAT_MEMORY_CASES, MEMORY_CASES, memoryTable } from "./benchMemory.js";
import { benchModels, modelTable } from "./benchModels.js";
import { benchQuality, qualityTable } from "./benchQuality.js";
import { benchAcceptAndThroughput, reportAcceptAndThroughput } from "./benchPipeline.js";
import { benchPriorityAndCache, cacheTable, priorityTable } from "./benchPriority.js";
import { ensurePhotos } from "./photos.js";
import { emulatorIdToken } from "../auth/emulatorUsers.js";
import { startLocalStack } from "../stack/localStack.js";
import { REPO_ROOT } from "../stack/paths.js";

const args = process.argv.slice(2);
const runs = Number(args[args.indexOf("--runs") + 1] ?? 5) || 5;
const asJson = args.includes("--json");
const seconds = Number(args[args.indexOf("--seconds") + 1] ?? 4) || 4;
const modelRepository = args.includes("--model-repository") ? args[args.indexOf("--model-repository") + 1] : undefined;
const enhanceStrength = args.includes("--enhance-strength") ? Number(args[args.indexOf("--enhance-strength") + 1]) : undefined;
const only = args.includes("--only") ? new Set((args[args.indexOf("--only") + 1] ?? "").split(",")) : undefined;
const wanted = (section: string) => only === undefined || only.has(section);
const log = (line: string) => console.error(`[bench] ${line}`);

interface Sample {
  acceptMs: number;
  endToEndMs: number;
  uploadToQueuedMs: number;
  queueWaitMs: number;
  processingMs: number;
  inferenceMs: number;
  recordMs: number;
}

if (wanted("pipeline")) await pipelineSection();
if (wanted("models")) {
  const figures = await benchModels({ seconds, log });
  console.log(`\nEach edit's Triton model driven directly, dynamic batching on and off side by side (${seconds} s per cell):`);
  console.log(modelTable(figures));
  writeResults("models.json", figures);
}
if (wanted("memory")) {
  // --instant-models: Triton serves the ceiling's instant upscale; the worker's memory does not
  // depend on the model, and the cases take seconds instead of twenty minutes.
  const instant = args.includes("--instant-models");
  const figures = await benchMemory(MEMORY_CASES, log, instant ? ceilingRepository() : undefined);
  console.log(`\nWorker peak memory on the largest images${instant ? " (the worker ceiling's instant models)" : ""}:`);
  console.log(memoryTable(figures));
  writeResults("memory.json", figures);
}
if (only?.has("memory-formats")) {
  const figures = await benchMemory(FORMAT_MEMORY_CASES, log, ceilingRepository());
  console.log("\nWorker peak memory by output format (the worker ceiling's instant models):");
  console.log(memoryTable(figures));
  writeResults("memory-formats.json", figures);
}
if (wanted("quality")) {
  const figures = await benchQuality({ modelRepository, enhanceStrength, log });
  console.log(`\nLearned edits against classical filters, PSNR (dB) on luma, ${figures.crop}×${figures.crop} centre crops, ${figures.border}-px border cropped:`);
  console.log(qualityTable(figures));
  writeResults("quality.json", figures);
}
if (wanted("priority") || wanted("cache")) {
  const probes = args.includes("--probes") ? Number(args[args.indexOf("--probes") + 1]) : undefined;
  const backlog = args.includes("--backlog") ? Number(args[args.indexOf("--backlog") + 1]) : undefined;
  const figures = await benchPriorityAndCache({
    priority: wanted("priority"),
    cache: wanted("cache"),
    ...(probes === undefined ? {} : { probes }),
    ...(backlog === undefined ? {} : { backlog }),
    log,
  });
  if (figures.priority) {
    console.log(`\n${priorityTable(figures.priority)}`);
    writeResults("priority.json", figures.priority);
  }
  if (figures.cache) {
    console.log(`\n${cacheTable(figures.cache)}`);
    writeResults("cache.json", figures.cache);
  }
}

if (wanted("ceiling")) {
  const envArg = args.includes("--worker-env") ? (args[args.indexOf("--worker-env") + 1] ?? "") : "";
  const workerEnv = Object.fromEntries(envArg.split(",").filter(Boolean).map((pair) => [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)]));
  const figures = await benchCeiling({ repeats: args.includes("--runs") ? runs : 2, workerEnv, log });
  console.log(`\n${ceilingReport(figures)}`);
  writeResults("ceiling.json", figures);
}

if (only?.has("instant")) {
  const tiles = args.includes("--tiles") ? (args[args.indexOf("--tiles") + 1] ?? "").split(",").map(Number) : [128, 256, 512];
  const concurrency = args.includes("--concurrency") ? Number(args[args.indexOf("--concurrency") + 1]) : undefined;
  const figures = await benchInstantTriton({ tileSizes: tiles, seconds, ...(concurrency === undefined ? {} : { concurrency }), log });
  console.log("\nTriton alone, the ceiling's instant model (nearest-neighbour ×4 as upscale), our gRPC client, image MP = the tiles' cores:");
  console.log(instantTable(figures));
  writeResults("instant.json", figures);
}

function writeResults(file: string, figures: unknown): void {
  if (!asJson) return;
  const dir = join(REPO_ROOT, "bench-results");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, file), JSON.stringify(figures, null, 2));
  console.log(`\nwritten: ${join(dir, file)}`);
}

async function pipelineSection(): Promise<void> {
  // One user sends every request here: raise the per-user quotas so the benchmark measures the
  // pipeline, not the limiter (whose check still runs on every request).
  const stack = await startLocalStack({ log, functionsEnv: { QUOTA_REQUESTS_PER_MINUTE: "100000", QUOTA_JOBS_IN_FLIGHT: "10000" } });
  try {
    process.env.FIRESTORE_EMULATOR_HOST = stack.emulatorEnv.FIRESTORE_EMULATOR_HOST;
    const firestore = new Firestore({ projectId: stack.names.projectId });
    const token = await emulatorIdToken(stack.emulatorEnv.FIREBASE_AUTH_EMULATOR_HOST, "bench");
    const photo = await sharp(join(await ensurePhotos(), "astronaut.png")).png().toBuffer();
    const samples: Sample[] = [];
    // One warm-up job, not counted: the first call loads the model's sessions and the clients.
    for (let run = 0; run <= runs; run += 1) {
      const sample = await oneJob(stack.apiUrl, firestore, token, photo);
      if (run > 0) samples.push(sample);
      log(`run ${run === 0 ? "warm-up" : run}: ${Math.round(sample.endToEndMs)} ms end to end`);
    }
    // Items 1 (accept latency) and 3 (pipeline against Triton alone): local/benchPipeline.ts.
    const acceptAndThroughput = await benchAcceptAndThroughput({ stack, token, photo, firestore });
    await firestore.terminate();
    report(samples);
    reportAcceptAndThroughput(acceptAndThroughput, asJson);
  } finally {
    await stack.stop();
  }
}

async function oneJob(apiUrl: string, firestore: Firestore, token: string, photo: Buffer): Promise<Sample> {
  const began = performance.now();
  const response = await fetch(`${apiUrl}/v1/edits`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ operation: "upscale", contentType: "image/png", cache: false }),
  });
  const acceptMs = performance.now() - began;
  const created = (await response.json()) as { jobId: string; upload: { url: string; headers: Record<string, string> } };
  const done = new Promise<void>((resolve, reject) => {
    const stop = firestore.doc(`jobs/${created.jobId}`).onSnapshot((snapshot) => {
      const status = snapshot.data()?.status;
      if (status === "succeeded") {
        stop();
        resolve();
      } else if (status === "failed" || status === "canceled") {
        stop();
        reject(new Error(`job ${created.jobId} ${status}`));
      }
    });
  });
  await fetch(created.upload.url, { method: "PUT", headers: created.upload.headers, body: new Uint8Array(photo) });
  await done;
  const endToEndMs = performance.now() - began;
  const events = await firestore.collection(`jobs/${created.jobId}/events`).orderBy("seq").get();
  const at = new Map(events.docs.map((doc) => [doc.get("type") as string, Date.parse(doc.get("at") as string)]));
  const succeeded = events.docs.at(-1)?.get("data") as { processingMs: number; inferenceMs: number };
  const time = (type: string) => at.get(type) ?? Number.NaN;
  return {
    acceptMs,
    endToEndMs,
    uploadToQueuedMs: time("EditQueued") - time("EditRequested") - acceptMs,
    queueWaitMs: time("EditStarted") - time("EditQueued"),
    processingMs: succeeded.processingMs,
    inferenceMs: succeeded.inferenceMs,
    recordMs: time("EditSucceeded") - time("EditStarted") - succeeded.processingMs,
  };
}

function report(samples: Sample[]): void {
  const rows = Object.keys(samples[0] ?? {}) as Array<keyof Sample>;
  const stats = Object.fromEntries(
    rows.map((key) => {
      const values = samples.map((sample) => sample[key]).sort((a, b) => a - b);
      const median = values[Math.floor(values.length / 2)] ?? Number.NaN;
      return [key, { median: Math.round(median), min: Math.round(values[0] ?? Number.NaN), max: Math.round(values.at(-1) ?? Number.NaN) }];
    }),
  );
  const labels: Record<keyof Sample, string> = {
    acceptMs: "POST /v1/edits answered",
    endToEndMs: "end to end (POST to succeeded seen by a listener)",
    uploadToQueuedMs: "upload PUT + trigger to EditQueued (approx.)",
    queueWaitMs: "EditQueued to EditStarted (Pub/Sub to worker)",
    processingMs: "worker: read, decode, tiles, encode, write",
    inferenceMs: "  of which inside Triton calls",
    recordMs: "worker: recording EditSucceeded",
  };
  console.log(`\nUpscale ×4 of a 512×512 photo on the local stack, ${samples.length} runs (ms):`);
  console.log("| stage | median | min | max |\n|---|---:|---:|---:|");
  for (const key of rows) console.log(`| ${labels[key]} | ${stats[key]?.median} | ${stats[key]?.min} | ${stats[key]?.max} |`);
  writeResults("pipeline.json", { runs: samples.length, stats, samples });
}
