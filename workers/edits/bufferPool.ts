/**
 * Large byte buffers used again, band after band: the bands that tiles are stitched into and the
 * Paeth-filtered rows the encoder deflates. All the bands of one edit have the same size (but
 * the last), so a buffer given back is usually taken again by the next band. A fresh buffer
 * costs far more than its size suggests: the kernel maps and zeroes its pages on first touch,
 * and every few dozen MB of new buffers bring a garbage collection that marks the whole heap
 * (docs/benchmarks.md, the worker's ceiling).
 *
 * A buffer taken holds whatever it held before: the caller writes every byte it reads.
 */

/** Free bytes kept at most; the sizes used longest ago are dropped first. */
const MAX_FREE_BYTES = 128 << 20;
/** Free buffers are let go when none has been taken or given for this long (an idle worker holds none). */
const IDLE_RELEASE_MS = 5_000;

/** Free buffers by byte length; the Map's order is the order of last use, oldest first. */
const free = new Map<number, ArrayBuffer[]>();
let freeBytes = 0;
let idleTimer: NodeJS.Timeout | undefined;

export const bufferPool = {
  /** A buffer of exactly `byteLength` bytes, used before if one is free, its contents undefined. */
  take(byteLength: number): Uint8Array {
    armIdleRelease();
    const stack = free.get(byteLength);
    const buffer = stack?.pop();
    if (buffer === undefined) return new Uint8Array(byteLength);
    freeBytes -= byteLength;
    touch(byteLength, stack as ArrayBuffer[]);
    return new Uint8Array(buffer);
  },

  /**
   * Gives `buffer` back. Only a view of a whole, non-shared ArrayBuffer is kept; the caller must
   * not use it afterwards.
   */
  give(buffer: Uint8Array): void {
    const whole = buffer.byteOffset === 0 && buffer.byteLength === buffer.buffer.byteLength && buffer.buffer instanceof ArrayBuffer;
    if (!whole || buffer.byteLength === 0 || buffer.byteLength > MAX_FREE_BYTES) return;
    armIdleRelease();
    const size = buffer.byteLength;
    while (freeBytes + size > MAX_FREE_BYTES) dropOldest();
    const stack = free.get(size) ?? [];
    stack.push(buffer.buffer as ArrayBuffer);
    freeBytes += size;
    touch(size, stack);
  },

  /** Lets every free buffer go. */
  clear(): void {
    free.clear();
    freeBytes = 0;
  },

  /** Bytes held free, for tests and metrics. */
  freeBytes(): number {
    return freeBytes;
  },
};

function touch(size: number, stack: ArrayBuffer[]): void {
  free.delete(size);
  if (stack.length > 0) free.set(size, stack);
}

function dropOldest(): void {
  const [size, stack] = free.entries().next().value as [number, ArrayBuffer[]];
  stack.shift();
  freeBytes -= size;
  if (stack.length === 0) free.delete(size);
}

function armIdleRelease(): void {
  if (idleTimer) idleTimer.refresh();
  else {
    idleTimer = setTimeout(() => {
      idleTimer = undefined;
      bufferPool.clear();
    }, IDLE_RELEASE_MS);
    idleTimer.unref();
  }
}
