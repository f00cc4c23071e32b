/**
 * The metrics a real job moves, read from the worker's and the API's /metrics the way Managed
 * Prometheus scrapes them: counters and histograms before and after one job, by their labels.
 */
import { join } from "node:path";
import sharp from "sharp";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { emulatorIdToken } from "../../local/auth/emulatorUsers.js";
import { ensurePhotos } from "../../local/bench/photos.js";
import { sleep } from "../../local/stack/processes.js";
import { sampleSum, scrape } from "../support/prometheusText.js";
import { waitForLogLine, type LogLine } from "../support/stackLogs.js";
import { waitForJobEnd } from "../support/stackJobs.js";

const stack = inject("stack");
let token: string;
let photo: Buffer;

beforeAll(async () => {
  token = await emulatorIdToken(stack.authHost, `metered-${Date.now()}`);
  photo = await sharp(join(await ensurePhotos(), "coffee.png")).resize(160).jpeg({ quality: 90 }).toBuffer();
});

describe("metrics", () => {
  it("counts a finished job on the worker's /metrics: outcome, queue wait, stages, Triton calls, tiles", async () => {
    // Start from an idle worker: a job of an earlier file still running would move the counters.
    let before = await scrape(stack.metricsUrls.worker);
    for (let tries = 0; sampleSum(before, "image_edit_jobs_in_flight") !== 0 && tries < 240; tries += 1) {
      await sleep(250);
      before = await scrape(stack.metricsUrls.worker);
    }
    const created = await fetch(`${stack.apiUrl}/v1/edits?operation=upscale&params.scale=2`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "image/jpeg" },
      body: new Uint8Array(photo),
    });
    expect(created.status).toBe(202);
    const { jobId } = (await created.json()) as { jobId: string };
    expect(await waitForJobEnd(stack.apiUrl, token, jobId)).toBe("succeeded");
    // The worker acks after recording the result; wait until the delivery is out of its hands.
    let after = await scrape(stack.metricsUrls.worker);
    for (let tries = 0; sampleSum(after, "image_edit_jobs_in_flight") !== 0 && tries < 40; tries += 1) {
      await sleep(250);
      after = await scrape(stack.metricsUrls.worker);
    }
    const moved = (name: string, labels: Record<string, string> = {}) => sampleSum(after, name, labels) - sampleSum(before, name, labels);

    const succeeded = await waitForLogLine(join(stack.logDir, "worker-1.log"), (line) => line.message === "edit succeeded" && line.jobId === jobId);
    const { tiles } = succeeded as LogLine & { tiles: number };
    expect(tiles).toBeGreaterThan(0);

    expect(moved("image_edit_jobs_total", { operation: "upscale", outcome: "succeeded" })).toBe(1);
    expect(moved("image_edit_jobs_total", { outcome: "failed" })).toBe(0);
    expect(moved("image_edit_queue_wait_seconds_count", { operation: "upscale" })).toBeGreaterThanOrEqual(1);
    expect(moved("image_edit_stage_seconds_count", { stage: "download" })).toBe(1);
    expect(moved("image_edit_stage_seconds_count", { stage: "upload" })).toBe(1);
    // At least: load and append EditStarted, load and append EditSucceeded.
    expect(moved("image_edit_stage_seconds_count", { stage: "events" })).toBeGreaterThanOrEqual(4);
    expect(moved("image_edit_stage_seconds_sum", { stage: "download" })).toBeGreaterThan(0);
    expect(moved("image_edit_triton_request_seconds_count", { model: "upscale", outcome: "ok" })).toBe(tiles);
    expect(moved("image_edit_tiles_total", { model: "upscale" })).toBe(tiles);
    expect(sampleSum(after, "image_edit_jobs_in_flight")).toBe(0);
    expect(sampleSum(after, "image_edit_oldest_running_job_age_seconds")).toBe(0);
    expect(sampleSum(after, "image_edit_triton_ready")).toBe(1);
  });

  it("counts the API's requests by route template, method and status", async () => {
    const before = await scrape(stack.metricsUrls.api);
    const missing = "00000000-0000-4000-8000-000000000000";
    expect((await fetch(`${stack.apiUrl}/v1/edits/${missing}`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(404);
    expect((await fetch(`${stack.apiUrl}/v1/edits`)).status).toBe(401);
    expect((await fetch(`${stack.apiUrl}/v1/models`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    const after = await scrape(stack.metricsUrls.api);
    const moved = (name: string, labels: Record<string, string>) => sampleSum(after, name, labels) - sampleSum(before, name, labels);

    expect(moved("image_edit_http_requests_total", { route: "/v1/edits/{jobId}", method: "GET", status: "404" })).toBe(1);
    expect(moved("image_edit_http_requests_total", { route: "/v1/edits", method: "GET", status: "401" })).toBe(1);
    expect(moved("image_edit_http_requests_total", { route: "/v1/models", method: "GET", status: "200" })).toBe(1);
    expect(moved("image_edit_http_request_duration_seconds_count", { route: "/v1/models", method: "GET", status: "200" })).toBe(1);
    // Job ids never become label values.
    expect(after.filter((sample) => Object.values(sample.labels).some((value) => value.includes(missing)))).toEqual([]);
  });
});
