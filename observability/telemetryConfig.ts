/**
 * Telemetry settings shared by the functions and the worker: where traces go and how metrics are
 * exposed. Each deployable's `parseConfig` calls this with its environment, so that a bad value
 * stops start-up with a message naming the variable.
 */
import { ConfigError, integer, optional, type Env } from "../config/envValues.js";

export type TracesExporter = "otlp" | "console" | "none";
export type MetricsExporter = "prometheus" | "otlp" | "none";

export interface TelemetryConfig {
  /** OTEL_SERVICE_NAME: the service name on spans and metrics (default per deployable). */
  serviceName: string;
  /**
   * TRACES_EXPORTER: `otlp` (OTLP/HTTP to OTLP_ENDPOINT: in production an OpenTelemetry
   * Collector that writes to Cloud Trace), `console`, or `none` (default). With `none`, spans are
   * still made, so that log lines carry trace ids, but nothing is sent.
   */
  tracesExporter: TracesExporter;
  /**
   * METRICS_EXPORTER: `prometheus` (a /metrics endpoint on METRICS_HOST:METRICS_PORT, scraped by
   * Managed Prometheus), `otlp` (pushed to OTLP_ENDPOINT every 30 s, for processes nothing can
   * scrape, such as Cloud Functions), or `none`.
   */
  metricsExporter: MetricsExporter;
  /** METRICS_PORT: the port of /metrics (default 9464, the OpenTelemetry Prometheus port). */
  metricsPort: number;
  /** METRICS_HOST: the address /metrics binds (default 0.0.0.0, so that the scraper reaches the pod). */
  metricsHost: string;
  /** OTLP_ENDPOINT: base URL of an OTLP/HTTP receiver, e.g. http://otel-collector:4318. */
  otlpEndpoint?: string;
  /** TRACES_EXPORT_DELAY_MS: how long finished spans wait to be sent in a batch (default 2000). */
  tracesExportDelayMs: number;
}

export function parseTelemetryConfig(env: Env, defaults: { serviceName: string; metricsExporter: MetricsExporter }): TelemetryConfig {
  const tracesExporter = oneOf(env, "TRACES_EXPORTER", ["otlp", "console", "none"] as const, "none");
  const metricsExporter = oneOf(env, "METRICS_EXPORTER", ["prometheus", "otlp", "none"] as const, defaults.metricsExporter);
  const otlpEndpoint = optional(env, "OTLP_ENDPOINT");
  if (otlpEndpoint !== undefined && !/^https?:\/\//.test(otlpEndpoint)) {
    throw new ConfigError(`OTLP_ENDPOINT must be a URL such as http://127.0.0.1:4318, not "${otlpEndpoint}"`);
  }
  if ((tracesExporter === "otlp" || metricsExporter === "otlp") && otlpEndpoint === undefined) {
    throw new ConfigError("OTLP_ENDPOINT must be set when TRACES_EXPORTER or METRICS_EXPORTER is otlp");
  }
  return {
    serviceName: optional(env, "OTEL_SERVICE_NAME") ?? defaults.serviceName,
    tracesExporter,
    metricsExporter,
    metricsPort: integer(env, "METRICS_PORT", 9464, 1, 65_535),
    metricsHost: optional(env, "METRICS_HOST") ?? "0.0.0.0",
    tracesExportDelayMs: integer(env, "TRACES_EXPORT_DELAY_MS", 2_000, 1, 60_000),
    ...(otlpEndpoint === undefined ? {} : { otlpEndpoint: otlpEndpoint.replace(/\/+$/, "") }),
  };
}

function oneOf<T extends string>(env: Env, name: string, values: readonly T[], fallback: T): T {
  const raw = optional(env, name);
  if (raw === undefined) return fallback;
  if (!(values as readonly string[]).includes(raw)) throw new ConfigError(`${name} must be one of ${values.join(", ")}, not "${raw}"`);
  return raw as T;
}
