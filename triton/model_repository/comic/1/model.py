"""Triton Python backend model `comic`: a CLASSICAL comic/cartoon operator, not a learned model.

The operator lives in comic_filter.py (NumPy): bilateral smoothing, luminance bands (cel
shading), and dark ink outlines from a difference of Gaussians; its docstring says what STRENGTH
does. Locality: an output pixel depends only on input pixels within comic_filter.RADIUS = 11 px.

This file only routes: it checks each request, groups the requests of one execute() call by
(tile shape, strength), runs the operator once per group and splits the result back.
"""

from __future__ import annotations

import math
import os
import sys
from collections import defaultdict

import numpy as np
import triton_python_backend_utils as pb_utils

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from comic_filter import RADIUS, comic  # noqa: E402


class TritonPythonModel:
    def initialize(self, args):
        pb_utils.Logger.log_info(f"comic: classical NumPy operator, radius {RADIUS} px")

    def execute(self, requests):
        responses: list = [None] * len(requests)
        groups: dict[tuple, list[tuple[int, np.ndarray]]] = defaultdict(list)
        for index, request in enumerate(requests):
            if getattr(request, "is_cancelled", None) and request.is_cancelled():
                responses[index] = error_response("request was cancelled", pb_utils.TritonError.CANCELLED)
                continue
            image = pb_utils.get_input_tensor_by_name(request, "IMAGE").as_numpy()
            strength_rows = pb_utils.get_input_tensor_by_name(request, "STRENGTH").as_numpy().reshape(-1)
            problem = check_request(image, strength_rows)
            if problem:
                responses[index] = error_response(problem, pb_utils.TritonError.INVALID_ARG)
                continue
            groups[(image.shape[1], image.shape[2], float(strength_rows[0]))].append((index, image))

        for (_, _, strength), members in groups.items():
            batch = np.concatenate([image for _, image in members])
            try:
                out = comic(batch, strength)
            except Exception as error:  # one failed group must not fail the others
                for index, _ in members:
                    responses[index] = error_response(f"comic failed: {error}", pb_utils.TritonError.INTERNAL)
                continue
            start = 0
            for index, image in members:
                rows = out[start : start + image.shape[0]]
                start += image.shape[0]
                responses[index] = pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("IMAGE_OUT", rows)])
        return responses


def check_request(image: np.ndarray, strength_rows: np.ndarray) -> str | None:
    if image.ndim != 4 or image.shape[3] != 3:
        return f"IMAGE must be [batch, height, width, 3], got {list(image.shape)}"
    if image.shape[1] == 0 or image.shape[2] == 0:
        return f"IMAGE must not be empty, got {list(image.shape)}"
    if strength_rows.size != image.shape[0]:
        return f"STRENGTH must have one row per IMAGE row, got {strength_rows.size} for {image.shape[0]}"
    values = sorted({float(v) for v in strength_rows})
    if len(values) != 1 or not math.isfinite(values[0]) or not 0 <= values[0] <= 1:
        return f"STRENGTH must be one value in [0, 1] for every row of a request, got {values}"
    return None


def error_response(message: str, code) -> "pb_utils.InferenceResponse":
    return pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(message, code))
