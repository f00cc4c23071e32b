/**
 * Running a tiled model over an image of any size. The image is cut into fixed-size,
 * overlapping tiles (one tensor shape for every job, so Triton can batch tiles of many jobs);
 * tiles go out as separate requests, a bounded number in flight, in raster order. Finished
 * cores are stitched into bands of whole output rows, and each band is handed on (to the PNG
 * encoder and the upload) as soon as it is complete, so memory holds a couple of bands and
 * never the whole output.
 */
import { EditError } from "../../events/errors.js";
import type { InferenceClient, Tensor } from "../../events/inferenceClient.js";
import { extractTile, placeTile, planTiles, scaleAlphaRows, tileBands, withAlpha, type Tile } from "../tiling.js";
import { bufferPool } from "./bufferPool.js";
import type { DecodedImage } from "./decodeImage.js";
import { untimedStages, type StageTimer } from "../../events/stageTimer.js";

export interface TiledModel {
  model: string;
  /** Output side over input side. */
  scale: number;
  /** The model's inputs besides IMAGE, one row each (the edit's params as tensors). */
  paramInputs: Tensor[];
  /** Context pixels the model needs around a tile's core, when more than the configured overlap. */
  minOverlap?: number;
}

export interface TilingOptions {
  inference: InferenceClient;
  tileSize: number;
  overlap: number;
  maxInFlight: number;
  timeoutMs: number;
  /** Called after every finished tile; the caller throttles what it records. */
  onProgress?: (tilesDone: number, tilesTotal: number) => void;
  signal?: AbortSignal;
  timeStage?: StageTimer;
}

export interface BandStream {
  width: number;
  height: number;
  channels: 3 | 4;
  tiles: number;
  /** Whole output rows, top to bottom. */
  bands: AsyncIterable<Uint8Array>;
  /** Wall time with at least one inference call open, so far. */
  inferenceMs(): number;
}

/** Bands allowed to be in progress beyond the one the consumer waits for. */
const LOOKAHEAD_BANDS = 1;

export function runTiled(image: DecodedImage, model: TiledModel, options: TilingOptions): BandStream {
  const { scale } = model;
  const outWidth = image.width * scale;
  const outHeight = image.height * scale;
  const grid = planTiles(image.width, image.height, options.tileSize, Math.max(options.overlap, model.minOverlap ?? 0));
  const bands = tileBands(grid);
  const side = options.tileSize;
  const timer = busyTimer();
  const channels = image.alpha ? 4 : 3;

  const timeStage = options.timeStage ?? untimedStages;
  // Milliseconds of cutting and stitching since the last band went out, reported with it.
  let tilingMs = 0;
  let stitchingMs = 0;

  async function inferTile(tile: Tile, into: Uint8Array, originRow: number): Promise<void> {
    options.signal?.throwIfAborted();
    const cutAt = performance.now();
    const pixels = extractTile(image.rgb, image.width, image.height, tile, grid);
    tilingMs += performance.now() - cutAt;
    const stop = timer.start();
    // The answer is received into a buffer from the pool, and goes back once stitched.
    let answer: Uint8Array | undefined;
    try {
      const result = await options.inference.infer({
        model: model.model,
        inputs: [{ name: "IMAGE", datatype: "UINT8", shape: [1, side, side, 3], data: pixels }, ...model.paramInputs],
        outputs: ["IMAGE_OUT"],
        timeoutMs: options.timeoutMs,
        allocate: (byteLength) => (answer = bufferPool.take(byteLength)),
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      });
      const out = result.outputs.find((tensor) => tensor.name === "IMAGE_OUT");
      if (!out || !(out.data instanceof Uint8Array) || out.data.length !== side * scale * side * scale * 3) {
        throw new EditError("inference_failed", "The model returned an output of the wrong shape.", false);
      }
      const placeAt = performance.now();
      placeTile(into, outWidth, out.data, tile, grid, scale, originRow);
      stitchingMs += performance.now() - placeAt;
      if (answer !== undefined) bufferPool.give(answer);
    } finally {
      stop();
    }
  }

  async function* produce(): AsyncGenerator<Uint8Array> {
    const total = grid.tiles.length;
    const buffers = new Map<number, Uint8Array>();
    const remaining = bands.map((band) => band.length);
    const done = bands.map(() => deferred<void>());
    // A failure rejects every band's promise; only the one being awaited is observed.
    for (const band of done) band.promise.catch(() => {});
    let consumed = 0;
    let advanced = deferred<void>();
    let tilesDone = 0;
    let failure: unknown;
    let stopped = false;

    const order = bands.flatMap((band, index) => band.map((tile) => ({ tile, band: index })));
    let next = 0;
    const lane = async () => {
      while (!stopped && failure === undefined && next < order.length) {
        const { tile, band } = order[next] as { tile: Tile; band: number };
        next += 1;
        while (band > consumed + LOOKAHEAD_BANDS && !stopped) await advanced.promise;
        if (stopped) return;
        const top = tile.y * scale;
        let buffer = buffers.get(band);
        if (!buffer) {
          // Every byte is written: the band's tiles' cores cover its rows.
          buffer = bufferPool.take(outWidth * (tile.height * scale) * 3);
          buffers.set(band, buffer);
        }
        await inferTile(tile, buffer, top);
        tilesDone += 1;
        options.onProgress?.(tilesDone, total);
        remaining[band] = (remaining[band] as number) - 1;
        if (remaining[band] === 0) done[band]?.resolve();
      }
    };
    const lanes = timeStage("inference", () => Promise.all(Array.from({ length: Math.min(options.maxInFlight, total) }, lane))).catch((error: unknown) => {
      failure = error;
      for (const band of done) band.reject(error);
    });

    try {
      for (let index = 0; index < bands.length; index += 1) {
        await (done[index] as Deferred<void>).promise;
        const rgb = buffers.get(index) as Uint8Array;
        buffers.delete(index);
        const first = bands[index]?.[0] as Tile;
        const rows = first.height * scale;
        timeStage.add("tiling", tilingMs);
        timeStage.add("stitching", stitchingMs);
        tilingMs = 0;
        stitchingMs = 0;
        if (image.alpha) {
          const rgba = withAlpha(rgb, scaleAlphaRows(image.alpha, image.width, image.height, scale, first.y * scale, rows));
          bufferPool.give(rgb);
          yield rgba;
        } else yield rgb;
        consumed = index + 1;
        const wake = advanced;
        advanced = deferred();
        wake.resolve();
      }
    } finally {
      stopped = true;
      advanced.resolve();
      await lanes;
    }
    if (failure !== undefined) throw failure;
  }

  return { width: outWidth, height: outHeight, channels, tiles: grid.tiles.length, bands: produce(), inferenceMs: timer.total };
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Measures the wall time during which at least one of several overlapping intervals is open. */
export function busyTimer() {
  let open = 0;
  let since = 0;
  let total = 0;
  return {
    start() {
      if (open === 0) since = performance.now();
      open += 1;
      return () => {
        open -= 1;
        if (open === 0) total += performance.now() - since;
      };
    },
    total: () => Math.round(total + (open > 0 ? performance.now() - since : 0)),
  };
}
