import { describe, expect, it } from "vitest";
import { EditApiError, ServiceUnreachableError, UploadError, describeError } from "../../client/editErrors.js";
import { isEnded } from "../../client/editTypes.js";
import { MalformedJobError, parseJob } from "../../client/jobSnapshot.js";

const base = {
  jobId: "j1",
  operation: "upscale",
  params: { scale: 4 },
  ownerId: "alice",
  version: 4,
  attempts: 1,
  createdAt: "2026-11-22T10:00:00.000Z",
  updatedAt: "2026-11-22T10:00:01.000Z",
  // Projection fields the client does not show pass through harmlessly.
  flow: "signed_upload",
  input: { bucket: "b", object: "uploads/j1", contentType: "image/png" },
};
const output = { url: "gs://results/j1.png", bucket: "results", object: "j1.png", width: 8, height: 8, contentType: "image/png", sizeBytes: 10 };

describe("parseJob reads a job into its typed state", () => {
  it.each([
    ["running with progress", { ...base, status: "running", progress: { tilesDone: 3, tilesTotal: 16 } }, { status: "running", progress: { tilesDone: 3, tilesTotal: 16 } }],
    ["running before any progress is written", { ...base, status: "running" }, { status: "running" }],
    ["queued after a failed attempt", { ...base, status: "queued", error: { code: "triton_unavailable", message: "Triton is down" } }, { status: "queued", lastError: { code: "triton_unavailable", message: "Triton is down" } }],
    ["succeeded, from the projection", { ...base, status: "succeeded", output }, { status: "succeeded", output: { url: output.url, width: 8, height: 8, contentType: "image/png", sizeBytes: 10 } }],
    ["failed", { ...base, status: "failed", error: { code: "not_an_image", message: "This file is not an image." } }, { status: "failed", error: { code: "not_an_image", message: "This file is not an image." } }],
    ["canceled", { ...base, status: "canceled" }, { status: "canceled" }],
  ])("%s", (_, raw, expected) => {
    const job = parseJob(raw);
    expect(job).toMatchObject({ jobId: "j1", version: 4, ...expected });
    if (!("progress" in expected)) expect(job).not.toHaveProperty("progress");
    expect(job).not.toHaveProperty("input");
  });

  it.each([
    ["tilesDone over tilesTotal", { tilesDone: 5, tilesTotal: 4 }],
    ["a zero total", { tilesDone: 0, tilesTotal: 0 }],
    ["a fraction", { tilesDone: 1.5, tilesTotal: 4 }],
    ["a string", "half"],
  ])("ignores progress that is not shaped right: %s", (_, progress) => {
    expect(parseJob({ ...base, status: "running", progress })).not.toHaveProperty("progress");
  });

  it.each([
    ["an unknown status", { ...base, status: "paused" }, "job.status"],
    ["a succeeded job without output", { ...base, status: "succeeded" }, "job.output"],
    ["a missing version", { ...base, version: undefined, status: "queued" }, "job.version"],
    ["an output without a size", { ...base, status: "succeeded", output: { ...output, sizeBytes: undefined } }, "job.output.sizeBytes"],
  ])("refuses %s, naming the field", (_, raw, field) => {
    expect(() => parseJob(raw)).toThrow(MalformedJobError);
    expect(() => parseJob(raw)).toThrow(field);
  });

  it("tells ended jobs from live ones", () => {
    expect(["succeeded", "failed", "canceled"].map((status) => isEnded(parseJob({ ...base, status, output, error: { code: "c", message: "m" } })))).toEqual([true, true, true]);
    expect(["awaiting_upload", "queued", "running"].map((status) => isEnded(parseJob({ ...base, status })))).toEqual([false, false, false]);
  });
});

describe("describeError says what went wrong in words", () => {
  it.each([
    [new ServiceUnreachableError("http://x", "ECONNREFUSED"), /cannot be reached/],
    [new EditApiError(401, "unauthenticated", "token expired"), /sign in again/],
    [new EditApiError(415, "unsupported_media_type", "…"), /JPEG, PNG or WebP/],
    [new EditApiError(400, "invalid_param", "params.scale: scale must be one of 2, 4"), /settings is not allowed: params.scale: scale must be one of 2, 4/],
    [new EditApiError(409, "conflict", "the edit has already succeeded"), /cannot be done now: the edit has already succeeded/],
    [new EditApiError(418, "teapot", "short and stout"), /refused the request: short and stout/],
    [new UploadError(403, "denied"), /could not be uploaded .*403/],
    [new TypeError("x is undefined"), /Something unexpected/],
  ])("%s", (error, words) => {
    expect(describeError(error)).toMatch(words);
    expect(describeError(error)).not.toMatch(/at .*\.ts|undefined/);
  });
});
