/**
 * One job, one trace: a photo sent to the API goes through every hop of the local stack, whose
 * processes export their spans over OTLP to the receiver the e2e setup started. The spans must
 * form one connected tree, rooted at the HTTP request, that covers the event appends, the storage
 * write and read, the upload trigger, the Pub/Sub publish, the worker's processing and every
 * Triton call, with Triton's own spans under each call; and the processes' log lines about the
 * job must name that trace.
 */
import { join } from "node:path";
import sharp from "sharp";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { emulatorIdToken } from "../../local/auth/emulatorUsers.js";
import type { ReceivedSpan } from "../../local/stack/otlpReceiver.js";
import { ensurePhotos } from "../../local/bench/photos.js";
import { sleep } from "../../local/stack/processes.js";
import { readJsonLog, waitForLogLine, type LogLine } from "../support/stackLogs.js";
import { waitForJobEnd } from "../support/stackJobs.js";

const stack = inject("stack");
const SERVER = 2;
const CLIENT = 3;
const PRODUCER = 4;
const CONSUMER = 5;

let token: string;
let photo: Buffer;

beforeAll(async () => {
  token = await emulatorIdToken(stack.authHost, `tracer-${Date.now()}`);
  photo = await sharp(join(await ensurePhotos(), "chelsea.png")).resize(200).jpeg({ quality: 90 }).toBuffer();
});

async function receivedSpans(): Promise<ReceivedSpan[]> {
  return (await (await fetch(`${stack.otlpUrl}/spans`)).json()) as ReceivedSpan[];
}

/**
 * Triton's InferRequest spans that began a trace of their own. Now and then Triton 2.51 (the
 * tritonserver of nvidia-pytriton 0.7.0) does not continue the traceparent a call carried in its
 * gRPC metadata and starts a new trace for that request instead (seen in 5 of 18 fresh stacks,
 * one call of a job's four each time, while our client sent the same metadata for all four).
 */
const tritonRoots = (spans: ReceivedSpan[]) => spans.filter((span) => span.service === "triton" && span.name === "InferRequest" && !span.parentSpanId);

async function createJob(): Promise<string> {
  const created = await fetch(`${stack.apiUrl}/v1/edits?operation=upscale&params.scale=2`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "image/jpeg" },
    body: new Uint8Array(photo),
  });
  expect(created.status).toBe(202);
  return ((await created.json()) as { jobId: string }).jobId;
}

/**
 * Polls the receiver until `find` finds what it looks for in what it has, or a minute has passed.
 * `find` answers with the spans, or with a line saying what is still missing, for the failure.
 */
async function waitForSpans(find: (all: ReceivedSpan[]) => ReceivedSpan[] | string): Promise<ReceivedSpan[]> {
  const deadline = Date.now() + 60_000;
  while (true) {
    const all = await receivedSpans();
    const found = find(all);
    if (typeof found !== "string") return found;
    if (Date.now() > deadline) throw new Error(`the expected spans did not arrive (${found}); the receiver has ${all.length}`);
    await sleep(250);
  }
}

describe("tracing", () => {
  it("puts a job's every hop, from the HTTP request to each Triton call, in one connected trace", async () => {
    const before = (await receivedSpans()).length;
    const jobId = await createJob();
    expect(await waitForJobEnd(stack.apiUrl, token, jobId)).toBe("succeeded");

    const succeeded = (await waitForLogLine(join(stack.logDir, "worker-1.log"), (line) => line.message === "edit succeeded" && line.jobId === jobId)) as LogLine & {
      tiles: number;
    };
    expect(succeeded.tiles).toBeGreaterThan(1);

    // The request's server span names the job; its trace is the job's.
    const [root] = await waitForSpans((all) => {
      const found = all.find((span) => span.kind === SERVER && span.attributes["job.id"] === jobId);
      return found ? [found] : `no server span names job ${jobId}`;
    });
    const { traceId, spanId: rootId } = root as ReceivedSpan;
    const spans = await waitForSpans((all) => {
      const inTrace = all.filter((span) => span.traceId === traceId);
      const done = inTrace.some((span) => span.kind === CONSUMER && span.attributes["messaging.settlement"] === "ack");
      const calls = inTrace.filter((span) => span.name === "triton ModelInfer upscale");
      const tritonCalls = calls.length;
      // Triton exports its server span of a call on its own schedule; wait for every call's.
      const served = new Set(inTrace.filter((span) => span.service === "triton" && span.kind === SERVER).map((span) => span.parentSpanId));
      const tritonOwn = calls.filter((call) => served.has(call.spanId)).length;
      // Spans arrive in export batches, a child's sometimes before its parent's: wait until
      // every parent named has arrived (a parent that never comes fails the wait).
      const ids = new Set(inTrace.map((span) => span.spanId));
      const connected = inTrace.every((span) => !span.parentSpanId || ids.has(span.parentSpanId));
      // Every call's Triton span is under the call, or (Triton's lapse, above) a root of its own;
      // at least one joined, so a traceparent that never reached Triton fails the test.
      const lost = tritonRoots(all.slice(before)).length;
      if (done && connected && tritonCalls >= succeeded.tiles && tritonOwn >= 1 && tritonOwn + lost >= succeeded.tiles) return inTrace;
      const orphans = inTrace.filter((span) => span.parentSpanId && !ids.has(span.parentSpanId)).map((span) => `${span.service}/${span.name}`);
      const tritonSpans = all
        .filter((span) => span.service === "triton")
        .map((span) => `${span.name}/${span.kind} ${span.traceId === traceId ? "" : `trace ${span.traceId.slice(0, 8)} `}parent ${span.parentSpanId?.slice(0, 8) ?? "none"}`);
      const callIds = calls.map((call) => call.spanId.slice(0, 8));
      return `${inTrace.length} spans in the trace; acked delivery: ${done}; orphans: [${orphans.join(", ")}]; Triton calls ${tritonCalls} [${callIds.join(", ")}] and Triton's own spans ${tritonOwn} of ${succeeded.tiles} tiles; every Triton span received: [${tritonSpans.join("; ")}]`;
    });

    // One connected tree: one root (the HTTP request), and every other span's parent is in it.
    const ids = new Set(spans.map((span) => span.spanId));
    expect(spans.filter((span) => !span.parentSpanId).map((span) => span.spanId)).toEqual([rootId]);
    expect(root).toMatchObject({ service: "image-edit-functions", name: "POST /v1/edits", attributes: { "http.response.status_code": 202 } });
    for (const span of spans) if (span.spanId !== rootId) expect(ids.has(span.parentSpanId as string), `parent of ${span.name}`).toBe(true);
    // Nothing that changed the job or worked on it landed in another trace (the test's own
    // status reads are traces of their own, and only read).
    const all = await receivedSpans();
    const work = (span: ReceivedSpan) =>
      span.kind === PRODUCER || span.kind === CONSUMER || ["events.append", "storage.read", "storage.write"].includes(span.name);
    expect(all.filter((span) => span.attributes["job.id"] === jobId && span.traceId !== traceId && work(span))).toEqual([]);

    const byId = new Map(spans.map((span) => [span.spanId, span]));
    const isUnder = (span: ReceivedSpan, ancestor: ReceivedSpan): boolean => {
      for (let at = byId.get(span.parentSpanId ?? ""); at; at = byId.get(at.parentSpanId ?? "")) if (at === ancestor) return true;
      return false;
    };
    const named = (service: string, name: string) => spans.filter((span) => span.service.endsWith(service) && span.name === name);

    // The API: event appends (EditRequested, then ImageUploaded + EditQueued), the upload written to storage, the publish.
    expect(named("functions", "events.append").map((span) => span.attributes["job.events"])).toEqual([
      ["EditRequested"],
      ["ImageUploaded", "EditQueued"],
    ]);
    const upload = named("functions", "storage.write");
    expect(upload).toHaveLength(1);
    const publishes = spans.filter((span) => span.kind === PRODUCER);
    expect(publishes.length).toBeGreaterThanOrEqual(1);
    for (const publish of publishes) expect(publish.attributes).toMatchObject({ "messaging.system": "gcp_pubsub", "job.id": jobId });
    // Cloud Storage's notification of the upload starts the upload trigger, which continues the
    // trace from the object's metadata (here it finds the job queued already).
    const trigger = named("functions", "uploadFinalized");
    expect(trigger.map((span) => span.parentSpanId)).toEqual([upload[0]?.spanId]);

    // The worker continues the context of a publish span, carried in the message's attributes;
    // the delivery it worked on is acked.
    const deliveries = spans.filter((span) => span.kind === CONSUMER && span.service === "image-edit-worker");
    const processing = deliveries.find((span) => named("worker", "storage.read").some((read) => read.parentSpanId === span.spanId)) as ReceivedSpan;
    expect(processing.attributes["messaging.settlement"]).toBe("ack");
    for (const delivery of deliveries) expect(publishes.map((span) => span.spanId)).toContain(delivery.parentSpanId);
    const inWorker = (name: string) => named("worker", name).filter((span) => isUnder(span, processing));
    expect(inWorker("storage.read")).toHaveLength(1);
    expect(inWorker("storage.write")).toHaveLength(1);
    // Tile progress (at most once a second) may be appended between the two.
    const appended = inWorker("events.append").map((span) => span.attributes["job.events"] as string[]);
    expect(appended.filter((events) => !events.includes("EditProgressed"))).toEqual([["EditStarted"], ["EditSucceeded"]]);
    // Every tile's Triton call, as a gRPC client span under the worker's processing.
    const tritonCalls = inWorker("triton ModelInfer upscale");
    expect(tritonCalls).toHaveLength(succeeded.tiles);
    for (const call of tritonCalls) expect(call).toMatchObject({ kind: CLIENT, attributes: { "rpc.method": "ModelInfer", "triton.model": "upscale" } });
    // Triton's own tracing continues the traceparent each call sent in its gRPC metadata: under
    // each call one server span of Triton's, except for a call Triton started a new trace for.
    const tritonOwn = spans.filter((span) => span.service === "triton");
    const underCalls = tritonCalls.map((call) => tritonOwn.filter((span) => span.parentSpanId === call.spanId).map((span) => span.kind));
    for (const kinds of underCalls) expect([[SERVER], []]).toContainEqual(kinds);
    const joined = underCalls.filter((kinds) => kinds.length === 1).length;
    expect(joined).toBeGreaterThanOrEqual(1);
    if (joined < tritonCalls.length) console.warn(`Triton started a trace of its own for ${tritonCalls.length - joined} of ${tritonCalls.length} calls`);
    expect(joined + tritonRoots((await receivedSpans()).slice(before)).length).toBeGreaterThanOrEqual(tritonCalls.length);

    // Every log line about the job names its trace, in Cloud Logging's fields, and a span of it.
    const apiLog = await readJsonLog(join(stack.logDir, "function-api.log"));
    const workerLog = await readJsonLog(join(stack.logDir, "worker-1.log"));
    const jobLines = [...apiLog, ...workerLog].filter((line) => line.jobId === jobId);
    expect(jobLines.map((line) => line.message)).toEqual(expect.arrayContaining(["edit requested", "edit started", "edit succeeded"]));
    for (const line of jobLines) {
      expect(line).toMatchObject({ severity: "INFO", "logging.googleapis.com/trace": `projects/${stack.projectId}/traces/${traceId}` });
    }
    // A line may name a span that is still open (a redelivery being handed back): wait for it to be sent.
    const spansOfLines = new Set(jobLines.map((line) => line["logging.googleapis.com/spanId"] as string));
    await waitForSpans((all) => {
      const sent = new Set(all.filter((span) => span.traceId === traceId).map((span) => span.spanId));
      const missing = [...spansOfLines].filter((spanId) => !sent.has(spanId));
      return missing.length === 0 ? all : `log lines name spans never sent: ${missing.join(", ")}`;
    });
  });
});
