/**
 * The port to the inference server, in our words. Adapters (the Triton gRPC client) translate
 * their wire types and errors into these; no SDK or generated type crosses it.
 */

/** Element types the edits exchange with the server. */
export type TensorDatatype = "UINT8" | "FP32" | "INT32";

export type TensorData = Uint8Array | Float32Array | Int32Array;

export interface Tensor {
  name: string;
  datatype: TensorDatatype;
  /** Row-major shape, batch dimension first where the model batches. */
  shape: number[];
  data: TensorData;
}

export interface InferenceRequest {
  model: string;
  /** Empty or absent: the server's policy picks the version. */
  version?: string;
  inputs: Tensor[];
  /** Output names wanted; absent means all of the model's outputs. */
  outputs?: string[];
  /** Gives up on the call after this many milliseconds (the gRPC deadline). */
  timeoutMs?: number;
  /** Aborting cancels the call on the wire. */
  signal?: AbortSignal;
  /** Scheduler priority on the server, 1 is highest; absent uses the model's default. */
  priority?: number;
  /**
   * W3C Trace Context headers (`traceparent`, `tracestate`) sent with the call (gRPC metadata),
   * so that the server's own tracing joins the job's trace.
   */
  trace?: Record<string, string>;
  /**
   * Where the answer's bytes go: called with their size, it returns a buffer of exactly that
   * size, which the outputs' data are then views into (so the caller may use it again once done
   * with them). Without it, the client allocates. A client may also ignore it.
   */
  allocate?: (byteLength: number) => Uint8Array;
}

export interface InferenceResult {
  model: string;
  version: string;
  outputs: Tensor[];
}

export interface TensorSpec {
  name: string;
  datatype: string;
  /** -1 for a variable dimension. */
  shape: number[];
}

export interface ModelDescription {
  name: string;
  versions: string[];
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

export interface InferenceClient {
  /** The server process is up. */
  isLive(): Promise<boolean>;
  /** The server accepts inference requests. */
  isReady(): Promise<boolean>;
  isModelReady(model: string, version?: string): Promise<boolean>;
  describeModel(model: string, version?: string): Promise<ModelDescription>;
  infer(request: InferenceRequest): Promise<InferenceResult>;
  close(): void;
}

/**
 * Why an inference call failed. `retryable` failures go back to the queue (the server was
 * unavailable, overloaded or too slow); permanent ones end the job with a readable reason.
 */
export type InferenceErrorCode =
  | "unavailable"
  | "deadline_exceeded"
  | "overloaded"
  | "canceled"
  | "invalid_request"
  | "model_not_found"
  | "internal";

export class InferenceError extends Error {
  override readonly name = "InferenceError";
  constructor(
    readonly code: InferenceErrorCode,
    message: string,
    /** The adapter's own status code and details, kept for logs. */
    readonly wire?: { code?: number | string; details?: string },
  ) {
    super(message);
  }

  get retryable(): boolean {
    return (
      this.code === "unavailable" ||
      this.code === "deadline_exceeded" ||
      this.code === "overloaded" ||
      this.code === "internal"
    );
  }
}
