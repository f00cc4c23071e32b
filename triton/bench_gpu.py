"""The GPU table of docs/gpu.md: the learned models on one GPU, measured where they are served.

A GPU machine has Python but no Node, so this drives everything with the standard library,
NumPy, onnxruntime(-gpu) and NVML (nvidia-ml-py). Three steps, each its own command:

    python triton/bench_gpu.py variants --repository triton/model_repository --out /tmp/variants
        Writes the model repositories the table compares, for upscale, enhance and
        remove_background, from each model's configs/gpu.pbtxt:
          fp32-unbatched  float32 graphs, no dynamic_batching block, no warm-up
          fp32-batched    float32 graphs, the GPU config's batching and warm-up
          fp16-delay      the GPU config with a queue delay (upscale, enhance 500 us; ISNet 2 ms)
          fp16-2inst      the GPU config with two instances on the GPU
        (fp16-batched, the GPU config itself, is the repository as committed, served with
        --model-config-name=gpu.) ISNet ships in float16; its float32 graph is the exact widening
        (triton/float16.py), written as isnet_medium.fp32.onnx in --repository first.

    python triton/bench_gpu.py direct --repository triton/model_repository --photo astronaut.png
        onnxruntime's CUDA provider outside Triton, as model.py configures it: each graph at
        float32 and float16, batch 1 to 16 (ISNet 1 to 4), median ms of one run; and the PSNR of
        the float16 output against the float32 output on tiles of the photo. Also asks for
        onnxruntime's TensorRT provider and prints what happens.

    python triton/bench_gpu.py table --server fp16-batched=127.0.0.1:8000 --server ... --photo astronaut.png
        The servers (Triton's HTTP ports), measured in turn: each model at concurrency 1, 4 and 16,
        each caller a process with its own connection sending the next request when its last one
        returns (the worker's request: one 128x128 tile with the edit's default params, or the
        1024x1024 photo); p50/p95/p99, the mean batch the scheduler formed (Triton's statistics)
        and the GPU's utilisation (NVML, sampled every 50 ms while the cell runs).

Every step prints one line per measurement and writes its JSON to --json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import re
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

MODELS = ("upscale", "enhance", "remove_background")
CONCURRENCY = (1, 4, 16)
TILE = 128
PHOTO_SIDE = 1024
# The API's defaults (events/operations.ts): upscale x4, enhance 0.5.
PARAMS = {"upscale": ("SCALE", "UINT8", np.uint8, 4), "enhance": ("STRENGTH", "FP32", np.float32, 0.5)}
# The graphs with a float16 twin (enhance's SRMD denoiser has none: its noise level is float32).
GRAPHS = ("upscale x4", "upscale x2", "remove_background")
OUTPUT = {"upscale": "IMAGE_OUT", "enhance": "IMAGE_OUT", "remove_background": "MASK"}


# --- photo ---------------------------------------------------------------------------------------


def load_photo(path: str) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


def photo_square(photo: np.ndarray) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(photo).resize((PHOTO_SIDE, PHOTO_SIDE), Image.Resampling.LANCZOS))


def photo_tiles(photo: np.ndarray, count: int) -> np.ndarray:
    """`count` 128x128 tiles spread over the photo."""
    side = photo.shape[0] - TILE
    steps = int(np.ceil(np.sqrt(count)))
    spots = [(y, x) for y in np.linspace(0, side, steps).astype(int) for x in np.linspace(0, photo.shape[1] - TILE, steps).astype(int)]
    return np.stack([photo[y : y + TILE, x : x + TILE] for y, x in spots[:count]])


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


# --- variants ------------------------------------------------------------------------------------


def variants(repository: Path, out: Path, cpu_instances: bool) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import onnx
    from float16 import to_float32

    isnet = repository / "remove_background" / "1" / "isnet_medium.onnx"
    widened = isnet.with_name("isnet_medium.fp32.onnx")
    if not widened.exists():
        onnx.save(to_float32(onnx.load(str(isnet))), str(widened))
        print(f"wrote {widened}")

    def fp32(text: str) -> str:
        return text.replace('string_value: "fp16"', 'string_value: "fp32"')

    def unbatched(text: str) -> str:
        return cut_block(cut_block(fp32(text), "dynamic_batching {", "}"), "model_warmup [", "]")

    def delayed(text: str) -> str:
        delay = 2000 if 'name: "remove_background"' in text else 500
        return re.sub(r"max_queue_delay_microseconds: \d+", f"max_queue_delay_microseconds: {delay}", text)

    def two_instances(text: str) -> str:
        return re.sub(r"(kind: KIND_GPU\n\s*count:) 1", r"\1 2", text)

    def as_committed(text: str) -> str:
        return text

    edits = {"fp32-unbatched": unbatched, "fp32-batched": fp32, "fp16-delay": delayed, "fp16-2inst": two_instances}
    if cpu_instances:
        edits["fp16-batched"] = as_committed
    for variant, edit in edits.items():
        for model in MODELS:
            source, target = repository / model, out / variant / model
            if target.exists():
                shutil.rmtree(target)
            (target / "1").mkdir(parents=True)
            text = edit((source / "configs" / "gpu.pbtxt").read_text())
            if cpu_instances:  # the same work on the GPU, but Triton hands responses back as for a CPU instance
                text = text.replace("kind: KIND_GPU", "kind: KIND_CPU")
                code = (source / "1" / "model.py").read_text()
                (target / "1" / "model.py").write_text(code.replace('args.get("model_instance_kind") == "GPU"', "True"))
            (target / "config.pbtxt").write_text(text)
            if (source / "warmup").exists():
                shutil.copytree(source / "warmup", target / "warmup")
            for file in (source / "1").iterdir():
                if file.name == "isnet_medium.onnx" and variant.startswith("fp32"):
                    (target / "1" / file.name).symlink_to(widened.resolve())
                elif file.is_file() and not file.name.startswith("isnet_medium.fp32") and not (target / "1" / file.name).exists():
                    (target / "1" / file.name).symlink_to(file.resolve())
        print(f"wrote {out / variant}")


def cut_block(text: str, opening: str, closing: str) -> str:
    """Removes a top-level block (its opening line at column 0 up to its closing line at column 0)."""
    match = re.search(rf"^{re.escape(opening)}\n.*?^{re.escape(closing)}\n", text, flags=re.S | re.M)
    if not match:
        raise ValueError(f"no block {opening!r}")
    return text[: match.start()] + text[match.end() :]


# --- direct --------------------------------------------------------------------------------------


def direct(repository: Path, photo_path: str, seconds: float, names: list[str]) -> dict:
    import onnxruntime as ort

    cuda = [("CUDAExecutionProvider", {"device_id": 0, "cudnn_conv_algo_search": "HEURISTIC"}), "CPUExecutionProvider"]
    report: dict = {"onnxruntime": ort.__version__, "providers": ort.get_available_providers(), "timings": [], "psnr": []}
    photo = load_photo(photo_path)
    tiles = photo_tiles(photo, 16)
    square = photo_square(photo)[None]

    graphs = {
        ("upscale x4", "fp32"): repository / "upscale/1/srmdnf_x4.onnx",
        ("upscale x4", "fp16"): repository / "upscale/1/srmdnf_x4.fp16.onnx",
        ("upscale x2", "fp32"): repository / "upscale/1/srmdnf_x2.onnx",
        ("upscale x2", "fp16"): repository / "upscale/1/srmdnf_x2.fp16.onnx",
        ("remove_background", "fp32"): repository / "remove_background/1/isnet_medium.fp32.onnx",
        ("remove_background", "fp16"): repository / "remove_background/1/isnet_medium.onnx",
    }

    def feed(name: str, rows: np.ndarray) -> dict:
        if name == "remove_background":  # model.py's preprocessing
            return {"input": np.ascontiguousarray(((rows.astype(np.float32) - 128.0) / 256.0).transpose(0, 3, 1, 2))}
        return {"IMAGE": rows}

    def run(key: tuple, rows: np.ndarray) -> np.ndarray:
        out = sessions[key].run(None, feed(key[0], rows))[0]
        if key[0] == "remove_background":
            return np.floor(np.clip(out, 0, 1) * 255).astype(np.uint8)
        return out

    graphs = {key: path for key, path in graphs.items() if key[0] in names}
    sessions = {key: ort.InferenceSession(str(path), providers=cuda) for key, path in graphs.items()}
    for name in names:
        rows = square if name == "remove_background" else tiles
        a, b = run((name, "fp32"), rows), run((name, "fp16"), rows)
        entry = {"graph": name, "psnr_db": round(psnr(a, b), 2), "max_abs_diff": int(np.abs(a.astype(int) - b).max()), "rows": int(rows.shape[0])}
        report["psnr"].append(entry)
        print(f"PSNR fp16 vs fp32 {name}: {entry['psnr_db']} dB, max |diff| {entry['max_abs_diff']} levels over {entry['rows']} rows", flush=True)

    for name in [n for n in ("upscale x4", "remove_background") if n in names]:
        sizes = (1, 2, 3, 4) if name == "remove_background" else (1, 2, 4, 8, 12, 16)
        for precision in ("fp32", "fp16"):
            for size in sizes:
                rows = np.repeat(square, size, axis=0) if name == "remove_background" else tiles[:size]
                inputs = feed(name, rows)
                session = sessions[(name, precision)]
                for _ in range(3):
                    session.run(None, inputs)
                times = []
                began = time.perf_counter()
                while len(times) < 5 or (time.perf_counter() - began < seconds and len(times) < 200):
                    sent = time.perf_counter()
                    session.run(None, inputs)
                    times.append((time.perf_counter() - sent) * 1000)
                median = statistics.median(times)
                entry = {"graph": name, "precision": precision, "batch": size, "median_ms": round(median, 3), "rows_per_s": round(size * 1000 / median, 1), "runs": len(times)}
                report["timings"].append(entry)
                print(f"{name} {precision} batch {size}: {entry['median_ms']} ms, {entry['rows_per_s']} rows/s", flush=True)

    try:  # onnxruntime's TensorRT provider needs libnvinfer (TensorRT 10) on the library path
        session = ort.InferenceSession(str(repository / "upscale/1/srmdnf_x4.onnx"), providers=["TensorrtExecutionProvider", "CPUExecutionProvider"])
        report["tensorrt"] = f"session providers: {session.get_providers()}"
    except Exception as error:  # reported, not fatal: the table then has no TensorRT row
        report["tensorrt"] = f"{type(error).__name__}: {error}"
    print(f"TensorRT provider: {report['tensorrt']}", flush=True)
    return report


# --- table ---------------------------------------------------------------------------------------


def request_body(model: str, photo: np.ndarray) -> tuple[bytes, int, int]:
    """Triton's HTTP/REST request with binary tensors: the body, its JSON header's length, the output's bytes."""
    if model == "remove_background":
        pixels = photo_square(photo)[None]
        tensors = [("IMAGE", "UINT8", pixels)]
        out_bytes = PHOTO_SIDE * PHOTO_SIDE
    else:
        pixels = np.ascontiguousarray(photo[60 : 60 + TILE, 200 : 200 + TILE][None])
        name, datatype, dtype, value = PARAMS[model]
        tensors = [("IMAGE", "UINT8", pixels), (name, datatype, np.full((1, 1), value, dtype))]
        side = TILE * (4 if model == "upscale" else 1)
        out_bytes = side * side * 3
    header = {
        "inputs": [{"name": n, "shape": list(a.shape), "datatype": d, "parameters": {"binary_data_size": a.nbytes}} for n, d, a in tensors],
        "outputs": [{"name": OUTPUT[model], "parameters": {"binary_data": True}}],
    }
    head = json.dumps(header).encode()
    return head + b"".join(np.ascontiguousarray(a).tobytes() for _, _, a in tensors), len(head), out_bytes


def caller(address: str, model: str, body: bytes, head_length: int, out_bytes: int, start: float, stop: float, minimum: int, results) -> None:
    host, port = address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=120)
    headers = {"Inference-Header-Content-Length": str(head_length), "Content-Type": "application/octet-stream"}
    latencies: list[float] = []
    failures = 0
    while time.time() < start:
        time.sleep(0.001)
    while time.time() < stop or len(latencies) < minimum:
        sent = time.perf_counter()
        connection.request("POST", f"/v2/models/{model}/infer", body, headers)
        response = connection.getresponse()
        data = response.read()
        if response.status != 200 or len(data) - int(response.getheader("Inference-Header-Content-Length", "0")) != out_bytes:
            failures += 1
            if failures > 3:
                print(f"{model} at {address}: HTTP {response.status}: {data[:300]!r}", flush=True)
                break
            continue
        latencies.append((time.perf_counter() - sent) * 1000)
    connection.close()
    results.put((latencies, failures))


def model_counts(address: str, model: str) -> tuple[int, int]:
    host, port = address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.request("GET", f"/v2/models/{model}/stats")
    stats = json.loads(connection.getresponse().read())["model_stats"][0]
    connection.close()
    return int(stats["inference_count"]), int(stats["execution_count"])


class GpuSampler:
    """NVML's GPU utilisation (percent of time a kernel ran), every 50 ms, on a thread."""

    def __init__(self) -> None:
        self.samples: list[int] = []
        self.running = False
        self.handle = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self.nvml = pynvml
            self.handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        except Exception as error:  # no GPU (a trial run on a CPU): the cells then have no utilisation
            self.problem = f"{type(error).__name__}: {error}"

    def name(self) -> str:
        if self.handle is None:
            return f"no GPU ({self.problem})"
        name = self.nvml.nvmlDeviceGetName(self.handle)
        return name.decode() if isinstance(name, bytes) else name

    def __enter__(self) -> "GpuSampler":
        self.samples, self.running = [], True
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()
        return self

    def loop(self) -> None:
        while self.running and self.handle is not None:
            self.samples.append(self.nvml.nvmlDeviceGetUtilizationRates(self.handle).gpu)
            time.sleep(0.05)

    def __exit__(self, *_) -> None:
        self.running = False
        self.thread.join()


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def cell(address: str, model: str, request: tuple, concurrency: int, seconds: float, sampler: GpuSampler) -> dict:
    body, head_length, out_bytes = request
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    start = time.time() + 0.3
    before = model_counts(address, model)
    processes = [
        context.Process(target=caller, args=(address, model, body, head_length, out_bytes, start, start + seconds, 2, results)) for _ in range(concurrency)
    ]
    for process in processes:
        process.start()
    time.sleep(max(0.0, start - time.time()))
    with sampler:
        collected = [results.get(timeout=seconds + 120) for _ in processes]
    elapsed = time.time() - start
    for process in processes:
        process.join()
    after = model_counts(address, model)
    latencies = [value for part, _ in collected for value in part]
    executions = after[1] - before[1]
    return {
        "requests": len(latencies),
        "seconds": round(elapsed, 2),
        "per_s": round(len(latencies) / elapsed, 1),
        "p50": round(percentile(latencies, 0.50), 1),
        "p95": round(percentile(latencies, 0.95), 1),
        "p99": round(percentile(latencies, 0.99), 1),
        "mean_batch": round((after[0] - before[0]) / executions, 2) if executions else None,
        "gpu_util": round(statistics.mean(sampler.samples), 1) if sampler.samples else None,
        "failures": sum(f for _, f in collected),
    }


def table(servers: list[tuple[str, str]], photo_path: str, models: list[str], seconds: float) -> dict:
    photo = load_photo(photo_path)
    sampler = GpuSampler()
    report: dict = {"gpu": sampler.name(), "seconds_per_cell": seconds, "cells": []}
    for model in models:
        request = request_body(model, photo)
        for _, address in servers:  # warm each server's sessions and arenas at batch 1
            for _ in range(3):
                cell_free_request(address, model, request)
        for concurrency in CONCURRENCY:
            for variant, address in servers:
                figures = cell(address, model, request, concurrency, seconds, sampler)
                report["cells"].append({"model": model, "concurrency": concurrency, "variant": variant, **figures})
                print(
                    f"{model} c={concurrency} {variant}: {figures['per_s']}/s, p50/p95/p99 {figures['p50']}/{figures['p95']}/{figures['p99']} ms, "
                    f"mean batch {figures['mean_batch']}, GPU {figures['gpu_util']}%, failures {figures['failures']}",
                    flush=True,
                )
    return report


def infer_once(address: str, model: str, body: bytes, head_length: int) -> tuple[int, bytes, bytes]:
    """One binary KServe v2 inference on a connection of its own: the HTTP status, the output
    tensor's bytes (after the JSON header) and the whole answer."""
    host, port = address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=120)
    connection.request("POST", f"/v2/models/{model}/infer", body, {"Inference-Header-Content-Length": str(head_length)})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, data[int(response.getheader("Inference-Header-Content-Length", "0")) :], data


def cell_free_request(address: str, model: str, request: tuple) -> None:
    body, head_length, _ = request
    status, _, data = infer_once(address, model, body, head_length)
    if status != 200:
        raise RuntimeError(f"{model} at {address}: HTTP {status}: {data[:300]!r}")


def check(servers: list[tuple[str, str]], photo_path: str, models: list[str]) -> bool:
    """One request per model and server: does a full, non-constant output come back?"""
    photo = load_photo(photo_path)
    good = True
    for model in models:
        body, head_length, out_bytes = request_body(model, photo)
        for variant, address in servers:
            status, payload, data = infer_once(address, model, body, head_length)
            ok = status == 200 and len(payload) == out_bytes and len(set(payload)) > 1
            good = good and ok
            print(f"check {variant} {model}: HTTP {status}, {len(payload)} of {out_bytes} bytes, {'ok' if ok else 'BAD ' + repr(data[:200])}", flush=True)
    return good


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="step", required=True)
    v = sub.add_parser("variants")
    v.add_argument("--repository", type=Path, required=True)
    v.add_argument("--out", type=Path, required=True)
    v.add_argument(
        "--cpu-instances",
        action="store_true",
        help="KIND_CPU instances whose model.py still runs CUDA (where KIND_GPU responses come back empty), and an fp16-batched copy",
    )
    d = sub.add_parser("direct")
    d.add_argument("--repository", type=Path, required=True)
    d.add_argument("--photo", required=True)
    d.add_argument("--seconds", type=float, default=0.5)
    d.add_argument("--graphs", nargs="+", default=list(GRAPHS))
    d.add_argument("--json", type=Path)
    c = sub.add_parser("check")
    c.add_argument("--server", action="append", required=True, help="NAME=HOST:HTTP_PORT")
    c.add_argument("--photo", required=True)
    c.add_argument("--models", nargs="+", default=list(MODELS))
    t = sub.add_parser("table")
    t.add_argument("--server", action="append", required=True, help="NAME=HOST:HTTP_PORT, measured in the order given")
    t.add_argument("--photo", required=True)
    t.add_argument("--models", nargs="+", default=list(MODELS))
    t.add_argument("--seconds", type=float, default=3)
    t.add_argument("--json", type=Path)
    args = parser.parse_args()

    if args.step == "variants":
        variants(args.repository, args.out, args.cpu_instances)
        return
    if args.step == "check":
        sys.exit(0 if check([tuple(s.split("=", 1)) for s in args.server], args.photo, args.models) else 1)
    if args.step == "direct":
        report = direct(args.repository, args.photo, args.seconds, args.graphs)
    else:
        report = table([tuple(s.split("=", 1)) for s in args.server], args.photo, args.models, args.seconds)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
