"""Runs the upscale ONNX graph with onnxruntime outside Triton, and checks it against the NumPy
reference of the Keras graph (triton/build_upscale.py verify).

    python upscale_outside_triton.py --tarball T --scale 4 --input in.npy --output out.npy
Writes the onnxruntime output to --output and prints the reference check's report as JSON.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "triton"))
import build_upscale  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--tarball", type=Path, required=True)
parser.add_argument("--scale", type=int, required=True)
parser.add_argument("--input", type=Path, required=True)
parser.add_argument("--output", type=Path, required=True)
parser.add_argument("--onnx-dir", type=Path, default=build_upscale.DEFAULT_OUT_DIR)
args = parser.parse_args()

image = np.load(args.input)
onnx_path = args.onnx_dir / build_upscale.onnx_file_name(args.scale)
np.save(args.output, build_upscale.run_onnx(onnx_path, image))
print(json.dumps(build_upscale.verify(args.tarball, args.scale, image, onnx_path)))
