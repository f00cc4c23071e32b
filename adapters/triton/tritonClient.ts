/**
 * The `InferenceClient` port over Triton's gRPC service (KServe v2 / Open Inference Protocol),
 * with our own minimal `inference.proto`. One channel per client, reused by every call.
 */
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import {
  InferenceError,
  type InferenceClient,
  type InferenceRequest,
  type InferenceResult,
  type ModelDescription,
  type Tensor,
  type TensorSpec,
} from "../../events/inferenceClient.js";
import { inferenceErrorFromGrpc } from "./inferenceErrorFromGrpc.js";
import { createRawUnaryChannel } from "./rawUnaryCall.js";
import { isTensorDatatype, tensorFromBytes, tensorToBytes } from "./tensorBytes.js";

export interface TritonClientOptions {
  /** host:port of Triton's gRPC endpoint, e.g. `127.0.0.1:8001`. */
  url: string;
  /**
   * Interval of HTTP/2 keepalive pings while calls are open. Triton (gRPC core) by default
   * answers pings more often than every 5 minutes without data with GOAWAY after two strikes,
   * so go lower only together with the server's `--grpc-http2-min-recv-ping-interval-without-data`.
   */
  keepaliveMs?: number;
  /** Deadline of calls that give none (health, metadata, and inference without `timeoutMs`). */
  defaultTimeoutMs?: number;
}

/** Raw gRPC messages as @grpc/proto-loader decodes them (keepCase, longs as numbers). */
interface WireParameter {
  int64_param?: number;
  bool_param?: boolean;
  string_param?: string;
}

interface WireTensorMetadata {
  name: string;
  datatype: string;
  shape: number[];
}

interface WireContents {
  int_contents?: number[];
  uint_contents?: number[];
  fp32_contents?: number[];
}

interface WireOutput {
  name: string;
  datatype: string;
  shape: number[];
  contents?: WireContents | null;
}

interface WireInferResponse {
  model_name: string;
  model_version: string;
  outputs: WireOutput[];
  raw_output_contents: Buffer[];
}

type Unary = (
  request: object,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, response?: unknown) => void,
) => grpc.ClientUnaryCall;

type RpcName = "ServerLive" | "ServerReady" | "ModelReady" | "ModelMetadata" | "ModelInfer" | "ModelConfig";

type GrpcInferenceService = grpc.Client & Record<RpcName, Unary>;

/**
 * HTTP/2 flow-control window, per stream and for the connection. With grpc-js's 64 KiB default,
 * an upscaled tile (786 KB for 128² ×4) crosses in a dozen window round trips: Triton serving an
 * instant model answered 16 requests in flight at 39–53 tiles/s, against 67–71 with 8 MiB
 * (docs/benchmarks.md, the worker's ceiling).
 */
const FLOW_CONTROL_WINDOW = 8 << 20;

const PROTO_PATH = fileURLToPath(new URL("./inference.proto", import.meta.url));

let serviceConstructor: grpc.ServiceClientConstructor | undefined;

function loadService(): grpc.ServiceClientConstructor {
  if (!serviceConstructor) {
    const definition = protoLoader.loadSync(PROTO_PATH, {
      keepCase: true,
      longs: Number,
      enums: String,
      bytes: Buffer,
      defaults: true,
      oneofs: true,
    });
    const inference = grpc.loadPackageDefinition(definition).inference as grpc.GrpcObject;
    serviceConstructor = inference.GRPCInferenceService as grpc.ServiceClientConstructor;
  }
  return serviceConstructor;
}

export function createTritonClient(options: TritonClientOptions): InferenceClient & TritonConfigReader {
  const defaultTimeoutMs = options.defaultTimeoutMs ?? 60_000;
  const Service = loadService();
  const stub = new Service(options.url, grpc.credentials.createInsecure(), {
    "grpc.keepalive_time_ms": options.keepaliveMs ?? 300_000,
    "grpc.keepalive_timeout_ms": 20_000,
    "grpc.keepalive_permit_without_calls": 0,
    // Upscaled batches are far above gRPC's 4 MiB default.
    "grpc.max_receive_message_length": -1,
    "grpc.max_send_message_length": -1,
    "grpc-node.flow_control_window": FLOW_CONTROL_WINDOW,
  }) as unknown as GrpcInferenceService;
  // ModelInfer, which carries the tiles, goes over a bare HTTP/2 session (rawUnaryCall.ts).
  const inferChannel = createRawUnaryChannel(options.url, FLOW_CONTROL_WINDOW);
  const { requestSerialize, responseDeserialize } = Service.service.ModelInfer as grpc.MethodDefinition<object, WireInferResponse>;

  function call<T>(
    method: RpcName,
    request: object,
    what: string,
    timeoutMs = defaultTimeoutMs,
    signal?: AbortSignal,
    headers: Record<string, string> = {},
  ): Promise<T> {
    if (signal?.aborted) {
      return Promise.reject(new InferenceError("canceled", `${what}: canceled before it was sent`));
    }
    return new Promise<T>((resolve, reject) => {
      const deadline = new Date(Date.now() + timeoutMs);
      const onAbort = () => unaryCall.cancel();
      const metadata = new grpc.Metadata();
      for (const [name, value] of Object.entries(headers)) metadata.set(name, value);
      const unaryCall = stub[method].call(stub, request, metadata, { deadline }, (error, response) => {
        signal?.removeEventListener("abort", onAbort);
        if (error) reject(inferenceErrorFromGrpc(error, what));
        else resolve(response as T);
      });
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  return {
    async isLive() {
      const response = await call<{ live: boolean }>("ServerLive", {}, "server live");
      return response.live;
    },

    async isReady() {
      const response = await call<{ ready: boolean }>("ServerReady", {}, "server ready");
      return response.ready;
    },

    async isModelReady(model, version = "") {
      const response = await call<{ ready: boolean }>("ModelReady", { name: model, version }, `model ready ${model}`);
      return response.ready;
    },

    async describeModel(model, version = ""): Promise<ModelDescription> {
      const response = await call<{
        name: string;
        versions: string[];
        inputs: WireTensorMetadata[];
        outputs: WireTensorMetadata[];
      }>("ModelMetadata", { name: model, version }, `model metadata ${model}`);
      const spec = (t: WireTensorMetadata): TensorSpec => ({ name: t.name, datatype: t.datatype, shape: t.shape.map(Number) });
      return {
        name: response.name,
        versions: response.versions,
        inputs: response.inputs.map(spec),
        outputs: response.outputs.map(spec),
      };
    },

    async readModelConfig(model, version = "") {
      const response = await call<{ config: TritonModelConfig }>("ModelConfig", { name: model, version }, `model config ${model}`);
      return response.config;
    },

    async infer(request: InferenceRequest): Promise<InferenceResult> {
      const what = `infer ${request.model}`;
      const raw = request.inputs.map((t) => tensorToBytes(t.name, t.datatype, t.shape, t.data));
      const parameters: Record<string, WireParameter> = {};
      if (request.priority !== undefined) parameters.priority = { int64_param: request.priority };
      if (request.timeoutMs !== undefined) {
        // The server drops the request if it is still queued when the caller's deadline passes.
        parameters.timeout = { int64_param: Math.max(1, Math.round(request.timeoutMs * 1_000)) };
      }
      const wireRequest = {
        model_name: request.model,
        model_version: request.version ?? "",
        parameters,
        inputs: request.inputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape })),
        outputs: (request.outputs ?? []).map((name) => ({ name })),
        raw_input_contents: raw,
      };
      // The trace headers go in the gRPC metadata, where Triton's own tracing looks for them.
      let response: WireInferResponse;
      try {
        const answer = await inferChannel.call("/inference.GRPCInferenceService/ModelInfer", requestSerialize(wireRequest), {
          timeoutMs: request.timeoutMs ?? defaultTimeoutMs,
          ...(request.signal === undefined ? {} : { signal: request.signal }),
          ...(request.trace === undefined ? {} : { headers: request.trace }),
          ...(request.allocate === undefined ? {} : { allocate: request.allocate }),
        });
        // The raw outputs stay views into the answer's bytes.
        response = responseDeserialize(Buffer.from(answer.buffer, answer.byteOffset, answer.byteLength));
      } catch (error) {
        throw inferenceErrorFromGrpc(error, what);
      }
      return {
        model: response.model_name,
        version: response.model_version,
        outputs: response.outputs.map((output, i) => decodeOutput(output, response.raw_output_contents[i], what)),
      };
    },

    close() {
      stub.close();
      inferChannel.close();
    },
  };
}

function decodeOutput(output: WireOutput, raw: Buffer | undefined, what: string): Tensor {
  const shape = output.shape.map(Number);
  if (!isTensorDatatype(output.datatype)) {
    throw new InferenceError("internal", `${what}: output ${output.name} has unsupported datatype ${output.datatype}`);
  }
  if (raw !== undefined) {
    return { name: output.name, datatype: output.datatype, shape, data: tensorFromBytes(output.name, output.datatype, shape, raw) };
  }
  // A server may answer in typed `contents` instead of raw bytes.
  const contents = output.contents ?? {};
  const data =
    output.datatype === "FP32"
      ? Float32Array.from(contents.fp32_contents ?? [])
      : output.datatype === "INT32"
        ? Int32Array.from(contents.int_contents ?? [])
        : Uint8Array.from(contents.uint_contents ?? []);
  return { name: output.name, datatype: output.datatype, shape, data };
}

/** The subset of Triton's ModelConfig that inference.proto declares. */
export interface TritonModelConfig {
  name: string;
  platform: string;
  backend: string;
  max_batch_size: number;
  input: { name: string; data_type: string; dims: number[] }[];
  output: { name: string; data_type: string; dims: number[] }[];
  instance_group: { name: string; count: number; gpus: number[]; kind: string }[];
  dynamic_batching: {
    preferred_batch_size: number[];
    max_queue_delay_microseconds: number;
    preserve_ordering: boolean;
    priority_levels: number;
    default_priority_level: number;
  } | null;
}

/** Triton-specific reads beyond the port, for start-up checks and tests. */
export interface TritonConfigReader {
  readModelConfig(model: string, version?: string): Promise<TritonModelConfig>;
}
