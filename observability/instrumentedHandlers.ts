/**
 * Tracing and metrics around the functions' handlers: the HTTP API's requests (a server span
 * that continues the caller's `traceparent`; request counts and latencies by route and status)
 * and the upload trigger's events (a consumer span in the context of the upload's job).
 */
import { context, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import type { Instruments } from "./instrumentedPorts.js";
import { contextWithJob, extractTraceHeaders } from "./telemetry.js";

interface HttpRequest {
  method: string;
  path: string;
  headers: Record<string, string | undefined>;
}

interface HttpResponse {
  status: number;
  body?: unknown;
}

/** The route template of a path, so that job ids do not each make a label value of their own. */
export function routeOf(path: string): string {
  if (path === "/v1/edits" || path === "/v1/models" || path === "/v1/openapi.json") return path;
  const job = /^\/v1\/edits\/[^/]+(\/events|\/cancel)?$/.exec(path);
  if (job) return `/v1/edits/{jobId}${job[1] ?? ""}`;
  return "other";
}

export function instrumentHttpHandler<Req extends HttpRequest, Res extends HttpResponse>(
  handler: (request: Req) => Promise<Res>,
  { tracer, metrics }: Instruments,
): (request: Req) => Promise<Res> {
  return async (request) => {
    const route = routeOf(request.path);
    const parent = extractTraceHeaders(request.headers);
    const span = tracer.startSpan(
      `${request.method} ${route}`,
      { kind: SpanKind.SERVER, attributes: { "http.request.method": request.method, "http.route": route, "url.path": request.path } },
      parent,
    );
    const began = performance.now();
    let status = 500;
    try {
      const response = await context.with(trace.setSpan(parent, span), () => handler(request));
      status = response.status;
      const jobId = (response.body as { jobId?: unknown } | undefined)?.jobId;
      if (typeof jobId === "string") span.setAttribute("job.id", jobId);
      return response;
    } catch (error) {
      span.recordException(error as Error);
      throw error;
    } finally {
      span.setAttribute("http.response.status_code", status);
      if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
      const labels = { route, method: request.method, status: String(status) };
      metrics.httpRequests.add(1, labels);
      metrics.httpDuration.record((performance.now() - began) / 1000, labels);
    }
  };
}

/**
 * Runs an event handler in a consumer span named `name`, continuing the trace headers the event
 * carries (for an upload: its object metadata), in the context of its job if known.
 */
export function instrumentEventHandler<E, R>(
  name: string,
  handler: (event: E) => Promise<R>,
  about: (event: E) => { jobId?: string | undefined; trace?: Record<string, string> | undefined },
  { tracer }: Pick<Instruments, "tracer">,
): (event: E) => Promise<R> {
  return async (event) => {
    const { jobId, trace: headers } = about(event);
    const carried = extractTraceHeaders(headers);
    const parent = jobId === undefined ? carried : contextWithJob(jobId, carried);
    const span = tracer.startSpan(name, { kind: SpanKind.CONSUMER, attributes: jobId === undefined ? {} : { "job.id": jobId } }, parent);
    try {
      const result = await context.with(trace.setSpan(parent, span), () => handler(event));
      span.setAttribute("outcome", String(result));
      return result;
    } catch (error) {
      span.recordException(error as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
      throw error;
    } finally {
      span.end();
    }
  };
}
