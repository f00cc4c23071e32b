/**
 * The core wired to its in-memory doubles, for the unit tests of the functions and the worker:
 * one store, image store, queue, inference server, clock and logger per test, and helpers that
 * put a job into a given state through the core's own commands.
 */
import { randomUUID } from "node:crypto";
import sharp from "sharp";
import type { JobDelivery, JobMessage } from "../../events/jobQueue.js";
import { handleCommand } from "../../events/handleCommand.js";
import type { JobState } from "../../events/jobState.js";
import type { EditParams, Operation } from "../../events/operations.js";
import type { EditCommand } from "../../events/decide.js";
import type { Priority } from "../../events/priority.js";
import { requestDigest } from "../../events/resultCache.js";
import { createManualClock } from "../doubles/manualClock.js";
import { createMemoryEventStore } from "../doubles/memoryEventStore.js";
import { createMemoryImageStore } from "../doubles/memoryImageStore.js";
import { createMemoryInferenceClient } from "../doubles/memoryInferenceClient.js";
import { createMemoryJobQueue } from "../doubles/memoryJobQueue.js";
import { createMemoryLogger } from "../doubles/memoryLogger.js";

export function memoryCore(options: { latencyMs?: number } = {}) {
  const logger = createMemoryLogger();
  return {
    store: createMemoryEventStore(),
    images: createMemoryImageStore(),
    queue: createMemoryJobQueue(),
    inference: createMemoryInferenceClient(options),
    clock: createManualClock(),
    logger,
    log: logger.log,
  };
}

export type MemoryCore = ReturnType<typeof memoryCore>;

export const UPLOADS = "uploads";

/** A job whose upload is recorded: queued, as the upload trigger leaves it. */
export async function queuedJob(
  core: MemoryCore,
  bytes: Buffer,
  edit: { operation?: Operation; params?: EditParams; ownerId?: string; priority?: Priority; cache?: boolean } = {},
): Promise<string> {
  const jobId = randomUUID();
  const input = { bucket: UPLOADS, object: `uploads/${jobId}`, contentType: "image/jpeg" };
  const operation = edit.operation ?? "upscale";
  const params = edit.params ?? (operation === "upscale" ? { scale: 2 } : operation === "remove_background" ? {} : { strength: 0.5 });
  const request: Extract<EditCommand, { type: "RequestEdit" }> = {
    type: "RequestEdit",
    jobId,
    ownerId: edit.ownerId ?? "owner",
    operation,
    params,
    flow: "direct",
    input,
    ...(edit.priority === undefined ? {} : { priority: edit.priority }),
  };
  if (edit.cache) request.cacheDigest = requestDigest(request);
  await handleCommand(core, jobId, request);
  await core.images.write(input, bytes, "image/jpeg");
  await handleCommand(core, jobId, { type: "RecordUpload", ...input, sizeBytes: bytes.length });
  return jobId;
}

/** A small photo-like JPEG: two colours, so that edits have something to change. */
export function testJpeg(width = 96, height = 80): Promise<Buffer> {
  return sharp({ create: { width, height: height / 2, channels: 3, background: "#c86432" } })
    .extend({ bottom: height / 2, background: "#3264c8" })
    .jpeg()
    .toBuffer();
}

/** A delivery handed over by the test, remembering how it was settled. */
export function handDelivery(message: JobMessage, deliveryAttempt = 1): JobDelivery & { settled?: "ack" | "nack" } {
  const delivery: JobDelivery & { settled?: "ack" | "nack" } = {
    message,
    deliveryAttempt,
    publishedAt: new Date(),
    ack: () => void (delivery.settled ??= "ack"),
    nack: () => void (delivery.settled ??= "nack"),
  };
  return delivery;
}

export async function eventTypes(core: MemoryCore, jobId: string): Promise<string[]> {
  return (await core.store.load(jobId)).map((event) => event.type);
}

/** Waits (in real time) until `check` holds, for at most `ms`. */
export async function until<T>(what: string, check: () => Promise<T | undefined | false>, ms = 5_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`still waiting for ${what} after ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export async function ended(core: MemoryCore, jobId: string, ms = 5_000): Promise<JobState> {
  return until(`job ${jobId} to end`, async () => {
    const job = await core.store.getProjection(jobId);
    return job && ["succeeded", "failed", "canceled"].includes(job.status) ? job : undefined;
  }, ms);
}
