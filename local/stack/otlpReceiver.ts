/**
 * A small OTLP/HTTP receiver on 127.0.0.1 that keeps the spans it is sent in memory, for the
 * tests that check a job's trace: the stack's processes export to it as they would to an
 * OpenTelemetry Collector. It takes the JSON encoding (what `@opentelemetry/exporter-trace-otlp-http`
 * sends) and the protobuf one (what Triton's OpenTelemetry tracing sends), answers other signals
 * with 200 and drops them, and serves the spans at GET /spans.
 */
import { createServer, type Server } from "node:http";
import { gunzipSync } from "node:zlib";
// The OTLP protobuf messages, as the OpenTelemetry exporters themselves encode them.
import otlpProto from "@opentelemetry/otlp-transformer/build/src/generated/root.js";

export interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  /** OTLP's SpanKind number: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  attributes: Record<string, unknown>;
}

export interface OtlpReceiver {
  /** Base URL to give exporters (OTLP_ENDPOINT): they post to /v1/traces and /v1/metrics. */
  url: string;
  spans(): ReceivedSpan[];
  stop(): Promise<void>;
}

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
  arrayValue?: { values?: OtlpValue[] };
}

interface OtlpAttribute {
  key: string;
  value: OtlpValue;
}

interface OtlpTraces {
  resourceSpans?: Array<{
    resource?: { attributes?: OtlpAttribute[] };
    scopeSpans?: Array<{ spans?: Array<{ traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number; attributes?: OtlpAttribute[] }> }>;
  }>;
}

export async function startOtlpReceiver(port = 0): Promise<OtlpReceiver> {
  const received: ReceivedSpan[] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      if (request.method === "GET" && request.url === "/spans") {
        response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(received));
        return;
      }
      if (request.method !== "POST") {
        response.writeHead(405).end();
        return;
      }
      try {
        let body = Buffer.concat(chunks);
        if (request.headers["content-encoding"] === "gzip") body = gunzipSync(body);
        if (request.url === "/v1/traces") {
          const type = String(request.headers["content-type"]);
          if (type.startsWith("application/json")) received.push(...flatten(JSON.parse(body.toString("utf8")) as OtlpTraces));
          else if (type.startsWith("application/x-protobuf")) received.push(...flatten(fromProtobuf(body)));
          else {
            response.writeHead(415).end("send OTLP/HTTP JSON or protobuf");
            return;
          }
        }
        response.writeHead(200, { "content-type": "application/json" }).end("{}");
      } catch (error) {
        response.writeHead(400).end(String(error));
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  const bound = typeof address === "object" && address ? address.port : port;
  return {
    url: `http://127.0.0.1:${bound}`,
    spans: () => [...received],
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function flatten(traces: OtlpTraces): ReceivedSpan[] {
  const spans: ReceivedSpan[] = [];
  for (const resourceSpans of traces.resourceSpans ?? []) {
    const resource = attributes(resourceSpans.resource?.attributes);
    for (const scope of resourceSpans.scopeSpans ?? []) {
      for (const span of scope.spans ?? []) {
        spans.push({
          service: String(resource["service.name"] ?? ""),
          traceId: span.traceId,
          spanId: span.spanId,
          ...(span.parentSpanId ? { parentSpanId: span.parentSpanId } : {}),
          name: span.name,
          kind: span.kind,
          attributes: attributes(span.attributes),
        });
      }
    }
  }
  return spans;
}

/** A protobuf export request in the JSON encoding's shape (ids as hex, 64-bit ints as strings). */
function fromProtobuf(body: Buffer): OtlpTraces {
  const request = (otlpProto as unknown as ProtoRoot).opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;
  const hex = (bytes: unknown) => Buffer.from(bytes as Uint8Array).toString("hex");
  const decoded = request.toObject(request.decode(body), { longs: String, bytes: Array, defaults: false }) as {
    resourceSpans?: Array<{
      resource?: { attributes?: OtlpAttribute[] };
      scopeSpans?: Array<{ spans?: Array<{ traceId: number[]; spanId: number[]; parentSpanId?: number[]; name: string; kind?: number; attributes?: OtlpAttribute[] }> }>;
    }>;
  };
  return {
    resourceSpans: (decoded.resourceSpans ?? []).map((resourceSpans) => ({
      ...(resourceSpans.resource ? { resource: resourceSpans.resource } : {}),
      scopeSpans: (resourceSpans.scopeSpans ?? []).map((scope) => ({
        spans: (scope.spans ?? []).map((span) => ({
          ...span,
          traceId: hex(span.traceId),
          spanId: hex(span.spanId),
          ...(span.parentSpanId && span.parentSpanId.length > 0 ? { parentSpanId: hex(span.parentSpanId) } : { parentSpanId: undefined }),
          kind: span.kind ?? 0,
        })),
      })),
    })),
  };
}

interface ProtoType {
  decode(bytes: Uint8Array): unknown;
  toObject(message: unknown, options: Record<string, unknown>): unknown;
}

interface ProtoRoot {
  opentelemetry: { proto: { collector: { trace: { v1: { ExportTraceServiceRequest: ProtoType } } } } };
}

function attributes(list: OtlpAttribute[] | undefined): Record<string, unknown> {
  return Object.fromEntries((list ?? []).map(({ key, value }) => [key, valueOf(value)]));
}

function valueOf(value: OtlpValue): unknown {
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return value.doubleValue;
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.arrayValue) return (value.arrayValue.values ?? []).map(valueOf);
  return undefined;
}
