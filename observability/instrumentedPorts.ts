/**
 * Decorators that trace and meter the ports: each takes a port and returns the same port, whose
 * calls make spans (children of the work in hand) and move the pipeline's metrics. The core and
 * the adapters stay unaware of them; the entry files wrap the real adapters.
 *
 * One job is one trace: the HTTP request's span is the root; the Pub/Sub publish injects its
 * context into the message (`JobQueue.publish`'s trace headers); the worker's processing span
 * continues it (`JobDelivery.trace`); every event append, storage read and write, and Triton call
 * (`InferenceRequest.trace`, sent as gRPC metadata) is a child of the span in hand.
 */
import { context, SpanKind, SpanStatusCode, trace, type Attributes, type Span, type Tracer } from "@opentelemetry/api";
import type { RecordedEvent } from "../events/editEvents.js";
import type { InferenceClient } from "../events/inferenceClient.js";
import type { EventStore } from "../events/eventStore.js";
import type { ImageStore } from "../events/imageStore.js";
import type { JobDelivery, JobQueue, JobSubscription } from "../events/jobQueue.js";
import type { CpuStage, EditStage, JobStage, StageTimer } from "../events/stageTimer.js";
import type { PipelineMetrics } from "./pipelineMetrics.js";
import { contextWithJob, extractTraceHeaders, injectTraceHeaders } from "./telemetry.js";

export interface Instruments {
  tracer: Tracer;
  metrics: PipelineMetrics;
}

/** Runs `work` in a new active span that ends with it, marked as an error when it throws. */
export async function inSpan<T>(
  tracer: Tracer,
  name: string,
  options: { kind?: SpanKind; attributes?: Attributes },
  work: (span: Span) => Promise<T>,
): Promise<T> {
  return tracer.startActiveSpan(name, options, async (span) => {
    try {
      return await work(span);
    } catch (error) {
      span.recordException(error as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
      throw error;
    } finally {
      span.end();
    }
  });
}

/** Runs `work`, recording its duration (whether it succeeds or not) as `stage`. */
async function timed<T>(metrics: PipelineMetrics, stage: JobStage, work: () => Promise<T>): Promise<T> {
  const began = performance.now();
  try {
    return await work();
  } finally {
    metrics.stage.record((performance.now() - began) / 1000, { stage });
  }
}

const OUTCOMES: Partial<Record<RecordedEvent["type"], string>> = {
  EditSucceeded: "succeeded",
  EditFailed: "failed",
  EditAttemptFailed: "retried",
  EditCanceled: "canceled",
};

export function instrumentEventStore(store: EventStore, { tracer, metrics }: Instruments): EventStore {
  const span = <T>(operation: string, jobId: string | undefined, work: () => Promise<T>) =>
    inSpan(
      tracer,
      `events.${operation}`,
      { kind: SpanKind.CLIENT, attributes: { "db.system.name": "firestore", "db.operation.name": operation, ...(jobId ? { "job.id": jobId } : {}) } },
      () => timed(metrics, "events", work),
    );
  return {
    load: (jobId) => span("load", jobId, () => store.load(jobId)),
    async append(jobId, expectedVersion, events, projection, options) {
      await span("append", jobId, async () => {
        trace.getActiveSpan()?.setAttributes({ "job.events": events.map((event) => event.type), "job.expected_version": expectedVersion });
        await store.append(jobId, expectedVersion, events, projection, options);
      });
      for (const event of events) {
        const outcome = OUTCOMES[event.type];
        if (outcome) metrics.jobs.add(1, { operation: projection.operation, outcome });
        // A result from the cache is a hit; a result computed under a cache key is a miss.
        if (event.type === "EditSucceeded" && (event.data.cachedFrom !== undefined || event.data.cacheKey !== undefined)) {
          metrics.resultCache.add(1, { operation: projection.operation, outcome: event.data.cachedFrom === undefined ? "miss" : "hit" });
        }
      }
    },
    getProjection: (jobId) => span("getProjection", jobId, () => store.getProjection(jobId)),
    putProjection: (state) => span("putProjection", state.jobId, () => store.putProjection(state)),
    listByOwner: (ownerId, limit) => span("listByOwner", undefined, () => store.listByOwner(ownerId, limit)),
    countInFlight: (ownerId) => span("countInFlight", undefined, () => store.countInFlight(ownerId)),
    listLapsedLeases: (now, limit) => span("listLapsedLeases", undefined, () => store.listLapsedLeases(now, limit)),
    listStaleQueued: (before, limit) => span("listStaleQueued", undefined, () => store.listStaleQueued(before, limit)),
    listAwaitingUploadSince: (before, limit) => span("listAwaitingUploadSince", undefined, () => store.listAwaitingUploadSince(before, limit)),
    listStartedBefore: (before, limit) => span("listStartedBefore", undefined, () => store.listStartedBefore(before, limit)),
    findCachedResult: (ownerId, cacheKey) => span("findCachedResult", undefined, () => store.findCachedResult(ownerId, cacheKey)),
  };
}

export function instrumentImageStore(images: ImageStore, { tracer, metrics }: Instruments): ImageStore {
  const attributes = (ref: { bucket: string; object: string }) => ({ "gcs.bucket": ref.bucket, "gcs.object": ref.object });
  return {
    // The upload carries the trace headers as object metadata, so that the upload trigger,
    // started by Cloud Storage rather than by a request, continues the job's trace.
    createUploadUrl: (ref, options) =>
      inSpan(tracer, "storage.signUploadUrl", { attributes: attributes(ref) }, () =>
        images.createUploadUrl(ref, { ...options, metadata: { ...options.metadata, ...injectTraceHeaders() } }),
      ),
    createDownloadUrl: (ref, expiresAt) =>
      inSpan(tracer, "storage.signDownloadUrl", { attributes: attributes(ref) }, () => images.createDownloadUrl(ref, expiresAt)),
    read: (ref, maxBytes) =>
      inSpan(tracer, "storage.read", { kind: SpanKind.CLIENT, attributes: attributes(ref) }, async (span) => {
        const bytes = await timed(metrics, "download", () => images.read(ref, maxBytes));
        span.setAttribute("gcs.bytes", bytes.length);
        return bytes;
      }),
    // A streamed body (an edit's output) is written while it is computed, so the "upload" stage
    // of a streamed write spans the inference and encoding that feed it.
    write: (ref, body, contentType, metadata) =>
      inSpan(
        tracer,
        "storage.write",
        { kind: SpanKind.CLIENT, attributes: { ...attributes(ref), ...(Buffer.isBuffer(body) ? { "gcs.bytes": body.length } : { "gcs.streamed": true }) } },
        () => timed(metrics, "upload", () => images.write(ref, body, contentType, { ...metadata, ...injectTraceHeaders() })),
      ),
    readHead: (ref, length) => inSpan(tracer, "storage.readHead", { kind: SpanKind.CLIENT, attributes: attributes(ref) }, () => images.readHead(ref, length)),
    delete: (ref) => inSpan(tracer, "storage.delete", { kind: SpanKind.CLIENT, attributes: attributes(ref) }, () => images.delete(ref)),
  };
}

export function instrumentJobQueue(queue: JobQueue, topic: string, { tracer }: Instruments): JobQueue {
  return {
    publish: (message, headers) =>
      inSpan(
        tracer,
        `${topic} publish`,
        {
          kind: SpanKind.PRODUCER,
          attributes: { "messaging.system": "gcp_pubsub", "messaging.destination.name": topic, "job.id": message.jobId, "job.operation": message.operation },
        },
        async (span) => {
          // The publish span's own context travels with the message: the worker continues it.
          const id = await queue.publish(message, { ...headers, ...injectTraceHeaders() });
          span.setAttribute("messaging.message.id", id);
          return id;
        },
      ),
  };
}

/**
 * Each delivery runs in a consumer span that continues the publisher's trace, in a context that
 * names its job (so that every log line about it carries `jobId`); the queue wait, the work in
 * flight and the oldest running delivery's age are metered here.
 */
export function instrumentJobSubscription(subscription: JobSubscription, name: string, { tracer, metrics }: Instruments): JobSubscription {
  const running = new Map<JobDelivery, number>();
  metrics.oldestRunningJobAge.addCallback((result) => {
    const oldest = Math.min(...running.values());
    result.observe(running.size === 0 ? 0 : (Date.now() - oldest) / 1000);
  });
  return {
    start(handle) {
      subscription.start(async (delivery) => {
        const { jobId, operation } = delivery.message;
        const parent = contextWithJob(jobId, extractTraceHeaders(delivery.trace));
        const span = tracer.startSpan(
          `${name} process`,
          {
            kind: SpanKind.CONSUMER,
            attributes: {
              "messaging.system": "gcp_pubsub",
              "messaging.destination.subscription.name": name,
              "messaging.gcp_pubsub.message.delivery_attempt": delivery.deliveryAttempt,
              "job.id": jobId,
              "job.operation": operation,
            },
          },
          parent,
        );
        metrics.queueWait.record(Math.max(0, Date.now() - delivery.publishedAt.getTime()) / 1000, { operation });
        metrics.inFlight.add(1);
        running.set(delivery, Date.now());
        const settled: JobDelivery = {
          ...delivery,
          ack: () => {
            span.setAttribute("messaging.settlement", "ack");
            delivery.ack();
          },
          nack: () => {
            span.setAttribute("messaging.settlement", "nack");
            delivery.nack();
          },
        };
        try {
          await context.with(trace.setSpan(parent, span), () => handle(settled));
        } catch (error) {
          span.recordException(error as Error);
          span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
          throw error;
        } finally {
          span.end();
          running.delete(delivery);
          metrics.inFlight.add(-1);
        }
      });
    },
    stop: () => subscription.stop(),
  };
}

export function instrumentInferenceClient<C extends InferenceClient>(client: C, { tracer, metrics }: Instruments): C {
  return {
    ...client,
    isLive: () => client.isLive(),
    isReady: () => client.isReady(),
    isModelReady: (model, version) => client.isModelReady(model, version),
    describeModel: (model, version) => client.describeModel(model, version),
    close: () => client.close(),
    infer: (request) => {
      const tiles = request.inputs[0]?.shape[0] ?? 1;
      return inSpan(
        tracer,
        `triton ModelInfer ${request.model}`,
        {
          kind: SpanKind.CLIENT,
          attributes: {
            "rpc.system": "grpc",
            "rpc.service": "inference.GRPCInferenceService",
            "rpc.method": "ModelInfer",
            "triton.model": request.model,
            "triton.batch_size": tiles,
          },
        },
        async () => {
          const began = performance.now();
          let outcome = "ok";
          try {
            // The call's own span context goes in the gRPC metadata, so Triton's trace joins ours.
            return await client.infer({ ...request, trace: { ...request.trace, ...injectTraceHeaders() } });
          } catch (error) {
            outcome = (error as { code?: string }).code ?? "error";
            throw error;
          } finally {
            metrics.tritonRequest.record((performance.now() - began) / 1000, { model: request.model, outcome });
            if (outcome === "ok") metrics.tiles.add(tiles, { model: request.model });
          }
        },
      );
    },
  };
}

/** The stage timer handed to the edits: a span and a `image_edit_stage_seconds` sample per stage. */
export function createStageTimer({ tracer, metrics }: Instruments): StageTimer {
  return Object.assign(<T>(stage: EditStage, work: () => Promise<T>) => inSpan(tracer, `edit.${stage}`, {}, () => timed(metrics, stage, work)), {
    add: (stage: CpuStage, ms: number) => metrics.stage.record(ms / 1000, { stage }),
  });
}

/**
 * Keeps `image_edit_triton_ready` current by asking the server every `intervalMs`; returns the
 * function that stops asking.
 */
export function watchTritonReadiness(client: InferenceClient, metrics: PipelineMetrics, intervalMs = 10_000): () => void {
  let ready = 0;
  const poll = () =>
    client.isReady().then(
      (answer) => (ready = answer ? 1 : 0),
      () => (ready = 0),
    );
  metrics.tritonReady.addCallback((result) => result.observe(ready));
  void poll();
  const timer = setInterval(() => void poll(), intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
