/**
 * Webhooks through the in-memory doubles: Standard Webhooks signing (the specification's own
 * vector, the official `standardwebhooks` package, and the client's verifier), the SSRF guard,
 * the backoff schedule, which job events become messages, and retries under the same id.
 */
import { randomUUID } from "node:crypto";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { createWebhookGuard, isLoopbackAddress, isPublicAddress } from "../../adapters/webhooks/webhookGuard.js";
import { verifyWebhook, WebhookVerificationError } from "../../client/webhookSignature.js";
import { handleCommand } from "../../events/handleCommand.js";
import type { WebhookEvent } from "../../events/webhookEvents.js";
import { WebhookSendError, type WebhookSender } from "../../events/webhookSender.js";
import { createEditApi, type ApiRequest } from "../../functions/editApi.js";
import { toJobView } from "../../functions/jobView.js";
import { createWebhookDeliverer, nextOutcome, retryDelayMs } from "../../functions/webhookDelivery.js";
import { newWebhookSecret, signWebhook, webhookHeaders } from "../../functions/webhookSignature.js";
import { jobEventOfDocument } from "../../functions/webhookTrigger.js";
import { createMemoryWebhookOutbox } from "../doubles/memoryWebhookOutbox.js";
import { createMemoryWebhookSecrets } from "../doubles/memoryWebhookSecrets.js";
import { createFixedTokenVerifier } from "../doubles/fixedTokenVerifier.js";
import { memoryCore, testJpeg, type MemoryCore } from "../support/coreFixtures.js";

/** The specification's example (standard-webhooks spec, "Signature scheme"). */
const SPEC = {
  secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
  id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
};

describe("signing, as the Standard Webhooks specification says", () => {
  it("reproduces the specification's example signature", () => {
    expect(signWebhook(SPEC.secret, SPEC.id, SPEC.timestamp, SPEC.body)).toBe(SPEC.signature);
  });

  it("agrees with the official standardwebhooks package, both ways, on a fresh secret", () => {
    const secret = newWebhookSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    const now = new Date();
    const body = JSON.stringify({ type: "edit.succeeded", timestamp: now.toISOString(), data: { jobId: randomUUID() } });
    const official = new Webhook(secret);
    const headers = webhookHeaders(secret, "msg_1", now, body);
    expect(headers["webhook-timestamp"]).toBe(String(Math.floor(now.getTime() / 1000)));
    expect(official.verify(body, headers)).toEqual(JSON.parse(body));
    expect(official.sign("msg_1", now, body)).toBe(headers["webhook-signature"]);
  });

  it("gives the client's verifier what it accepts, and nothing tampered, stale or signed with another secret", async () => {
    const secret = newWebhookSecret();
    const now = new Date();
    const body = JSON.stringify({ type: "edit.failed", timestamp: now.toISOString(), data: { jobId: "j1" } });
    const headers = webhookHeaders(secret, "msg_2", now, body);
    await expect(verifyWebhook({ secret, headers, body, now })).resolves.toMatchObject({ id: "msg_2", type: "edit.failed", data: { jobId: "j1" } });
    // The specification's own example, at its own time.
    await expect(
      verifyWebhook({
        secret: SPEC.secret,
        headers: { "webhook-id": SPEC.id, "webhook-timestamp": String(SPEC.timestamp), "webhook-signature": `v1,bm90IGl0 ${SPEC.signature}` },
        body: SPEC.body,
        now: new Date(SPEC.timestamp * 1000 + 60_000),
      }),
    ).resolves.toMatchObject({ id: SPEC.id });
    const refused = [
      { secret, headers, body: body.replace("j1", "j2"), now },
      { secret: newWebhookSecret(), headers, body, now },
      { secret, headers, body, now: new Date(now.getTime() + 301_000) },
      { secret, headers: { ...headers, "webhook-id": "msg_3" }, body, now },
      { secret, headers: { ...headers, "webhook-signature": headers["webhook-signature"]?.replace("v1,", "v2,") ?? "" }, body, now },
      { secret, headers: { "webhook-id": "msg_2" }, body, now },
    ];
    for (const options of refused) await expect(verifyWebhook(options)).rejects.toBeInstanceOf(WebhookVerificationError);
  });
});

describe("the SSRF guard", () => {
  it.each([
    ["93.184.215.14", true],
    ["8.8.8.8", true],
    ["2606:4700:4700::1111", true],
    ["127.0.0.1", false],
    ["127.255.255.254", false],
    ["0.0.0.0", false],
    ["10.1.2.3", false],
    ["100.64.0.1", false],
    ["169.254.169.254", false],
    ["172.16.0.1", false],
    ["172.31.255.255", false],
    ["192.168.1.1", false],
    ["192.0.2.1", false],
    ["198.18.0.1", false],
    ["224.0.0.1", false],
    ["255.255.255.255", false],
    ["::", false],
    ["::1", false],
    ["::ffff:127.0.0.1", false],
    ["::ffff:7f00:1", false],
    ["::ffff:169.254.169.254", false],
    ["::ffff:8.8.8.8", true],
    ["::127.0.0.1", false],
    ["64:ff9b::10.0.0.1", false],
    ["64:ff9b::8.8.8.8", true],
    ["2002:a00:1::", false],
    ["2001:db8::1", false],
    ["fc00::1", false],
    ["fd00:ec2::254", false],
    ["fe80::1", false],
    ["fe80::1%eth0", false],
    ["ff02::1", false],
    ["not-an-address", false],
  ])("classes %s as public: %s", (address, expected) => {
    expect(isPublicAddress(address)).toBe(expected);
  });

  it("knows loopback in both families", () => {
    expect(["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"].every(isLoopbackAddress)).toBe(true);
    expect(["10.0.0.1", "::2", "8.8.8.8", "169.254.169.254"].some(isLoopbackAddress)).toBe(false);
  });

  const dns: Record<string, string[]> = {
    "hooks.example.com": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
    "rebind.example.com": ["93.184.215.14", "10.0.0.7"],
    "metadata.example.com": ["169.254.169.254"],
    "v6private.example.com": ["fd12:3456::1"],
    localhost: ["127.0.0.1", "::1"],
  };
  const resolve = async (host: string) => {
    const addresses = dns[host];
    if (!addresses) throw new Error(`ENOTFOUND ${host}`);
    return addresses;
  };
  const production = createWebhookGuard({ allowLoopbackHttp: false, resolve });
  const local = createWebhookGuard({ allowLoopbackHttp: true, resolve });

  it("lets https to a host with only public addresses through", async () => {
    await expect(production.check("https://hooks.example.com/edits?token=1")).resolves.toBeInstanceOf(URL);
    await expect(production.check("https://93.184.215.14:8443/hook")).resolves.toBeInstanceOf(URL);
    await expect(production.check("https://[2606:4700:4700::1111]/hook")).resolves.toBeInstanceOf(URL);
  });

  it.each([
    ["http://hooks.example.com/edits", /must use https/],
    ["ftp://hooks.example.com/edits", /must use https/],
    ["file:///etc/passwd", /must use https/],
    ["not a url", /not a URL/],
    ["https://user:pass@hooks.example.com/", /user name or password/],
    ["https://127.0.0.1/", /not a public address/],
    ["https://2130706433/", /not a public address/],
    ["https://0x7f.1/", /not a public address/],
    ["https://[::1]/", /not a public address/],
    ["https://[::ffff:169.254.169.254]/", /not a public address/],
    ["https://169.254.169.254/computeMetadata/v1/", /not a public address/],
    ["https://localhost/", /private name/],
    ["https://metadata.google.internal/", /private name/],
    ["https://intranet/", /not a fully qualified name/],
    ["https://metadata.example.com/", /resolves to 169\.254\.169\.254/],
    ["https://rebind.example.com/", /resolves to 10\.0\.0\.7/],
    ["https://v6private.example.com/", /resolves to fd12:3456::1/],
    ["https://nowhere.example.com/", /does not resolve/],
    [`https://hooks.example.com/${"a".repeat(2100)}`, /at most 2048/],
  ])("refuses %s in production", async (url, message) => {
    await expect(production.check(url)).rejects.toThrow(message);
  });

  it("lets the local stack's switch through http and loopback, and nothing else private", async () => {
    await expect(local.check("http://127.0.0.1:9999/hook")).resolves.toBeInstanceOf(URL);
    await expect(local.check("http://[::1]:9999/hook")).resolves.toBeInstanceOf(URL);
    await expect(local.check("http://localhost:9999/hook")).resolves.toBeInstanceOf(URL);
    await expect(local.check("http://10.0.0.1/hook")).rejects.toThrow(/not a public address/);
    await expect(local.check("http://169.254.169.254/")).rejects.toThrow(/not a public address/);
    await expect(local.check("http://metadata.example.com/")).rejects.toThrow(/resolves to 169/);
    await expect(local.check("gopher://127.0.0.1/")).rejects.toThrow(/https or http/);
  });
});

describe("the retry schedule", () => {
  const config = { webhookRetryBaseSeconds: 5, webhookRetryMaxSeconds: 3600, webhookRetryWindowSeconds: 86_400 };

  it("doubles from the base up to the maximum", () => {
    expect([1, 2, 3, 4, 5, 6, 10, 11, 12, 30].map((attempts) => retryDelayMs(attempts, config) / 1000)).toEqual([
      5, 10, 20, 40, 80, 160, 2560, 3600, 3600, 3600,
    ]);
  });

  it("retries failed attempts for 24 hours, then gives up; a 2xx ends it; a refused address is not retried", () => {
    const createdAt = "2026-11-30T00:00:00.000Z";
    const start = Date.parse(createdAt);
    let attempts: Array<{ at: string; durationMs: number; error?: string }> = [];
    let now = start;
    const times: number[] = [];
    for (;;) {
      const attempt = { at: new Date(now).toISOString(), durationMs: 10, error: "the receiver answered 500" };
      const outcome = nextOutcome({ createdAt, attempts }, attempt, false, new Date(now), config);
      attempts = [...attempts, attempt];
      times.push(now);
      if (outcome.state !== "pending") {
        expect(outcome.state).toBe("failed");
        break;
      }
      now = Date.parse(outcome.nextAttemptAt);
    }
    const last = times.at(-1) as number;
    expect(last - start).toBeLessThanOrEqual(86_400_000);
    expect(last - start).toBeGreaterThan(86_400_000 - 3_600_000);
    expect(times.length).toBe(33);
    const ok = { at: createdAt, durationMs: 3, status: 204 };
    expect(nextOutcome({ createdAt, attempts: [] }, ok, false, new Date(start), config)).toEqual({ state: "delivered" });
    expect(nextOutcome({ createdAt, attempts: [] }, { ...ok, error: "refused" }, true, new Date(start), config)).toEqual({ state: "failed" });
  });
});

describe("the trigger's document names", () => {
  it("finds the job and seq of an event document, and nothing in any other", () => {
    expect(jobEventOfDocument("documents/jobs/abc-1/events/0000000012")).toEqual({ jobId: "abc-1", seq: 12 });
    expect(jobEventOfDocument("projects/p/databases/(default)/documents/jobs/abc/events/0000000003")).toEqual({ jobId: "abc", seq: 3 });
    expect(jobEventOfDocument("documents/jobs/abc")).toBeUndefined();
    expect(jobEventOfDocument("documents/jobs/abc/server/state")).toBeUndefined();
    expect(jobEventOfDocument("documents/webhookDeliveries/msg_1")).toBeUndefined();
  });
});

/** A receiver that answers each POST with the next status of `statuses` (the last one repeats) and remembers every request. */
function recordingSender(statuses: Array<number | Error>) {
  const received: Array<{ url: string; headers: Record<string, string>; body: string }> = [];
  const sender: WebhookSender = {
    async send(url, headers, body) {
      received.push({ url, headers, body });
      const next = statuses.length > 1 ? statuses.shift() : statuses[0];
      if (next instanceof Error) throw next;
      return { status: next ?? 200 };
    },
  };
  return { sender, received };
}

async function deliveryRig(core: MemoryCore, statuses: Array<number | Error>) {
  const outbox = createMemoryWebhookOutbox();
  const secrets = createMemoryWebhookSecrets();
  const { sender, received } = recordingSender(statuses);
  const config = { webhookTimeoutSeconds: 5, webhookRetryBaseSeconds: 5, webhookRetryMaxSeconds: 3600, webhookRetryWindowSeconds: 86_400 };
  const deliverer = createWebhookDeliverer({
    store: core.store,
    outbox,
    secrets,
    sender,
    clock: core.clock,
    view: (job) => toJobView(job, { images: core.images, clock: core.clock, config: { resultUrlTtlSeconds: 600 } }),
    newSecret: newWebhookSecret,
    config,
    log: core.log,
  });
  return { outbox, secrets, deliverer, received };
}

/** A job with a webhook for `events`, run through start, progress and success; answers the job id and each event's seq. */
async function jobWithWebhook(core: MemoryCore, events: WebhookEvent[] | undefined, end: "succeed" | "fail" | "cancel" = "succeed") {
  const jobId = randomUUID();
  const input = { bucket: "uploads", object: `uploads/${jobId}`, contentType: "image/jpeg" };
  const webhook = events === undefined ? undefined : { url: "https://hooks.example.com/edits", events };
  const request = await handleCommand(core, jobId, {
    type: "RequestEdit",
    jobId,
    ownerId: "owner-1",
    operation: "upscale",
    params: { scale: 2 },
    flow: "direct",
    input,
    ...(webhook ? { webhook } : {}),
  });
  expect(request.rejection).toBeUndefined();
  await handleCommand(core, jobId, { type: "RecordUpload", ...input, sizeBytes: 10 });
  await handleCommand(core, jobId, { type: "StartEdit", workerId: "w1", leaseMs: 60_000 });
  await handleCommand(core, jobId, { type: "RecordProgress", workerId: "w1", tilesDone: 1, tilesTotal: 2 });
  if (end === "succeed") {
    const output = { bucket: "results", object: `results/${jobId}.png`, contentType: "image/png", width: 8, height: 8, sizeBytes: 100 };
    await core.images.write(output, Buffer.from("png"), "image/png");
    await handleCommand(core, jobId, { type: "CompleteEdit", workerId: "w1", output, processingMs: 5, inferenceMs: 3 });
  } else if (end === "fail") {
    await handleCommand(core, jobId, { type: "FailEdit", workerId: "w1", code: "bad_image", message: "The image is broken." });
  } else {
    await handleCommand(core, jobId, { type: "CancelEdit", by: "owner-1" });
  }
  const log = await core.store.load(jobId);
  return { jobId, seqs: log.map((event) => ({ type: event.type, seq: event.seq })) };
}

async function enqueueAll(deliverer: { enqueue(jobId: string, seq: number): Promise<string | undefined> }, jobId: string, seqs: Array<{ seq: number }>) {
  const ids: string[] = [];
  for (const { seq } of seqs) {
    const id = await deliverer.enqueue(jobId, seq);
    if (id) ids.push(id);
  }
  return ids;
}

describe("delivery", () => {
  it("sends only the final events by default, signed, with the job's view as of the event", async () => {
    const core = memoryCore();
    const rig = await deliveryRig(core, [204]);
    const { jobId, seqs } = await jobWithWebhook(core, ["succeeded", "failed", "canceled"]);
    const ids = await enqueueAll(rig.deliverer, jobId, seqs);
    const succeededSeq = seqs.find((entry) => entry.type === "EditSucceeded")?.seq;
    expect(ids).toEqual([`msg_${jobId}_${succeededSeq}`]);
    expect(rig.received).toHaveLength(1);
    const [message] = rig.received;
    const secret = await rig.secrets.get("owner-1", "unused");
    const verified = await verifyWebhook<{ jobId: string; status: string; output: { url: string } }>({
      secret,
      headers: message?.headers ?? {},
      body: message?.body ?? "",
      now: core.clock.now(),
    });
    expect(verified).toMatchObject({ id: ids[0], type: "edit.succeeded", data: { jobId, status: "succeeded" } });
    expect(verified.data.output.url).toContain(`results/${jobId}.png`);
    expect(message?.url).toBe("https://hooks.example.com/edits");
    expect((await rig.outbox.listByJob(jobId))[0]).toMatchObject({ state: "delivered", attempts: [{ status: 204 }] });
  });

  it("sends running and progress when asked, each once however often the trigger fires", async () => {
    const core = memoryCore();
    const rig = await deliveryRig(core, [200]);
    const { jobId, seqs } = await jobWithWebhook(core, ["running", "progress"]);
    await enqueueAll(rig.deliverer, jobId, seqs);
    await enqueueAll(rig.deliverer, jobId, seqs);
    const types = rig.received.map((message) => (JSON.parse(message.body) as { type: string; data: { status: string; progress?: unknown } }));
    expect(types.map((message) => message.type)).toEqual(["edit.running", "edit.progress"]);
    expect(types[0]?.data.status).toBe("running");
    expect(types[1]?.data.progress).toEqual({ tilesDone: 1, tilesTotal: 2 });
  });

  it.each([
    ["fail", "edit.failed", "failed"],
    ["cancel", "edit.canceled", "canceled"],
  ] as const)("tells a job that ends by %s", async (end, type, status) => {
    const core = memoryCore();
    const rig = await deliveryRig(core, [200]);
    const { jobId, seqs } = await jobWithWebhook(core, ["succeeded", "failed", "canceled"], end);
    await enqueueAll(rig.deliverer, jobId, seqs);
    expect(rig.received.map((message) => JSON.parse(message.body) as { type: string; data: { status: string } })).toMatchObject([{ type, data: { status } }]);
  });

  it("sends nothing for a job without a webhook", async () => {
    const core = memoryCore();
    const rig = await deliveryRig(core, [200]);
    const { jobId, seqs } = await jobWithWebhook(core, undefined);
    expect(await enqueueAll(rig.deliverer, jobId, seqs)).toEqual([]);
    expect(rig.received).toEqual([]);
  });

  it("retries a failed message under the same id, re-signed at each attempt, only once it is due", async () => {
    const core = memoryCore();
    const rig = await deliveryRig(core, [500, new WebhookSendError("no answer within 5000 ms"), 200]);
    const { jobId, seqs } = await jobWithWebhook(core, ["succeeded"]);
    const [id] = await enqueueAll(rig.deliverer, jobId, seqs);
    expect(rig.received).toHaveLength(1);
    expect(await rig.deliverer.deliverDue()).toEqual({ attempted: 0, delivered: 0 });
    core.clock.advance(5_000);
    expect(await rig.deliverer.deliverDue()).toEqual({ attempted: 1, delivered: 0 });
    core.clock.advance(9_000);
    expect(await rig.deliverer.deliverDue()).toEqual({ attempted: 0, delivered: 0 });
    core.clock.advance(1_000);
    expect(await rig.deliverer.deliverDue()).toEqual({ attempted: 1, delivered: 1 });
    expect(rig.received.map((message) => message.headers["webhook-id"])).toEqual([id, id, id]);
    expect(new Set(rig.received.map((message) => message.headers["webhook-timestamp"])).size).toBe(3);
    expect(new Set(rig.received.map((message) => message.body)).size).toBe(1);
    const [stored] = await rig.outbox.listByJob(jobId);
    expect(stored).toMatchObject({ state: "delivered" });
    expect(stored?.attempts).toMatchObject([{ status: 500, error: "the receiver answered 500" }, { error: "no answer within 5000 ms" }, { status: 200 }]);
    expect(stored?.attempts.every((attempt) => attempt.error === undefined || attempt.status !== 200)).toBe(true);
  });

  it("gives up at once on an address the guard refuses at delivery time", async () => {
    const core = memoryCore();
    const rig = await deliveryRig(core, [new WebhookSendError("refused: webhook.url's host resolves to 10.0.0.7", true)]);
    const { jobId, seqs } = await jobWithWebhook(core, ["succeeded"]);
    await enqueueAll(rig.deliverer, jobId, seqs);
    core.clock.advance(3_600_000);
    expect(await rig.deliverer.deliverDue()).toEqual({ attempted: 0, delivered: 0 });
    expect((await rig.outbox.listByJob(jobId))[0]).toMatchObject({ state: "failed", attempts: [{ error: expect.stringMatching(/^refused/) }] });
  });

  it("signs with the owner's secret after a rotation", async () => {
    const core = memoryCore();
    const rig = await deliveryRig(core, [500, 200]);
    const { jobId, seqs } = await jobWithWebhook(core, ["succeeded"]);
    await enqueueAll(rig.deliverer, jobId, seqs);
    const rotated = newWebhookSecret();
    await rig.secrets.rotate("owner-1", rotated);
    core.clock.advance(5_000);
    await rig.deliverer.deliverDue();
    const last = rig.received.at(-1);
    await expect(verifyWebhook({ secret: rotated, headers: last?.headers ?? {}, body: last?.body ?? "", now: core.clock.now() })).resolves.toBeTruthy();
  });
});

describe("the API's webhook field and routes", () => {
  const config = { uploadsBucket: "uploads", signedUrlTtlSeconds: 300, resultUrlTtlSeconds: 300, maxDirectUploadBytes: 200_000, maxUploadBytes: 1_000_000 };

  function apiOn(core: MemoryCore) {
    const alice = `alice-${randomUUID()}`;
    const bob = `bob-${randomUUID()}`;
    const outbox = createMemoryWebhookOutbox();
    const guard = createWebhookGuard({
      allowLoopbackHttp: false,
      resolve: async (host) => (host === "hooks.example.com" ? ["93.184.215.14"] : host === "inside.example.com" ? ["10.0.0.9"] : []),
    });
    const api = createEditApi({
      store: core.store,
      images: core.images,
      queue: core.queue,
      clock: core.clock,
      verifier: createFixedTokenVerifier({ "alice-token": alice, "bob-token": bob }),
      newJobId: randomUUID,
      config,
      log: core.log,
      webhooks: { checkUrl: guard.check, secrets: createMemoryWebhookSecrets(), outbox, newSecret: newWebhookSecret },
    });
    const call = (method: string, path: string, init: Partial<ApiRequest> & { token?: string } = {}) => {
      const { token = "alice-token", ...rest } = init;
      return api({ method, path, query: {}, ...rest, headers: { authorization: `Bearer ${token}`, ...rest.headers } });
    };
    return { call, outbox, alice };
  }
  const json = (value: unknown) => Buffer.from(JSON.stringify(value));
  const signed = { operation: "upscale", params: { scale: 2 }, contentType: "image/jpeg" };

  it("keeps a JSON body's webhook on the job, with the final events by default, and shows it in the view", async () => {
    const core = memoryCore();
    const { call } = apiOn(core);
    const created = await call("POST", "/v1/edits", { rawBody: json({ ...signed, webhook: { url: "https://hooks.example.com/e" } }) });
    expect(created.status).toBe(202);
    const { jobId } = created.body as { jobId: string };
    const view = await call("GET", `/v1/edits/${jobId}`);
    expect(view.body).toMatchObject({ webhook: { url: "https://hooks.example.com/e", events: ["succeeded", "failed", "canceled"] } });
    const named = await call("POST", "/v1/edits", { rawBody: json({ ...signed, webhook: { url: "https://hooks.example.com/e", events: ["progress", "running", "running"] } }) });
    const namedView = await call("GET", `/v1/edits/${(named.body as { jobId: string }).jobId}`);
    expect(namedView.body).toMatchObject({ webhook: { events: ["running", "progress"] } });
  });

  it("takes webhook.url and webhook.events in the direct flow", async () => {
    const core = memoryCore();
    const { call } = apiOn(core);
    const bytes = await testJpeg();
    const query = { operation: "upscale", "params.scale": "2", "webhook.url": "https://hooks.example.com/d", "webhook.events": "running,succeeded" };
    const created = await call("POST", "/v1/edits", { query, headers: { "content-type": "image/jpeg" }, rawBody: bytes });
    expect(created.status).toBe(202);
    const view = await call("GET", `/v1/edits/${(created.body as { jobId: string }).jobId}`);
    expect(view.body).toMatchObject({ webhook: { url: "https://hooks.example.com/d", events: ["running", "succeeded"] } });
    const orphan = await call("POST", "/v1/edits", { query: { operation: "upscale", "webhook.events": "running" }, headers: { "content-type": "image/jpeg" }, rawBody: bytes });
    expect(orphan.status).toBe(400);
    const other = await call("POST", "/v1/edits", { query: { operation: "upscale", "webhook.secret": "x" }, headers: { "content-type": "image/jpeg" }, rawBody: bytes });
    expect(other).toMatchObject({ status: 400, body: { error: { code: "invalid_param" } } });
  });

  it.each([
    ["a string", "https://hooks.example.com/e", /must be an object/],
    ["no url", {}, /webhook.url must be a URL/],
    ["an unknown field", { url: "https://hooks.example.com/e", secret: "x" }, /unknown webhook field "secret"/],
    ["an unknown event", { url: "https://hooks.example.com/e", events: ["done"] }, /"done" is not one of running, progress, succeeded, failed, canceled/],
    ["no events", { url: "https://hooks.example.com/e", events: [] }, /non-empty list/],
    ["http", { url: "http://hooks.example.com/e" }, /must use https/],
    ["the metadata server", { url: "https://169.254.169.254/computeMetadata/v1/" }, /not a public address/],
    ["a host that resolves inside", { url: "https://inside.example.com/e" }, /resolves to 10\.0\.0\.9/],
  ])("refuses a webhook with %s, with a sentence", async (_what, webhook, message) => {
    const core = memoryCore();
    const { call } = apiOn(core);
    const response = await call("POST", "/v1/edits", { rawBody: json({ ...signed, webhook }) });
    expect(response.status).toBe(400);
    const error = (response.body as { error: { code: string; message: string } }).error;
    expect(error.code).toBe("invalid_webhook");
    expect(error.message).toMatch(message);
  });

  it("answers each user their own secret, the same until they rotate it", async () => {
    const core = memoryCore();
    const { call } = apiOn(core);
    const first = await call("GET", "/v1/webhooks/secret");
    expect(first.status).toBe(200);
    const secret = (first.body as { secret: string }).secret;
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/=]{40,}$/);
    expect((await call("GET", "/v1/webhooks/secret")).body).toEqual({ secret });
    const bobs = await call("GET", "/v1/webhooks/secret", { token: "bob-token" });
    expect((bobs.body as { secret: string }).secret).not.toBe(secret);
    const rotated = await call("POST", "/v1/webhooks/secret");
    expect(rotated.status).toBe(200);
    expect((rotated.body as { secret: string }).secret).not.toBe(secret);
    expect((await call("GET", "/v1/webhooks/secret")).body).toEqual(rotated.body);
    expect((await call("DELETE", "/v1/webhooks/secret")).status).toBe(405);
  });

  it("lists a job's deliveries to its owner only", async () => {
    const core = memoryCore();
    const { call, outbox, alice } = apiOn(core);
    const created = await call("POST", "/v1/edits", { rawBody: json({ ...signed, webhook: { url: "https://hooks.example.com/e" } }) });
    const { jobId } = created.body as { jobId: string };
    await outbox.add({
      id: `msg_${jobId}_7`,
      jobId,
      ownerId: alice,
      url: "https://hooks.example.com/e",
      type: "edit.succeeded",
      body: "{}",
      createdAt: core.clock.now().toISOString(),
      state: "pending",
      nextAttemptAt: core.clock.now().toISOString(),
      attempts: [],
    });
    await outbox.record(`msg_${jobId}_7`, { at: core.clock.now().toISOString(), durationMs: 4, status: 500, error: "the receiver answered 500" }, { state: "pending", nextAttemptAt: "2026-11-22T10:00:05.000Z" });
    const listed = await call("GET", `/v1/edits/${jobId}/webhooks`);
    expect(listed).toMatchObject({
      status: 200,
      body: { deliveries: [{ id: `msg_${jobId}_7`, type: "edit.succeeded", state: "pending", nextAttemptAt: "2026-11-22T10:00:05.000Z", attempts: [{ status: 500 }] }] },
    });
    expect((await call("GET", `/v1/edits/${jobId}/webhooks`, { token: "bob-token" })).status).toBe(404);
  });
});
