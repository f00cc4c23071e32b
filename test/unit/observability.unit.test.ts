import { context, SpanStatusCode, trace } from "@opentelemetry/api";
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError } from "../../config/envValues.js";
import { createJsonLogger } from "../../adapters/logging/jsonLogger.js";
import { routeOf } from "../../observability/instrumentedHandlers.js";
import { createStageTimer } from "../../observability/instrumentedPorts.js";
import { createPipelineMetrics } from "../../observability/pipelineMetrics.js";
import { activeLogContext, contextWithJob, extractTraceHeaders, injectTraceHeaders, startTelemetry } from "../../observability/telemetry.js";
import { parseTelemetryConfig } from "../../observability/telemetryConfig.js";

const defaults = { serviceName: "unit", metricsExporter: "none" } as const;
const telemetry = startTelemetry(parseTelemetryConfig({}, defaults));
afterAll(() => telemetry.shutdown());

describe("telemetry configuration", () => {
  it("defaults to no exporters and the Prometheus port 9464", () => {
    expect(parseTelemetryConfig({}, defaults)).toEqual({
      serviceName: "unit",
      tracesExporter: "none",
      metricsExporter: "none",
      metricsPort: 9464,
      metricsHost: "0.0.0.0",
      tracesExportDelayMs: 2000,
    });
  });

  it.each([
    [{ TRACES_EXPORTER: "zipkin" }, /TRACES_EXPORTER must be one of otlp, console, none/],
    [{ TRACES_EXPORTER: "otlp" }, /OTLP_ENDPOINT must be set/],
    [{ METRICS_EXPORTER: "otlp", OTLP_ENDPOINT: "collector:4318" }, /OTLP_ENDPOINT must be a URL/],
    [{ METRICS_PORT: "70000" }, /METRICS_PORT must be an integer/],
  ])("refuses %j, naming the variable", (env, message) => {
    expect(() => parseTelemetryConfig(env, defaults)).toThrow(ConfigError);
    expect(() => parseTelemetryConfig(env, defaults)).toThrow(message);
  });
});

describe("route templates", () => {
  it.each([
    ["/v1/edits", "/v1/edits"],
    ["/v1/models", "/v1/models"],
    ["/v1/edits/4f1c2d3e-0000-4000-8000-000000000000", "/v1/edits/{jobId}"],
    ["/v1/edits/abc/events", "/v1/edits/{jobId}/events"],
    ["/v1/edits/abc/cancel", "/v1/edits/{jobId}/cancel"],
    ["/v1/edits/abc/other", "other"],
    ["/wp-login.php", "other"],
  ])("%s is counted as %s", (path, route) => {
    expect(routeOf(path)).toBe(route);
  });
});

describe("log lines", () => {
  const capture = () => {
    const lines: Array<Record<string, unknown>> = [];
    const log = createJsonLogger("unit", (line) => lines.push(JSON.parse(line) as Record<string, unknown>), {
      projectId: "p1",
      context: activeLogContext,
    });
    return { lines, log };
  };

  it("carry Cloud Logging's trace and span fields and the job in hand", () => {
    const { lines, log } = capture();
    const span = telemetry.tracer.startSpan("work");
    context.with(trace.setSpan(contextWithJob("job-1"), span), () => log({ message: "inside" }));
    span.end();
    const { traceId, spanId } = span.spanContext();
    expect(lines[0]).toMatchObject({
      severity: "INFO",
      message: "inside",
      jobId: "job-1",
      "logging.googleapis.com/trace": `projects/p1/traces/${traceId}`,
      "logging.googleapis.com/spanId": spanId,
      "logging.googleapis.com/trace_sampled": true,
    });
  });

  it("keep the caller's own jobId and severity, and carry no trace outside a span", () => {
    const { lines, log } = capture();
    context.with(contextWithJob("job-in-hand"), () => log({ severity: "WARNING", message: "about another", jobId: "job-2" }));
    log({ message: "no work in hand" });
    expect(lines[0]).toMatchObject({ severity: "WARNING", jobId: "job-2" });
    expect(lines[0]).not.toHaveProperty("logging.googleapis.com/trace");
    expect(Object.keys(lines[1] ?? {}).sort()).toEqual(["component", "message", "severity", "time"]);
  });
});

describe("trace headers", () => {
  it("carry a span's context across a hop as W3C traceparent", () => {
    const span = telemetry.tracer.startSpan("publish");
    const headers = injectTraceHeaders(trace.setSpan(context.active(), span));
    span.end();
    expect(headers.traceparent).toBe(`00-${span.spanContext().traceId}-${span.spanContext().spanId}-01`);
    const continued = trace.getSpanContext(extractTraceHeaders({ Traceparent: headers.traceparent }));
    expect(continued).toMatchObject({ traceId: span.spanContext().traceId, spanId: span.spanContext().spanId, isRemote: true });
  });
});

describe("the stage timer handed to the edits", () => {
  it("makes a span and an image_edit_stage_seconds sample per stage, failed stages included", async () => {
    const spans = new InMemorySpanExporter();
    const tracer = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }).getTracer("unit");
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 60_000 });
    const meter = new MeterProvider({ readers: [reader] }).getMeter("unit");
    const timeStage = createStageTimer({ tracer, metrics: createPipelineMetrics(meter) });

    expect(await timeStage("decode", async () => 42)).toBe(42);
    await expect(timeStage("encode", () => Promise.reject(new Error("disk full")))).rejects.toThrow("disk full");
    await reader.forceFlush();

    expect(spans.getFinishedSpans().map((span) => [span.name, span.status.code])).toEqual([
      ["edit.decode", SpanStatusCode.UNSET],
      ["edit.encode", SpanStatusCode.ERROR],
    ]);
    const stage = exporter
      .getMetrics()
      .at(-1)
      ?.scopeMetrics.flatMap((scope) => scope.metrics)
      .find((metric) => metric.descriptor.name === "image_edit_stage_seconds");
    expect(stage?.dataPoints.map((point) => [point.attributes.stage, (point.value as { count: number }).count]).sort()).toEqual([
      ["decode", 1],
      ["encode", 1],
    ]);
  });
});
