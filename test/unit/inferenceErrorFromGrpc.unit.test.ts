import { status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { InferenceError } from "../../events/inferenceClient.js";
import { inferenceErrorFromGrpc } from "../../adapters/triton/inferenceErrorFromGrpc.js";

describe("gRPC errors in the port's words", () => {
  it.each([
    [status.UNAVAILABLE, "unavailable", true],
    [status.DEADLINE_EXCEEDED, "deadline_exceeded", true],
    [status.RESOURCE_EXHAUSTED, "overloaded", true],
    [status.CANCELLED, "canceled", false],
    [status.INVALID_ARGUMENT, "invalid_request", false],
    [status.NOT_FOUND, "model_not_found", false],
    [status.INTERNAL, "internal", true],
    [status.UNKNOWN, "internal", true],
    [status.UNIMPLEMENTED, "internal", true],
  ])("status %i is %s (retryable: %s), keeping the original code and details", (code, expected, retryable) => {
    const error = inferenceErrorFromGrpc({ code, details: "what the server said", message: "ignored" }, "infer upscale");
    expect(error).toBeInstanceOf(InferenceError);
    expect(error.code).toBe(expected);
    expect(error.retryable).toBe(retryable);
    expect(error.wire).toEqual({ code, details: "what the server said" });
    expect(error.message).toBe(`infer upscale: ${status[code]}: what the server said`);
  });

  it("treats a failure without a gRPC status as internal", () => {
    const error = inferenceErrorFromGrpc(new Error("socket hang up"), "server live");
    expect(error.code).toBe("internal");
    expect(error.message).toBe("server live: socket hang up");
  });

  it("passes an InferenceError through unchanged", () => {
    const original = new InferenceError("canceled", "canceled before it was sent");
    expect(inferenceErrorFromGrpc(original, "infer upscale")).toBe(original);
  });
});
