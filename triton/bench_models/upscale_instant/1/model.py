"""Triton Python backend model: nearest-neighbour x2 / x4 in NumPy, with the contract of `upscale`.

The worker-ceiling benchmark serves it as `upscale`, so that everything but the model's own
work (the worker's decode, tiling, stitching, encoding and upload, and Triton's transport) is
measured. request_handling.py (a link to triton/model_repository/request_handling.py) checks the
requests and groups them as it does for every model.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import triton_python_backend_utils as pb_utils

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from request_handling import answer_in_groups, read_setting, read_tiles  # noqa: E402

SCALES = (2, 4)


class TritonPythonModel:
    def initialize(self, args):
        pb_utils.Logger.log_info(f"upscale (instant): nearest-neighbour, scales {SCALES}")

    def execute(self, requests):
        return answer_in_groups(requests, read_tiles_and_scale, nearest, "IMAGE_OUT", "nearest-neighbour failed")


def nearest(batch: np.ndarray, scale: int) -> np.ndarray:
    """[B, H, W, 3] to [B, s*H, s*W, 3], each pixel repeated s x s times."""
    return np.repeat(np.repeat(batch, scale, axis=1), scale, axis=2)


def read_tiles_and_scale(request) -> tuple[np.ndarray, int]:
    image = read_tiles(request)
    return image, read_setting(request, "SCALE", image, int, lambda v: v in SCALES, f"one of {list(SCALES)}")
