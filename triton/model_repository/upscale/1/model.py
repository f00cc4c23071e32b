"""Triton Python backend model `upscale`: ESRGAN-slim x2 / x4 through onnxruntime.

The ONNX graphs (esrgan_slim_x2.onnx, esrgan_slim_x4.onnx, written by triton/build_models.py)
take uint8 NHWC tiles and return uint8 NHWC tiles, so this file only routes: it groups the
requests of one execute() call by (tile shape, scale), runs one onnxruntime batch per group, and
splits the result back to the requests.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

SCALES = (2, 4)
# ONNX_PRECISION (a config parameter) picks the graph: fp32, or fp16, the same graph computed in
# float16 (triton/float16.py; configs/gpu.pbtxt uses it). Both take and return uint8.
PRECISION_SUFFIXES = {"fp32": ".onnx", "fp16": ".fp16.onnx"}
ONNX_INPUT = "IMAGE"
ONNX_OUTPUT = "UPSCALED"


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        parameters = config.get("parameters", {})
        threads = int(parameters.get("ORT_INTRA_OP_THREADS", {}).get("string_value", "0"))
        precision = onnx_precision(parameters)
        buckets = batch_buckets(parameters)
        version_dir = os.path.join(args["model_repository"], args["model_version"])

        providers: list = ["CPUExecutionProvider"]
        if args.get("model_instance_kind") == "GPU" and "CUDAExecutionProvider" in ort.get_available_providers():
            device = int(args.get("model_instance_device_id", "0"))
            # cuDNN's default algorithm search (EXHAUSTIVE) times every convolution again for each
            # new input shape, and a dynamic batch brings a new shape often: on an H100 that stalled
            # batched upscale at concurrency 4 to 8 tiles/s, against 188/s with HEURISTIC
            # (triton/BATCHING.md, "On a GPU").
            providers = [("CUDAExecutionProvider", {"device_id": device, "cudnn_conv_algo_search": "HEURISTIC"}), "CPUExecutionProvider"]

        self.sessions: dict[int, dict[int, ort.InferenceSession]] = {}
        for scale in SCALES:
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            path = os.path.join(version_dir, f"esrgan_slim_x{scale}{PRECISION_SUFFIXES[precision]}")
            self.sessions[scale] = {bucket: ort.InferenceSession(path, options, providers=providers) for bucket in buckets}
        self.logger = pb_utils.Logger
        self.logger.log_info(
            f"upscale: scales {SCALES}, {precision}, batch buckets {buckets}, providers {self.sessions[SCALES[0]][buckets[0]].get_providers()}, intra-op threads {threads}, "
            f"onnxruntime {ort.__version__} ({os.path.dirname(ort.__file__)}), instance kind {args.get('model_instance_kind')}"
        )

    def execute(self, requests):
        responses: list = [None] * len(requests)
        groups: dict[tuple, list[tuple[int, np.ndarray]]] = defaultdict(list)

        for index, request in enumerate(requests):
            if getattr(request, "is_cancelled", None) and request.is_cancelled():
                responses[index] = error_response("request was cancelled", pb_utils.TritonError.CANCELLED)
                continue
            image = pb_utils.get_input_tensor_by_name(request, "IMAGE").as_numpy()
            scale_rows = pb_utils.get_input_tensor_by_name(request, "SCALE").as_numpy().reshape(-1)
            problem = check_request(image, scale_rows)
            if problem:
                responses[index] = error_response(problem, pb_utils.TritonError.INVALID_ARG)
                continue
            scale = int(scale_rows[0])
            groups[(image.shape[1], image.shape[2], scale)].append((index, image))

        for (_, _, scale), members in groups.items():
            batch = np.concatenate([image for _, image in members]) if len(members) > 1 else members[0][1]
            try:
                upscaled = run_bucketed(self.sessions[scale], ONNX_OUTPUT, ONNX_INPUT, np.ascontiguousarray(batch))
            except Exception as error:  # one failed group must not fail the others
                for index, _ in members:
                    responses[index] = error_response(f"onnxruntime failed: {error}", pb_utils.TritonError.INTERNAL)
                continue
            start = 0
            for index, image in members:
                rows = upscaled[start : start + image.shape[0]]
                start += image.shape[0]
                responses[index] = pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("IMAGE_OUT", rows)])
        return responses

    def finalize(self):
        self.sessions = {}


def batch_buckets(parameters: dict) -> list[int]:
    """BATCH_BUCKETS (a config parameter, "1,2,4,8,16"): the batch sizes to keep one onnxruntime
    session each for; unset: one session for every size ([0])."""
    text = parameters.get("BATCH_BUCKETS", {}).get("string_value", "")
    buckets = sorted({int(v) for v in text.split(",") if v.strip()})
    if any(b < 1 for b in buckets):
        raise ValueError(f"BATCH_BUCKETS must be positive batch sizes, got {text!r}")
    return buckets or [0]


def run_bucketed(sessions: dict, output: str, name: str, batch: np.ndarray) -> np.ndarray:
    """Runs `batch` on the session of the smallest bucket that holds it, padded with copies of its
    last row (key 0: one session for any size, no padding). onnxruntime's CUDA convolutions set
    themselves up again whenever a session's input shape changes: with batch sizes alternating,
    each execution stalled for about 60 ms on an H200 (docs/gpu.md). A session per bucket only
    ever sees one shape."""
    if 0 in sessions:
        return sessions[0].run([output], {name: batch})[0]
    largest = max(sessions)
    parts = []
    for start in range(0, batch.shape[0], largest):
        chunk = batch[start : start + largest]
        bucket = min(b for b in sessions if b >= chunk.shape[0])
        if bucket > chunk.shape[0]:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], bucket - chunk.shape[0], axis=0)])
        parts.append(sessions[bucket].run([output], {name: chunk})[0][: min(largest, batch.shape[0] - start)])
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def onnx_precision(parameters: dict) -> str:
    precision = parameters.get("ONNX_PRECISION", {}).get("string_value", "fp32")
    if precision not in PRECISION_SUFFIXES:
        raise ValueError(f"ONNX_PRECISION must be one of {list(PRECISION_SUFFIXES)}, got {precision!r}")
    return precision


def check_request(image: np.ndarray, scale_rows: np.ndarray) -> str | None:
    if image.ndim != 4 or image.shape[3] != 3:
        return f"IMAGE must be [batch, height, width, 3], got {list(image.shape)}"
    if image.shape[1] == 0 or image.shape[2] == 0:
        return f"IMAGE must not be empty, got {list(image.shape)}"
    if scale_rows.size != image.shape[0]:
        return f"SCALE must have one row per IMAGE row, got {scale_rows.size} for {image.shape[0]}"
    values = sorted({int(v) for v in scale_rows})
    if len(values) != 1 or values[0] not in SCALES:
        return f"SCALE must be one of {list(SCALES)} for every row of a request, got {values}"
    return None


def error_response(message: str, code) -> "pb_utils.InferenceResponse":
    return pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(message, code))
