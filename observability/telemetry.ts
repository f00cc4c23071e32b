/**
 * Starts OpenTelemetry (`@opentelemetry/sdk-node`) for one process: W3C trace-context
 * propagation, a tracer whose spans go to the configured exporter, and a meter read by Prometheus
 * or pushed over OTLP. Entry files call `startTelemetry` once, before they create their clients,
 * and hand its tracer and meter to the decorators in `instrumentedPorts.ts`.
 */
import { context, createContextKey, metrics, propagation, trace, type Context, type Meter, type Tracer } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { PeriodicExportingMetricReader, type MetricReader } from "@opentelemetry/sdk-metrics";
import { NodeSDK } from "@opentelemetry/sdk-node";
import { BatchSpanProcessor, ConsoleSpanExporter, NoopSpanProcessor, type SpanProcessor } from "@opentelemetry/sdk-trace-base";
import type { LogContext } from "../events/logger.js";
import type { TraceHeaders } from "../events/jobQueue.js";
import type { TelemetryConfig } from "./telemetryConfig.js";

export interface Telemetry {
  tracer: Tracer;
  meter: Meter;
  /** Sends what is still buffered and stops the exporters (and the /metrics server). */
  shutdown(): Promise<void>;
}

const INSTRUMENTATION_SCOPE = "image-edit";

export function startTelemetry(config: TelemetryConfig): Telemetry {
  const sdk = new NodeSDK({
    serviceName: config.serviceName,
    textMapPropagator: new W3CTraceContextPropagator(),
    spanProcessors: [spanProcessor(config)],
    ...metricReaderOption(config),
    // Only our own spans: the decorators around the ports name every hop in the job's words.
    instrumentations: [],
    logRecordProcessors: [],
  });
  sdk.start();
  return {
    tracer: trace.getTracer(INSTRUMENTATION_SCOPE),
    meter: metrics.getMeter(INSTRUMENTATION_SCOPE),
    shutdown: () => sdk.shutdown(),
  };
}

function spanProcessor(config: TelemetryConfig): SpanProcessor {
  const options = { scheduledDelayMillis: config.tracesExportDelayMs };
  switch (config.tracesExporter) {
    case "otlp":
      return new BatchSpanProcessor(new OTLPTraceExporter({ url: `${config.otlpEndpoint}/v1/traces` }), options);
    case "console":
      return new BatchSpanProcessor(new ConsoleSpanExporter(), options);
    case "none":
      // Spans are still made, so that every log line carries its trace and span ids.
      return new NoopSpanProcessor();
    default: {
      const unknown: never = config.tracesExporter;
      throw new Error(`unknown traces exporter ${String(unknown)}`);
    }
  }
}

function metricReaderOption(config: TelemetryConfig): { metricReaders?: MetricReader[] } {
  switch (config.metricsExporter) {
    case "prometheus":
      return { metricReaders: [new PrometheusExporter({ host: config.metricsHost, port: config.metricsPort })] };
    case "otlp":
      return {
        metricReaders: [
          new PeriodicExportingMetricReader({
            exporter: new OTLPMetricExporter({ url: `${config.otlpEndpoint}/v1/metrics` }),
            exportIntervalMillis: 30_000,
          }),
        ],
      };
    case "none":
      return {};
    default: {
      const unknown: never = config.metricsExporter;
      throw new Error(`unknown metrics exporter ${String(unknown)}`);
    }
  }
}

const JOB_ID = createContextKey("image-edit.jobId");

/** A context in which log lines name `jobId`, even those that do not say it themselves. */
export function contextWithJob(jobId: string, parent: Context = context.active()): Context {
  return parent.setValue(JOB_ID, jobId);
}

/** The trace, span and job of the work in hand, for the JSON logger. */
export function activeLogContext(): LogContext | undefined {
  const active = context.active();
  const jobId = active.getValue(JOB_ID) as string | undefined;
  const span = trace.getSpan(active)?.spanContext();
  if (!span && !jobId) return undefined;
  return {
    ...(span && trace.isSpanContextValid(span) ? { traceId: span.traceId, spanId: span.spanId, sampled: (span.traceFlags & 1) === 1 } : {}),
    ...(jobId === undefined ? {} : { jobId }),
  };
}

/** The trace headers of `ctx` (default: the active context), to send along with a hop. */
export function injectTraceHeaders(ctx: Context = context.active()): TraceHeaders {
  const headers: TraceHeaders = {};
  propagation.inject(ctx, headers);
  return headers;
}

/** The context a hop's trace headers continue (the active one when they carry none). */
export function extractTraceHeaders(headers: Record<string, string | undefined> | undefined): Context {
  const carrier: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) if (value !== undefined) carrier[name.toLowerCase()] = value;
  return propagation.extract(context.active(), carrier);
}
