/**
 * gRPC failures of the Triton client, in the port's words. The original status code and details
 * travel along in `wire` for the logs.
 */
import { status as GrpcStatus } from "@grpc/grpc-js";
import { InferenceError, type InferenceErrorCode } from "../../events/inferenceClient.js";

export function inferenceErrorCode(code: number): InferenceErrorCode {
  switch (code) {
    case GrpcStatus.UNAVAILABLE:
      return "unavailable";
    case GrpcStatus.DEADLINE_EXCEEDED:
      return "deadline_exceeded";
    case GrpcStatus.RESOURCE_EXHAUSTED:
      return "overloaded";
    case GrpcStatus.CANCELLED:
      return "canceled";
    case GrpcStatus.INVALID_ARGUMENT:
      return "invalid_request";
    case GrpcStatus.NOT_FOUND:
      return "model_not_found";
    default:
      return "internal";
  }
}

interface GrpcErrorLike {
  code?: unknown;
  details?: unknown;
  message?: unknown;
}

/** `what` names the call, e.g. `infer upscale`; it leads the message. */
export function inferenceErrorFromGrpc(error: unknown, what: string): InferenceError {
  if (error instanceof InferenceError) return error;
  const e = (typeof error === "object" && error !== null ? error : {}) as GrpcErrorLike;
  if (typeof e.code !== "number") {
    return new InferenceError("internal", `${what}: ${String(e.message ?? error)}`);
  }
  const details = typeof e.details === "string" ? e.details : String(e.message ?? "");
  const name = GrpcStatus[e.code] ?? String(e.code);
  return new InferenceError(inferenceErrorCode(e.code), `${what}: ${name}: ${details}`, {
    code: e.code,
    details,
  });
}
