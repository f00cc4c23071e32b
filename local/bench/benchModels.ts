/**
 * The models' own benchmark: every edit's Triton model driven directly, at concurrency 1, 4 and
 * 16, with Triton's dynamic batching on and off side by side in one run. Two servers run from
 * the same model files: the repository as it is, and a copy whose configs have the
 * `dynamic_batching` block taken out (Triton then runs each request alone). They are measured
 * in turn, never at once, so they do not compete for the cores.
 *
 * A request is what the worker sends: one 128×128 tile with the edit's default params, or the
 * 1024×1024 photo of background removal.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import type { InferenceClient, InferenceRequest } from "../../events/inferenceClient.js";
import { OPERATION_SPECS, checkParams, type Operation } from "../../events/operations.js";
import { MASK_SIDE } from "../../workers/edits/backgroundEdit.js";
import { editModel } from "../../workers/edits/editModels.js";
import { createTritonClient } from "../../adapters/triton/tritonClient.js";
import { ensurePhotos } from "./photos.js";
import { LOCAL_DIR } from "../stack/paths.js";
import { freePort, type RunningProcess } from "../stack/processes.js";
import { DEFAULT_MODEL_REPOSITORY, ensureTriton, startTriton } from "../stack/triton.js";

export const CONCURRENCY = [1, 4, 16] as const;
const TILE = 128;

export interface LoadFigures {
  requests: number;
  seconds: number;
  /** Requests (tiles or photos) per second. */
  throughput: number;
  p50: number;
  p95: number;
  p99: number;
}

export interface ModelFigures {
  operation: Operation;
  model: string;
  request: string;
  rows: Array<{ concurrency: number; batching: LoadFigures; noBatching: LoadFigures; ratio: number }>;
}

export interface ModelBenchOptions {
  operations?: Operation[];
  /** Each measurement lasts at least this long and at least 2 × concurrency requests. */
  seconds: number;
  log: (line: string) => void;
}

export async function benchModels(options: ModelBenchOptions): Promise<ModelFigures[]> {
  const install = await ensureTriton();
  const operations = options.operations ?? Object.values(OPERATION_SPECS).filter((spec) => spec.available).map((spec) => spec.operation);
  const unbatched = mkdtempSync(join(tmpdir(), "models-no-batching-"));
  const servers: RunningProcess[] = [];
  try {
    copyWithoutBatching(DEFAULT_MODEL_REPOSITORY, unbatched);
    const start = async (modelRepository: string, name: string) => {
      const [grpcPort, httpPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
      const server = await startTriton({
        grpcPort,
        httpPort,
        metricsPort,
        install,
        modelRepository,
        logFile: join(LOCAL_DIR, "logs", `bench-triton-${name}.log`),
      });
      servers.push(server);
      return createTritonClient({ url: `127.0.0.1:${grpcPort}`, defaultTimeoutMs: 600_000 });
    };
    options.log("starting two Triton servers: batching on, batching off");
    const on = await start(DEFAULT_MODEL_REPOSITORY, "batching");
    const off = await start(unbatched, "no-batching");
    const photo = join(await ensurePhotos(), "astronaut.png");
    const figures: ModelFigures[] = [];
    for (const operation of operations) {
      const { request, label } = await sampleRequest(operation, photo);
      // Warm both: the first calls create onnxruntime's sessions and arenas.
      await Promise.all([on.infer(request), off.infer(request)]);
      const rows: ModelFigures["rows"] = [];
      for (const concurrency of CONCURRENCY) {
        const batching = await drive(on, request, concurrency, options.seconds);
        const noBatching = await drive(off, request, concurrency, options.seconds);
        const ratio = batching.throughput / noBatching.throughput;
        options.log(
          `${operation} c=${concurrency}: ${batching.throughput.toFixed(1)}/s batched, ${noBatching.throughput.toFixed(1)}/s unbatched (×${ratio.toFixed(2)})`,
        );
        rows.push({ concurrency, batching, noBatching, ratio });
      }
      figures.push({ operation, model: OPERATION_SPECS[operation].model, request: label, rows });
    }
    on.close();
    off.close();
    return figures;
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
    rmSync(unbatched, { recursive: true, force: true });
  }
}

/** The model repository again, the same files linked, each config without dynamic batching. */
function copyWithoutBatching(from: string, to: string): void {
  for (const model of readdirSync(from, { withFileTypes: true })) {
    if (!model.isDirectory()) continue;
    mkdirSync(join(to, model.name));
    for (const entry of readdirSync(join(from, model.name))) {
      const source = join(from, model.name, entry);
      if (entry === "config.pbtxt") writeFileSync(join(to, model.name, entry), withoutBlock(readFileSync(source, "utf8"), "dynamic_batching"));
      else symlinkSync(source, join(to, model.name, entry));
    }
  }
}

/** The config text without the top-level `name { ... }` block. */
export function withoutBlock(config: string, name: string): string {
  const start = config.search(new RegExp(`^${name}\\s*\\{`, "m"));
  if (start < 0) return config;
  let depth = 0;
  for (let i = config.indexOf("{", start); i < config.length; i += 1) {
    if (config[i] === "{") depth += 1;
    if (config[i] === "}") depth -= 1;
    if (depth === 0) return config.slice(0, start) + config.slice(i + 1);
  }
  throw new Error(`unbalanced ${name} block`);
}

async function sampleRequest(operation: Operation, photo: string): Promise<{ request: InferenceRequest; label: string }> {
  const checked = checkParams(operation, {});
  if (!checked.ok) throw new Error(checked.message);
  const model = editModel(operation, checked.params);
  if (model.kind === "mask") {
    const pixels = await sharp(photo).resize(MASK_SIDE, MASK_SIDE).removeAlpha().raw().toBuffer();
    return {
      label: `${MASK_SIDE}×${MASK_SIDE} photo`,
      request: {
        model: model.model,
        inputs: [{ name: "IMAGE", datatype: "UINT8", shape: [1, MASK_SIDE, MASK_SIDE, 3], data: new Uint8Array(pixels) }],
        outputs: ["MASK"],
      },
    };
  }
  const pixels = await sharp(photo).extract({ left: 200, top: 60, width: TILE, height: TILE }).removeAlpha().raw().toBuffer();
  return {
    label: `${TILE}×${TILE} tile, ${JSON.stringify(checked.params)}`,
    request: {
      model: model.model,
      inputs: [{ name: "IMAGE", datatype: "UINT8", shape: [1, TILE, TILE, 3], data: new Uint8Array(pixels) }, ...model.paramInputs],
      outputs: ["IMAGE_OUT"],
    },
  };
}

/** `concurrency` callers, each sending the next request when its last one returns. */
async function drive(client: InferenceClient, request: InferenceRequest, concurrency: number, seconds: number): Promise<LoadFigures> {
  const latencies: number[] = [];
  const began = performance.now();
  const minimum = concurrency * 2;
  const caller = async () => {
    while (performance.now() - began < seconds * 1000 || latencies.length < minimum) {
      const sent = performance.now();
      await client.infer(request);
      latencies.push(performance.now() - sent);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, caller));
  const elapsed = (performance.now() - began) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] as number);
  return { requests: latencies.length, seconds: elapsed, throughput: latencies.length / elapsed, p50: at(0.5), p95: at(0.95), p99: at(0.99) };
}

export function modelTable(figures: ModelFigures[]): string {
  const lines = [
    "| edit (model) | request | concurrency | batched: per s | p50 / p95 / p99 ms | unbatched: per s | p50 / p95 / p99 ms | batched ÷ unbatched |",
    "|---|---|---:|---:|---:|---:|---:|---:|",
  ];
  for (const figure of figures) {
    for (const row of figure.rows) {
      const b = row.batching;
      const n = row.noBatching;
      lines.push(
        `| ${figure.operation} (${figure.model}) | ${figure.request} | ${row.concurrency} | ${b.throughput.toFixed(1)} | ${b.p50} / ${b.p95} / ${b.p99} | ${n.throughput.toFixed(1)} | ${n.p50} / ${n.p95} / ${n.p99} | ${row.ratio.toFixed(2)} |`,
      );
    }
  }
  return lines.join("\n");
}
