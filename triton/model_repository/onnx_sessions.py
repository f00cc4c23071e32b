"""How the learned models (upscale, enhance, remove_background) pick and run their onnxruntime
sessions, from two optional config parameters. Shared like request_handling.py: each of those
models links this file into its version folder.

ONNX_PRECISION  "fp32" (the default) loads `<name>.onnx`; "fp16" loads `<name>.fp16.onnx`, the same
                graph computed in float16 (triton/float16.py; the build scripts write it).
BATCH_BUCKETS   "1,2,4,8,16": one session per bucket; a batch runs on the smallest bucket that holds
                it, padded with copies of its last row. Unset: one session for any batch size.
                onnxruntime's CUDA convolutions set themselves up again whenever a session's input
                shape changes: with the batch size changing from one execution to the next, each
                execution stalled for about 60 ms on an H200 (docs/gpu.md). A session per bucket
                only ever sees one shape.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import onnxruntime as ort

PRECISION_SUFFIXES = {"fp32": ".onnx", "fp16": ".fp16.onnx"}


def open_session(args: dict, parameters: dict, path: str) -> ort.InferenceSession:
    """An onnxruntime session of the graph at `path` for this model instance: on its GPU when
    Triton placed the instance on one and onnxruntime has CUDA, else on the CPU with the config's
    ORT_INTRA_OP_THREADS (0: onnxruntime's default)."""
    providers: list = ["CPUExecutionProvider"]
    if args.get("model_instance_kind") == "GPU" and "CUDAExecutionProvider" in ort.get_available_providers():
        device = int(args.get("model_instance_device_id", "0"))
        # cuDNN's default algorithm search (EXHAUSTIVE) times every convolution again for each
        # new input shape, and a dynamic batch brings a new shape often: on an H100 that stalled
        # batched upscale at concurrency 4 to 8 tiles/s, against 188/s with HEURISTIC
        # (triton/BATCHING.md, "On a GPU").
        providers = [("CUDAExecutionProvider", {"device_id": device, "cudnn_conv_algo_search": "HEURISTIC"}), "CPUExecutionProvider"]
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(parameters.get("ORT_INTRA_OP_THREADS", {}).get("string_value", "0"))
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(path, options, providers=providers)


def describe(sessions: dict, parameters: dict, args: dict) -> str:
    """What the model log says of its sessions: buckets, providers, threads, onnxruntime, instance."""
    first = next(iter(sessions.values()))
    threads = parameters.get("ORT_INTRA_OP_THREADS", {}).get("string_value", "0")
    return (
        f"batch buckets {sorted(sessions)}, providers {first.get_providers()}, intra-op threads {threads}, "
        f"onnxruntime {ort.__version__} ({ort.__file__.rsplit('/', 1)[0]}), instance kind {args.get('model_instance_kind')}"
    )


def onnx_file(parameters: dict, stem: str) -> str:
    """The graph file of `stem` (a path without `.onnx`) at the config's ONNX_PRECISION."""
    precision = parameters.get("ONNX_PRECISION", {}).get("string_value", "fp32")
    if precision not in PRECISION_SUFFIXES:
        raise ValueError(f"ONNX_PRECISION must be one of {list(PRECISION_SUFFIXES)}, got {precision!r}")
    return stem + PRECISION_SUFFIXES[precision]


def batch_buckets(parameters: dict) -> list[int]:
    """The config's BATCH_BUCKETS, sorted; [0] (one session for every size) when unset."""
    text = parameters.get("BATCH_BUCKETS", {}).get("string_value", "")
    buckets = sorted({int(v) for v in text.split(",") if v.strip()})
    if any(b < 1 for b in buckets):
        raise ValueError(f"BATCH_BUCKETS must be positive batch sizes, got {text!r}")
    return buckets or [0]


def sessions_by_bucket(parameters: dict, open_session: Callable[[], object]) -> dict[int, object]:
    return {bucket: open_session() for bucket in batch_buckets(parameters)}


def run_bucketed(sessions: dict, output: str, name: str, batch: np.ndarray, extra: dict | None = None) -> np.ndarray:
    """Runs `batch` (rows first) on the session of the smallest bucket that holds it, padded with
    copies of its last row, and returns its rows of the output (key 0: any size, no padding).
    `extra` holds the graph's other inputs, which have no batch dimension (enhance's noise level)."""
    extra = extra or {}
    if 0 in sessions:
        return sessions[0].run([output], {name: batch, **extra})[0]
    largest = max(sessions)
    parts = []
    for start in range(0, batch.shape[0], largest):
        chunk = batch[start : start + largest]
        rows = chunk.shape[0]
        bucket = min(b for b in sessions if b >= rows)
        if bucket > rows:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], bucket - rows, axis=0)])
        parts.append(sessions[bucket].run([output], {name: chunk, **extra})[0][:rows])
    return parts[0] if len(parts) == 1 else np.concatenate(parts)
