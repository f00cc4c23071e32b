"""Measures what batching buys each edit model on a running Triton server, for BATCHING.md.

Two measurements per model:

1. `batch`: for each batch size, requests of that many rows one after another (one client,
   nothing else queued, so each request is one model execution): rows per second and the median
   latency of one request. This is what a bigger batch buys the model itself.
2. `delay`: the dynamic batcher at work. The model is reloaded with each max_queue_delay to try
   (a config override through the repository API; the server must run with
   --model-control-mode=explicit, as ours does), then `--concurrency` clients each send
   `--requests` one-row requests back to back: rows per second over the whole run, the median
   latency, and the mean batch the scheduler formed (inference count / execution count from the
   model's statistics). The model is
   reloaded with its own config.pbtxt afterwards. Tiled models get 128x128 tiles (the worker's default tile) at
the API's default strength; remove_background gets 1024x1024 images. Inputs are a fixed-seed
random pattern smoothed a little: the cost of these models does not depend on the content.

    python triton/bench_batching.py --url 127.0.0.1:8001 [--models enhance comic] [--seconds 8]
Prints one JSON line per (model, batch size).
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
import urllib.request

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


def http(method: str, url: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as response:
        text = response.read()
    return json.loads(text) if text else {}


def counts(http_url: str, model: str) -> tuple[int, int]:
    [stats] = http("GET", f"{http_url}/v2/models/{model}/stats")["model_stats"]
    return stats["inference_count"], stats["execution_count"]


def measure_delay(url: str, http_url: str, model: str, delay_us: int, concurrency: int, requests: int) -> dict:
    config = http("GET", f"{http_url}/v2/models/{model}/config")
    config["dynamic_batching"]["max_queue_delay_microseconds"] = delay_us
    http("POST", f"{http_url}/v2/repository/models/{model}/load", {"parameters": {"config": json.dumps(config)}})
    latencies: list[float] = []
    lock = threading.Lock()
    def client_loop() -> None:
        with grpcclient.InferenceServerClient(url) as client:
            inputs = inputs_for(model, 1)
            for _ in range(requests):
                t = time.perf_counter()
                client.infer(model, inputs)
                with lock:
                    latencies.append(time.perf_counter() - t)

    with grpcclient.InferenceServerClient(url) as client:
        client.infer(model, inputs_for(model, 1))  # warm-up after the reload
    before = counts(http_url, model)
    started = time.perf_counter()
    threads = [threading.Thread(target=client_loop) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = time.perf_counter() - started
    after = counts(http_url, model)
    inferences, executions = after[0] - before[0], after[1] - before[1]
    return {
        "model": model,
        "max_queue_delay_us": delay_us,
        "concurrency": concurrency,
        "requests": concurrency * requests,
        "rows_per_s": round(len(latencies) / total, 2),
        "median_latency_ms": round(1000 * statistics.median(latencies), 1) if latencies else None,
        "mean_batch": round(inferences / executions, 2) if executions else None,
    }


def median_report(reports: list[dict]) -> dict:
    """The first report's fields, numbers replaced by their median over the reports."""
    merged = dict(reports[0])
    for key, value in merged.items():
        if isinstance(value, float) and key != "max_queue_delay_us":
            values = [r[key] for r in reports if r[key] is not None]
            merged[key] = round(statistics.median(values), 2) if values else None
    merged["rounds"] = len(reports)
    if "rows_per_s" in merged:
        merged["rows_per_s_range"] = [min(r["rows_per_s"] for r in reports), max(r["rows_per_s"] for r in reports)]
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--models", nargs="+", default=[*TILED, "remove_background"])
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--http-url", help="http://host:port; with it, the delay measurement runs too")
    parser.add_argument("--delays", type=int, nargs="+", default=[0, 2000, 20000])
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--requests", type=int, default=4, help="one-row requests per client in the delay measurement")
    parser.add_argument("--skip-batch", action="store_true")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported")
    args = parser.parse_args()
    for model in args.models:
        # Rounds interleave the settings, so that a burst of load from elsewhere on a shared
        # machine lands on all of them rather than on one; each line is a median over rounds.
        if not args.skip_batch:
            sizes = (1, 2, 4) if model == "remove_background" else (1, 4, 8, 16)
            runs = 1 if model == "remove_background" else 3
            results: dict[int, list[dict]] = {rows: [] for rows in sizes}
            with grpcclient.InferenceServerClient(args.url) as client:
                for _ in range(args.rounds):
                    for rows in sizes:
                        results[rows].append(measure(client, model, rows, args.seconds, runs))
            for rows in sizes:
                print(json.dumps({"measure": "batch", **median_report(results[rows])}), flush=True)
        if args.http_url:
            concurrency = min(args.concurrency, 4) if model == "remove_background" else args.concurrency
            delays: dict[int, list[dict]] = {delay: [] for delay in args.delays}
            try:
                for _ in range(args.rounds):
                    for delay in args.delays:
                        delays[delay].append(measure_delay(args.url, args.http_url, model, delay, concurrency, args.requests))
            finally:
                http("POST", f"{args.http_url}/v2/repository/models/{model}/load")
            for delay in args.delays:
                print(json.dumps({"measure": "delay", **median_report(delays[delay])}), flush=True)


if __name__ == "__main__":
    main()
