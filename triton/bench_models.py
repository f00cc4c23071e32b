"""The models' benchmark of `npm run bench -- --only models`, for machines without Node.

It measures what local/bench/benchModels.ts measures, the same way, on two Triton servers someone else
started from the same model files: one with the repository's configs, one with each config's
`dynamic_batching` block taken out. Every edit's model is driven at concurrency 1, 4 and 16, each
caller sending its next request when its last one returns; each measurement lasts at least
`--seconds` and at least 2 x concurrency requests. A request is what the worker sends: one
128x128 tile of the astronaut photo with the edit's default params, or the 1024x1024 photo for
background removal. The servers are measured in turn, never at once.

This is how the GPU table in docs/benchmarks.md was made (a GPU machine has Triton and Python but no
Node). Prints one line per measurement and, at the end, the JSON of every figure.

    python triton/bench_models.py --batching 127.0.0.1:8001 --no-batching 127.0.0.1:8011 \
        --photo astronaut.png [--models upscale enhance] [--seconds 5]
"""

from __future__ import annotations

import argparse
import json
import threading
import time

import numpy as np
import tritonclient.grpc as grpcclient
from PIL import Image

CONCURRENCY = (1, 4, 16)
TILE = 128
MASK_SIDE = 1024
# The API's defaults (events/operations.ts): upscale x4, enhance 0.5, comic and aged 0.7.
DEFAULTS = {"upscale": ("SCALE", np.uint8, 4), "enhance": ("STRENGTH", np.float32, 0.5), "comic": ("STRENGTH", np.float32, 0.7), "aged": ("STRENGTH", np.float32, 0.7)}
MODELS = ("upscale", "enhance", "remove_background", "comic", "aged")


def sample_inputs(model: str, photo: Image.Image) -> tuple[list, list, str]:
    """The request's inputs, its outputs, and a label, as the worker would send it."""
    if model == "remove_background":
        pixels = np.asarray(photo.resize((MASK_SIDE, MASK_SIDE), Image.Resampling.LANCZOS))[None]
        image = grpcclient.InferInput("IMAGE", list(pixels.shape), "UINT8")
        image.set_data_from_numpy(np.ascontiguousarray(pixels))
        return [image], [grpcclient.InferRequestedOutput("MASK")], f"{MASK_SIDE}x{MASK_SIDE} photo"
    pixels = np.ascontiguousarray(np.asarray(photo)[60 : 60 + TILE, 200 : 200 + TILE][None])
    image = grpcclient.InferInput("IMAGE", list(pixels.shape), "UINT8")
    image.set_data_from_numpy(pixels)
    name, dtype, value = DEFAULTS[model]
    param = grpcclient.InferInput(name, [1, 1], "UINT8" if dtype == np.uint8 else "FP32")
    param.set_data_from_numpy(np.full((1, 1), value, dtype))
    return [image, param], [grpcclient.InferRequestedOutput("IMAGE_OUT")], f"{TILE}x{TILE} tile, {name.lower()} {value}"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def drive(url: str, model: str, inputs: list, outputs: list, concurrency: int, seconds: float) -> dict:
    """`concurrency` callers, each on its own channel, each sending the next request when its last returns."""
    latencies: list[float] = []
    lock = threading.Lock()
    minimum = 2 * concurrency
    began = time.perf_counter()

    def caller() -> None:
        client = grpcclient.InferenceServerClient(url)
        while True:
            with lock:
                if time.perf_counter() - began >= seconds and len(latencies) >= minimum:
                    break
            sent = time.perf_counter()
            client.infer(model, inputs, outputs=outputs)
            with lock:
                latencies.append((time.perf_counter() - sent) * 1000)
        client.close()

    threads = [threading.Thread(target=caller) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    return {
        "requests": len(latencies),
        "seconds": round(elapsed, 2),
        "throughput": round(len(latencies) / elapsed, 2),
        "p50": round(percentile(latencies, 0.50), 1),
        "p95": round(percentile(latencies, 0.95), 1),
        "p99": round(percentile(latencies, 0.99), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batching", required=True, help="gRPC host:port of the server with the repository's configs")
    parser.add_argument("--no-batching", required=True, help="gRPC host:port of the server whose configs have no dynamic_batching")
    parser.add_argument("--photo", required=True, help="the astronaut photo (skimage's astronaut.png)")
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args()

    photo = Image.open(args.photo).convert("RGB")
    figures = []
    for model in args.models:
        inputs, outputs, label = sample_inputs(model, photo)
        for url in (args.batching, args.no_batching):  # warm both: sessions, arenas, kernels
            with grpcclient.InferenceServerClient(url) as client:
                for _ in range(3):
                    client.infer(model, inputs, outputs=outputs)
        rows = []
        for concurrency in CONCURRENCY:
            batching = drive(args.batching, model, inputs, outputs, concurrency, args.seconds)
            no_batching = drive(args.no_batching, model, inputs, outputs, concurrency, args.seconds)
            ratio = round(batching["throughput"] / no_batching["throughput"], 2)
            print(
                f"{model} c={concurrency}: {batching['throughput']}/s batched (p50 {batching['p50']} ms, p99 {batching['p99']} ms), "
                f"{no_batching['throughput']}/s unbatched (p50 {no_batching['p50']} ms, p99 {no_batching['p99']} ms), x{ratio}",
                flush=True,
            )
            rows.append({"concurrency": concurrency, "batching": batching, "noBatching": no_batching, "ratio": ratio})
        figures.append({"model": model, "request": label, "rows": rows})
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
