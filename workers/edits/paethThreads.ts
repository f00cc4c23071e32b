/**
 * The PNG Paeth filter, off the event loop: a few worker threads, shared by every edit of the
 * process, filter whole bands. A band needs only its own rows and the last row of the band above,
 * so bands are filtered side by side, several at once, while the event loop goes on with the
 * tiles' gRPC calls and the upload. The filter is WebAssembly with SIMD (paethWasm.ts): in
 * JavaScript it was a quarter of the worker's CPU (docs/benchmarks.md, the worker's ceiling).
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { bufferPool } from "./bufferPool.js";
import { PAETH_WASM_SOURCE, paethWasmBytes } from "./paethWasm.js";

export interface FilteredBand {
  /** Each row as PNG stores it: the filter type byte, then the filtered bytes. */
  filtered: Uint8Array;
  /** The band's pixels, back from the thread (the band itself if it moved, else its copy). */
  band: Uint8Array;
  /** Time the thread spent filtering. */
  ms: number;
}

/**
 * The thread's code, as plain JavaScript: it must not depend on how the worker's own files are
 * compiled (tsx in development, tsc in the image). It filters with the WebAssembly module, whose
 * bytes come with the thread's data.
 */
const THREAD_SOURCE = `"use strict";
const { parentPort, workerData } = require("node:worker_threads");
${PAETH_WASM_SOURCE}
const paethRows = paethRowsWasm(workerData.wasm);
parentPort.on("message", ({ id, band, above, rowBytes, bpp, into }) => {
  const began = performance.now();
  paethRows(band, above, rowBytes, bpp, into);
  // Both go back, to be used again (bufferPool.ts).
  parentPort.postMessage({ id, filtered: into, band, ms: performance.now() - began }, [into.buffer, band.buffer]);
});
`;

/** Threads in the pool: one per core, at most 4 (a worker pod's CPU request). */
export const FILTER_THREADS = Math.max(1, Math.min(4, availableParallelism()));

interface Thread {
  worker: Worker;
  pending: Map<number, { resolve(band: FilteredBand): void; reject(error: unknown): void }>;
}

let threads: Thread[] = [];
let nextThread = 0;
let nextId = 0;

function startThread(): Thread {
  // No --import tsx or other flags of the parent: the thread's code is plain JavaScript.
  const worker = new Worker(THREAD_SOURCE, { eval: true, execArgv: [], workerData: { wasm: paethWasmBytes() } });
  const thread: Thread = { worker, pending: new Map() };
  worker.unref();
  worker.on("message", ({ id, filtered, band, ms }: { id: number } & FilteredBand) => {
    thread.pending.get(id)?.resolve({ filtered, band, ms });
    thread.pending.delete(id);
  });
  const fail = (error: unknown) => {
    threads = threads.filter((t) => t !== thread);
    for (const { reject } of thread.pending.values()) reject(error);
    thread.pending.clear();
  };
  worker.on("error", fail);
  worker.on("exit", (code) => fail(new Error(`a PNG filter thread exited with code ${code}`)));
  return thread;
}

/**
 * Paeth-filters `band` (whole rows of `rowBytes`, `bpp` bytes a pixel) on a pool thread; `above`
 * is the row above the band's first (zeros for the image's first row). A band that is a whole
 * ArrayBuffer moves to the thread, uncopied, and is empty here afterwards; a view into a larger
 * buffer is copied. The filtered rows are written into a buffer from `bufferPool`; the caller
 * gives both buffers back once done with them.
 */
export function paethFilterBand(band: Uint8Array, above: Uint8Array, rowBytes: number, bpp: number): Promise<FilteredBand> {
  const whole = band.byteOffset === 0 && band.byteLength === band.buffer.byteLength && !(band.buffer instanceof SharedArrayBuffer);
  const sent = whole ? band : band.slice();
  const into = bufferPool.take(sent.length + sent.length / rowBytes);
  while (threads.length < FILTER_THREADS) threads.push(startThread());
  const thread = threads[nextThread++ % threads.length] as Thread;
  const id = nextId++;
  return new Promise<FilteredBand>((resolve, reject) => {
    thread.pending.set(id, { resolve, reject });
    // Pending work keeps the process alive; an idle pool does not.
    if (thread.pending.size === 1) thread.worker.ref();
    thread.worker.postMessage({ id, band: sent, above, rowBytes, bpp, into }, [sent.buffer as ArrayBuffer, into.buffer as ArrayBuffer]);
  }).finally(() => {
    if (thread.pending.size === 0) thread.worker.unref();
  });
}
