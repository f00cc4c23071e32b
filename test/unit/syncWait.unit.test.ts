/**
 * `Prefer: wait=N` on the direct flow, through the doubles: the clock is the manual one, and the
 * wait's pauses move it, so N seconds pass in no time. The same on the real stack is in
 * test/e2e/formatsAndWait.e2e.test.ts.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { handleCommand } from "../../events/handleCommand.js";
import { createEditApi, type ApiRequest } from "../../functions/editApi.js";
import { preferredWaitSeconds } from "../../functions/syncWait.js";
import { createFixedTokenVerifier } from "../doubles/fixedTokenVerifier.js";
import { memoryCore, testJpeg, UPLOADS, type MemoryCore } from "../support/coreFixtures.js";

describe("the Prefer header", () => {
  it.each<[string | undefined, number | undefined]>([
    ["wait=5", 5],
    ["respond-async, wait=60", 60],
    ["WAIT = \"1\"", 1],
    ["wait=0", undefined],
    ["wait=61", undefined],
    ["wait=soon", undefined],
    ["return=minimal", undefined],
    [undefined, undefined],
  ])("%s asks to wait %s s", (header, seconds) => {
    expect(preferredWaitSeconds(header)).toBe(seconds);
  });
});

/** The API with a wait whose pauses move the manual clock, and `during` run at each pause. */
function apiOn(core: MemoryCore, during: (elapsedMs: number) => Promise<void> = async () => {}) {
  let elapsed = 0;
  const pauses: number[] = [];
  const api = createEditApi({
    store: core.store,
    images: core.images,
    queue: core.queue,
    clock: core.clock,
    verifier: createFixedTokenVerifier({ "alice-token": `alice-${randomUUID()}` }),
    newJobId: randomUUID,
    config: { uploadsBucket: UPLOADS, signedUrlTtlSeconds: 300, resultUrlTtlSeconds: 300, maxDirectUploadBytes: 200_000, maxUploadBytes: 1_000_000 },
    log: core.log,
    syncWait: {
      firstPollMs: 100,
      maxPollMs: 1000,
      sleep: async (ms) => {
        pauses.push(ms);
        elapsed += ms;
        core.clock.advance(ms);
        await during(elapsed);
      },
    },
  });
  const post = async (prefer: string | undefined, headers: Record<string, string> = {}) =>
    api({
      method: "POST",
      path: "/v1/edits",
      query: { operation: "upscale" },
      headers: { authorization: "Bearer alice-token", "content-type": "image/jpeg", ...headers, ...(prefer ? { prefer } : {}) },
      rawBody: await testJpeg(),
    } satisfies ApiRequest);
  return { post, pauses };
}

/** Plays the worker: the only queued job succeeds. */
async function finishQueued(core: MemoryCore): Promise<void> {
  const [message] = core.queue.published;
  if (!message || (await core.store.getProjection(message.jobId))?.status !== "queued") return;
  await handleCommand(core, message.jobId, { type: "StartEdit", workerId: "w1", leaseMs: 60_000 });
  const output = { bucket: "results", object: `results/${message.jobId}/output.png`, contentType: "image/png", width: 2, height: 2, sizeBytes: 10 };
  await core.images.write(output, Buffer.from("png"), "image/png");
  await handleCommand(core, message.jobId, { type: "CompleteEdit", workerId: "w1", output, processingMs: 1, inferenceMs: 1 });
}

describe("waiting for a direct edit", () => {
  it("answers 200 with the job's view and Preference-Applied when it ends within N seconds", async () => {
    const core = memoryCore();
    const { post, pauses } = apiOn(core, async (elapsed) => {
      if (elapsed >= 2_000) await finishQueued(core);
    });
    const response = await post("wait=10");
    expect(response.status).toBe(200);
    expect(response.headers).toEqual({ "Preference-Applied": "wait=10" });
    expect(response.body).toMatchObject({ status: "succeeded", operation: "upscale", outputFormat: { format: "png" }, output: { contentType: "image/png" } });
    // It read again soon at first, then at most once a second, and stopped once the job ended.
    expect(pauses).toEqual([100, 200, 400, 800, 1000]);
  });

  it("answers 202 as without it once N seconds pass, reading no later than N", async () => {
    const core = memoryCore();
    const { post, pauses } = apiOn(core);
    const response = await post("wait=3");
    expect(response.status).toBe(202);
    expect(response.headers).toBeUndefined();
    expect(response.body).toMatchObject({ status: "queued" });
    expect(pauses.reduce((sum, ms) => sum + ms, 0)).toBe(3_000);
  });

  it("does not wait at all without the header, or with N out of range", async () => {
    for (const prefer of [undefined, "wait=0", "wait=120"]) {
      const core = memoryCore();
      const { post, pauses } = apiOn(core);
      expect((await post(prefer)).status).toBe(202);
      expect(pauses).toEqual([]);
    }
  });

  it("answers 200 at once to a replay of a request whose job has ended", async () => {
    const core = memoryCore();
    const { post, pauses } = apiOn(core);
    const key = `k-${randomUUID()}`;
    const first = await post(undefined, { "idempotency-key": key });
    expect(first.status).toBe(202);
    await finishQueued(core);
    const replay = await post("wait=5", { "idempotency-key": key });
    expect([replay.status, pauses]).toEqual([200, []]);
  });
});
