"""Measures what batching buys each edit model on a running Triton server, for BATCHING.md.

For each batch size, sends requests of that many rows one after another (one client, nothing
else queued, so each request is one model execution) and reports rows per second and the
median latency of one request. Tiled models get 128x128 tiles (the worker's default tile) at
the API's default strength; remove_background gets 1024x1024 images. Inputs are a fixed-seed
random pattern smoothed a little: the cost of these models does not depend on the content.

    python triton/bench_batching.py --url 127.0.0.1:8001 [--models enhance comic] [--seconds 8]
Prints one JSON line per (model, batch size).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import tritonclient.grpc as grpcclient

TILED = {"enhance": 0.5, "comic": 0.7, "aged": 0.7}
TILE = 128


def image_batch(rows: int, size: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    coarse = rng.integers(0, 256, (rows, size // 8 + 1, size // 8 + 1, 3), dtype=np.uint8)
    return np.ascontiguousarray(coarse.repeat(8, axis=1).repeat(8, axis=2)[:, :size, :size, :])


def inputs_for(model: str, rows: int) -> list:
    if model == "remove_background":
        image = image_batch(rows, 1024)
        tensor = grpcclient.InferInput("IMAGE", list(image.shape), "UINT8")
        tensor.set_data_from_numpy(image)
        return [tensor]
    image = image_batch(rows, TILE)
    strength = np.full((rows, 1), TILED[model], np.float32)
    tensors = [grpcclient.InferInput("IMAGE", list(image.shape), "UINT8"), grpcclient.InferInput("STRENGTH", [rows, 1], "FP32")]
    tensors[0].set_data_from_numpy(image)
    tensors[1].set_data_from_numpy(strength)
    return tensors


def measure(client, model: str, rows: int, seconds: float, min_runs: int) -> dict:
    inputs = inputs_for(model, rows)
    client.infer(model, inputs)  # warm-up: first-run allocations, shared memory growth
    latencies = []
    started = time.perf_counter()
    while len(latencies) < min_runs or time.perf_counter() - started < seconds:
        t = time.perf_counter()
        client.infer(model, inputs)
        latencies.append(time.perf_counter() - t)
    total = time.perf_counter() - started
    return {
        "model": model,
        "batch": rows,
        "runs": len(latencies),
        "rows_per_s": round(rows * len(latencies) / total, 2),
        "median_latency_ms": round(1000 * statistics.median(latencies), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--models", nargs="+", default=[*TILED, "remove_background"])
    parser.add_argument("--seconds", type=float, default=8)
    args = parser.parse_args()
    with grpcclient.InferenceServerClient(args.url) as client:
        for model in args.models:
            sizes = (1, 2, 4) if model == "remove_background" else (1, 4, 8, 16)
            for rows in sizes:
                runs = 2 if model == "remove_background" else 3
                print(json.dumps(measure(client, model, rows, args.seconds, runs)), flush=True)


if __name__ == "__main__":
    main()
