/**
 * Tensors to and from the raw little-endian bytes of `raw_input_contents` and
 * `raw_output_contents`.
 */
import { endianness } from "node:os";
import {
  InferenceError,
  type TensorData,
  type TensorDatatype,
} from "../../events/inferenceClient.js";

const BYTES_PER_ELEMENT: Record<TensorDatatype, number> = { UINT8: 1, FP32: 4, INT32: 4 };

// The wire is little-endian; typed arrays use the host's order. Every platform Node supports
// today is little-endian, so this only guards against a surprise.
const HOST_IS_LITTLE_ENDIAN = endianness() === "LE";

export function isTensorDatatype(value: string): value is TensorDatatype {
  return value === "UINT8" || value === "FP32" || value === "INT32";
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((count, dim) => count * dim, 1);
}

/** The tensor's bytes without a copy; checks that type and length match its shape. */
export function tensorToBytes(name: string, datatype: TensorDatatype, shape: readonly number[], data: TensorData): Buffer {
  requireLittleEndian();
  if (shape.some((dim) => !Number.isInteger(dim) || dim < 0)) {
    throw new InferenceError("invalid_request", `input ${name}: shape [${shape.join(",")}] is not a list of sizes`);
  }
  const expectedType = { UINT8: Uint8Array, FP32: Float32Array, INT32: Int32Array }[datatype];
  if (!(data instanceof expectedType)) {
    throw new InferenceError("invalid_request", `input ${name}: ${datatype} needs a ${expectedType.name}, got ${data.constructor.name}`);
  }
  if (data.length !== elementCount(shape)) {
    throw new InferenceError(
      "invalid_request",
      `input ${name}: shape [${shape.join(",")}] holds ${elementCount(shape)} elements, data has ${data.length}`,
    );
  }
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * A typed array over `bytes`. UINT8 is a view; FP32 and INT32 are views only when the bytes
 * start on a 4-byte boundary (protobuf places them anywhere in the message), copies otherwise.
 */
export function tensorFromBytes(name: string, datatype: TensorDatatype, shape: readonly number[], bytes: Uint8Array): TensorData {
  requireLittleEndian();
  const size = BYTES_PER_ELEMENT[datatype];
  const count = elementCount(shape);
  if (bytes.byteLength !== count * size) {
    throw new InferenceError(
      "internal",
      `output ${name}: shape [${shape.join(",")}] of ${datatype} needs ${count * size} bytes, got ${bytes.byteLength}`,
    );
  }
  if (datatype === "UINT8") return new Uint8Array(bytes.buffer, bytes.byteOffset, count);
  const aligned =
    bytes.byteOffset % size === 0 ? bytes : new Uint8Array(bytes); // new Uint8Array(view) copies
  return datatype === "FP32"
    ? new Float32Array(aligned.buffer, aligned.byteOffset, count)
    : new Int32Array(aligned.buffer, aligned.byteOffset, count);
}

function requireLittleEndian(): void {
  if (!HOST_IS_LITTLE_ENDIAN) {
    throw new InferenceError("internal", "the Triton client needs a little-endian host");
  }
}
