"""Runs each float32 graph of upscale and its float16 twin (`<name>.fp16.onnx`, written by
triton/build_ncnn_models.py through triton/float16.py) on the same tiles with onnxruntime, and prints, per graph,
the PSNR of the float16 output against the float32 output and how the twin's weights are stored.

    python float16_vs_float32.py --tiles tiles.npy [--repository triton/model_repository]
"""

import argparse
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

REPO_ROOT = Path(__file__).resolve().parents[2]
GRAPHS = {
    "upscale x2": ("upscale/1/srmdnf_x2", "UPSCALED"),
    "upscale x4": ("upscale/1/srmdnf_x4", "UPSCALED"),
}

parser = argparse.ArgumentParser()
parser.add_argument("--tiles", type=Path, required=True)
parser.add_argument("--repository", type=Path, default=REPO_ROOT / "triton" / "model_repository")
args = parser.parse_args()

tiles = np.load(args.tiles)
report = {}
for name, (stem, output) in GRAPHS.items():
    outputs = {}
    for suffix in (".onnx", ".fp16.onnx"):
        session = ort.InferenceSession(str(args.repository / f"{stem}{suffix}"), providers=["CPUExecutionProvider"])
        outputs[suffix] = session.run([output], {"IMAGE": tiles})[0]
    a, b = outputs[".onnx"].astype(np.float64), outputs[".fp16.onnx"].astype(np.float64)
    mse = float(np.mean((a - b) ** 2))
    weights = onnx.load(str(args.repository / f"{stem}.fp16.onnx")).graph.initializer
    report[name] = {
        "psnr_db": None if mse == 0 else round(10 * np.log10(255.0**2 / mse), 2),
        "max_abs_diff": int(np.abs(a - b).max()),
        "shape": list(outputs[".fp16.onnx"].shape),
        "float16_weights": sum(w.data_type == onnx.TensorProto.FLOAT16 for w in weights),
        "float32_weights": sum(w.data_type == onnx.TensorProto.FLOAT for w in weights),
    }
print(json.dumps(report))
