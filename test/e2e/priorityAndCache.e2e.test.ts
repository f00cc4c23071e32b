/**
 * Priorities and the result cache on the whole local stack, through the public API: an
 * interactive job overtakes a backlog of batch jobs queued before it, and a repeated request
 * succeeds from the result cache without a single Triton call (counted by Triton's own metrics
 * and the worker's), for its owner only.
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import sharp from "sharp";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { emulatorIdToken } from "../../local/auth/emulatorUsers.js";
import { ensurePhotos } from "../../local/bench/photos.js";
import { sleep } from "../../local/stack/processes.js";
import { sampleSum, scrape } from "../support/prometheusText.js";
import { waitForJobEnd } from "../support/stackJobs.js";

const stack = inject("stack");
let small: Buffer;
let large: Buffer;

beforeAll(async () => {
  const photos = await ensurePhotos();
  small = await sharp(join(photos, "coffee.png")).resize(96).jpeg({ quality: 90 }).toBuffer();
  // Several seconds of ×4 work each on this CPU: long enough for a backlog to form.
  large = await sharp(join(photos, "astronaut.png")).resize(384, 384).jpeg().toBuffer();
});

async function submit(token: string, bytes: Buffer, query: string): Promise<string> {
  const response = await fetch(`${stack.apiUrl}/v1/edits?${query}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "image/jpeg" },
    body: new Uint8Array(bytes),
  });
  expect(response.status).toBe(202);
  return ((await response.json()) as { jobId: string }).jobId;
}

async function view(token: string, jobId: string): Promise<Record<string, unknown>> {
  return (await (await fetch(`${stack.apiUrl}/v1/edits/${jobId}`, { headers: { authorization: `Bearer ${token}` } })).json()) as Record<string, unknown>;
}

async function startedAt(token: string, jobId: string): Promise<number | undefined> {
  const events = (await (await fetch(`${stack.apiUrl}/v1/edits/${jobId}/events`, { headers: { authorization: `Bearer ${token}` } })).json()) as Array<{ type: string; at: string }>;
  const started = events.find((event) => event.type === "EditStarted");
  return started ? Date.parse(started.at) : undefined;
}

/** Inference requests Triton has served, by its own count, and Triton calls by the worker's. */
async function tritonCalls(): Promise<{ triton: number; worker: number }> {
  const [triton, worker] = await Promise.all([scrape(stack.metricsUrls.triton), scrape(stack.metricsUrls.worker)]);
  return {
    triton: sampleSum(triton, "nv_inference_request_success") + sampleSum(triton, "nv_inference_request_failure"),
    worker: sampleSum(worker, "image_edit_triton_request_seconds_count"),
  };
}

describe("priorities", () => {
  it("runs an interactive job ahead of a backlog of batch jobs queued before it", async () => {
    const token = await emulatorIdToken(stack.authHost, `priority-${randomUUID()}`);
    const backlog: string[] = [];
    for (let n = 0; n < 3; n += 1) backlog.push(await submit(token, large, "operation=upscale&params.scale=4&priority=batch&cache=false"));
    // The first batch job holds the worker's batch slot; the others wait behind it.
    const deadline = Date.now() + 60_000;
    while ((await startedAt(token, backlog[0] as string)) === undefined && Date.now() < deadline) await sleep(200);
    const waitingAtSubmit: string[] = [];
    for (const jobId of backlog) if ((await startedAt(token, jobId)) === undefined) waitingAtSubmit.push(jobId);
    const interactive = await submit(token, small, "operation=upscale&params.scale=2&cache=false");
    // Some batch work was queued ahead of it, waiting for the worker.
    expect(waitingAtSubmit.length).toBeGreaterThan(0);
    let interactiveStarted: number | undefined;
    while ((interactiveStarted = await startedAt(token, interactive)) === undefined && Date.now() < deadline + 60_000) await sleep(200);
    expect(interactiveStarted, "the interactive job never started").toBeDefined();
    expect(await view(token, interactive)).toMatchObject({ priority: "interactive" });
    expect(await view(token, backlog[1] as string)).toMatchObject({ priority: "batch" });
    // The batch jobs queued before it and still waiting then had not started when it did.
    for (const jobId of waitingAtSubmit) {
      const batchStarted = await startedAt(token, jobId);
      expect(batchStarted === undefined || batchStarted > (interactiveStarted as number), `batch job ${jobId} started before the interactive job`).toBe(true);
    }
    expect(await waitForJobEnd(stack.apiUrl, token, interactive)).toBe("succeeded");
    // The backlog is done with: cancel what is left, so the next tests do not wait on it.
    for (const jobId of backlog) await fetch(`${stack.apiUrl}/v1/edits/${jobId}/cancel`, { method: "POST", headers: { authorization: `Bearer ${token}` } });
    for (const jobId of backlog) await waitForJobEnd(stack.apiUrl, token, jobId);
  });
});

describe("the result cache", () => {
  it("answers a repeated request from the earlier result with no Triton call, for the same user only", async () => {
    const alice = await emulatorIdToken(stack.authHost, `cache-alice-${randomUUID()}`);
    const bob = await emulatorIdToken(stack.authHost, `cache-bob-${randomUUID()}`);
    const query = "operation=upscale&params.scale=2";
    const first = await submit(alice, small, query);
    expect(await waitForJobEnd(stack.apiUrl, alice, first)).toBe("succeeded");
    expect((await view(alice, first)).cachedFrom).toBeUndefined();

    const before = await tritonCalls();
    const began = performance.now();
    const repeat = await submit(alice, small, query);
    expect(await waitForJobEnd(stack.apiUrl, alice, repeat)).toBe("succeeded");
    const hitMs = performance.now() - began;
    const after = await tritonCalls();
    expect(after).toEqual(before);
    const hit = await view(alice, repeat);
    expect(hit).toMatchObject({ status: "succeeded", cachedFrom: first, output: { contentType: "image/png" } });
    const image = await fetch((hit.output as { url: string }).url);
    expect((await sharp(Buffer.from(await image.arrayBuffer())).metadata()).width).toBe(192);
    const events = (await (await fetch(`${stack.apiUrl}/v1/edits/${repeat}/events`, { headers: { authorization: `Bearer ${alice}` } })).json()) as Array<{ type: string; data: Record<string, unknown> }>;
    expect(events.find((event) => event.type === "EditSucceeded")?.data).toMatchObject({ cachedFrom: first });
    console.log(`[cache] a cache hit, POST to succeeded seen by polling the API: ${Math.round(hitMs)} ms`);

    // Another user's identical request, and the owner's own request with cache=false, run the model.
    const others = [await submit(bob, small, query), await submit(alice, small, `${query}&cache=false`)];
    for (const [jobId, token] of [[others[0], bob], [others[1], alice]] as const) {
      expect(await waitForJobEnd(stack.apiUrl, token, jobId as string)).toBe("succeeded");
      expect((await view(token, jobId as string)).cachedFrom).toBeUndefined();
    }
    expect((await tritonCalls()).triton).toBeGreaterThan(after.triton);
    const worker = await scrape(stack.metricsUrls.worker);
    expect(sampleSum(worker, "image_edit_result_cache_total", { operation: "upscale", outcome: "hit" })).toBeGreaterThanOrEqual(1);
    expect(sampleSum(worker, "image_edit_result_cache_total", { operation: "upscale", outcome: "miss" })).toBeGreaterThanOrEqual(2);
  });
});
