/**
 * `npm run bench -- --only instant`: Triton alone serving the worker ceiling's instant model
 * (nearest-neighbour ×4 as `upscale`), driven by our own gRPC client as the worker drives it, at
 * several tile sizes. It answers what the worker ceiling cannot show by itself: how many output
 * megapixels a second Triton can hand over on this machine whatever the worker does, and what
 * receiving them costs a Node process (this one) per megapixel, before any stitching or encoding.
 *
 * The server loads the instant model alone, so the other models' memory and start-up are not in
 * the way.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { createTritonClient } from "../../adapters/triton/tritonClient.js";
import type { InferenceRequest } from "../../events/inferenceClient.js";
import { editModel } from "../../workers/edits/editModels.js";
import { ensurePhotos } from "./photos.js";
import { LOCAL_DIR, REPO_ROOT } from "../stack/paths.js";
import { freePort } from "../stack/processes.js";
import { startTriton } from "../stack/triton.js";

export interface InstantOptions {
  tileSizes: number[];
  /** Requests in flight from the one client (default 8). */
  concurrency?: number;
  /** Seconds per tile size (default 6). */
  seconds?: number;
  /** The worker's TILE_OVERLAP, to count the image's own pixels in a tile (default 12). */
  overlap?: number;
  log: (line: string) => void;
}

export interface InstantFigures {
  tileSize: number;
  concurrency: number;
  tiles: number;
  seconds: number;
  tilesPerSecond: number;
  /** Each tile's whole output, overlap included. */
  tileOutputMegapixelsPerSecond: number;
  /** The image's own pixels: each tile's core, (tileSize - 2 × overlap)² × 16. */
  imageMegapixelsPerSecond: number;
  /** CPU of Triton (server and the model's stub) per MP of the image's own pixels. */
  tritonCpuMsPerMegapixel: number;
  /** CPU of this process (the gRPC client receiving the answers) per MP of the image's own pixels. */
  clientCpuMsPerMegapixel: number;
  loadAverage: number;
}

const SCALE = 4;
const CLOCK_TICKS = 100;

export async function benchInstantTriton({ tileSizes, concurrency = 8, seconds = 6, overlap = 12, log }: InstantOptions): Promise<InstantFigures[]> {
  const repository = join(LOCAL_DIR, "bench", "instant-only");
  rmSync(repository, { recursive: true, force: true });
  mkdirSync(repository, { recursive: true });
  symlinkSync(join(REPO_ROOT, "triton", "bench_models", "upscale_instant"), join(repository, "upscale"));
  const [grpcPort, httpPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
  const server = await startTriton({
    grpcPort,
    httpPort,
    metricsPort,
    modelRepository: repository,
    logFile: join(LOCAL_DIR, "logs", "bench-instant-triton.log"),
  });
  const client = createTritonClient({ url: `127.0.0.1:${grpcPort}`, defaultTimeoutMs: 600_000 });
  try {
    const photo = join(await ensurePhotos(), "astronaut.png");
    const figures: InstantFigures[] = [];
    for (const tileSize of tileSizes) {
      const pixels = await sharp(photo).resize(tileSize, tileSize).removeAlpha().raw().toBuffer();
      const model = editModel("upscale", { scale: SCALE });
      if (model.kind === "mask") throw new Error("upscale is a tiled model");
      const request: InferenceRequest = {
        model: "upscale",
        inputs: [{ name: "IMAGE", datatype: "UINT8", shape: [1, tileSize, tileSize, 3], data: new Uint8Array(pixels) }, ...model.paramInputs],
        outputs: ["IMAGE_OUT"],
      };
      await Promise.all(Array.from({ length: concurrency }, () => client.infer(request))); // warm-up
      const load = loadavg()[0] as number;
      const tritonBefore = tritonCpuTicks(grpcPort);
      const cpuBefore = process.cpuUsage();
      const began = performance.now();
      let tiles = 0;
      const caller = async () => {
        while (performance.now() - began < seconds * 1000) {
          await client.infer(request);
          tiles += 1;
        }
      };
      await Promise.all(Array.from({ length: concurrency }, caller));
      const elapsed = (performance.now() - began) / 1000;
      const cpu = process.cpuUsage(cpuBefore);
      const tritonCpu = (tritonCpuTicks(grpcPort) - tritonBefore) / CLOCK_TICKS;
      const core = tileSize - 2 * overlap;
      const imageMp = (tiles * core * core * SCALE * SCALE) / 1e6;
      const row: InstantFigures = {
        tileSize,
        concurrency,
        tiles,
        seconds: round(elapsed, 2),
        tilesPerSecond: round(tiles / elapsed, 1),
        tileOutputMegapixelsPerSecond: round((tiles * tileSize * tileSize * SCALE * SCALE) / 1e6 / elapsed, 1),
        imageMegapixelsPerSecond: round(imageMp / elapsed, 1),
        tritonCpuMsPerMegapixel: round((tritonCpu * 1000) / imageMp, 1),
        clientCpuMsPerMegapixel: round((cpu.user + cpu.system) / 1000 / imageMp, 1),
        loadAverage: round(load, 1),
      };
      log(`instant, tile ${tileSize}: ${row.tilesPerSecond} tiles/s, ${row.imageMegapixelsPerSecond} image MP/s`);
      figures.push(row);
    }
    return figures;
  } finally {
    client.close();
    await server.stop();
  }
}

export function instantTable(figures: InstantFigures[]): string {
  return [
    "| tile | in flight | tiles/s | tile output MP/s | image MP/s | Triton CPU ms/MP | client CPU ms/MP | load average |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...figures.map(
      (f) =>
        `| ${f.tileSize}² | ${f.concurrency} | ${f.tilesPerSecond} | ${f.tileOutputMegapixelsPerSecond} | ${f.imageMegapixelsPerSecond} | ${f.tritonCpuMsPerMegapixel} | ${f.clientCpuMsPerMegapixel} | ${f.loadAverage} |`,
    ),
  ].join("\n");
}

/** CPU ticks of the Triton server on this gRPC port and of its Python stubs (named after the port). */
export function tritonCpuTicks(grpcPort: number): number {
  let ticks = 0;
  for (const pid of readdirSync("/proc").filter((name) => /^[0-9]+$/.test(name))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      if (!cmdline.includes(`--grpc-port=${grpcPort}`) && !cmdline.includes(`triton${grpcPort}_`)) continue;
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // the process ended
    }
  }
  return ticks;
}

function round(value: number, digits = 0): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}
