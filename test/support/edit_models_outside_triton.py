"""The enhance, comic, aged and remove_background edits computed outside Triton, for the
integration tests to compare with what Triton serves.

    python edit_models_outside_triton.py enhance --tarball T --strength 0.7 --input in.npy --output out.npy
        onnxruntime on the built graphs, mixed by STRENGTH as documented in enhance/1/model.py
        (re-implemented here), written to --output; --reference-output gets the same mix of
        the NumPy reference of the JSON weights. Prints the per-level reference checks as JSON.
    python edit_models_outside_triton.py filter --model comic --strength 0.7 --input in.npy --output out.npy
        the classical operator's module, imported from the model repository and run in this
        process.
    python edit_models_outside_triton.py remove_background --tarball T --input in.npy --output mask.npy
        the package's unedited ISNet graph with the package's pre/post-processing.
"""

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
MODELS = REPO_ROOT / "triton" / "model_repository"
sys.path.insert(0, str(REPO_ROOT / "triton"))
import build_enhance  # noqa: E402
import build_remove_background  # noqa: E402


def mix(image: np.ndarray, level1: np.ndarray, level3: np.ndarray, strength: float) -> np.ndarray:
    """0 -> image, 0.5 -> level 1, 1 -> level 3, linear in between, rounded half to even."""
    if strength <= 0:
        return image.copy()
    if strength <= 0.5:
        a, b, t = image, level1, strength * 2
    else:
        a, b, t = level1, level3, strength * 2 - 1
    a, b = a.astype(np.float64), b.astype(np.float64)
    return np.round(a + (b - a) * t).astype(np.uint8)


def enhance(args) -> None:
    image = np.load(args.input)
    strength = float(np.float32(args.strength))  # what the model sees: an FP32 tensor
    onnx = {level: build_enhance.run_onnx(build_enhance.DEFAULT_OUT_DIR / build_enhance.onnx_file_name(level), image) for level in build_enhance.LEVELS}
    layers = build_enhance.load_levels(args.tarball)
    ref = {level: build_enhance.reference(layers[level], image) for level in build_enhance.LEVELS}
    np.save(args.output, mix(image, onnx[1], onnx[3], strength))
    if args.reference_output:
        np.save(args.reference_output, mix(image, ref[1], ref[3], strength))
    reports = []
    for level in build_enhance.LEVELS:
        diff = np.abs(onnx[level].astype(np.int16) - ref[level].astype(np.int16))
        reports.append({"level": level, "max_abs_diff": int(diff.max()), "values": int(diff.size)})
    print(json.dumps(reports))


def classical(args) -> None:
    folder = MODELS / args.model / "1"
    sys.path.insert(0, str(folder))  # as model.py does, for the modules linked beside the filter
    path = folder / f"{args.model}_filter.py"
    spec = importlib.util.spec_from_file_location(f"{args.model}_filter", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    operator = getattr(module, args.model)
    np.save(args.output, operator(np.load(args.input), float(np.float32(args.strength))))
    print(json.dumps({"radius": module.RADIUS}))


def remove_background(args) -> None:
    image = np.load(args.input)
    np.save(args.output, build_remove_background.reference_mask(args.tarball, image))


parser = argparse.ArgumentParser()
sub = parser.add_subparsers(dest="command", required=True)
e = sub.add_parser("enhance")
e.add_argument("--tarball", type=Path, required=True)
e.add_argument("--strength", type=float, required=True)
e.add_argument("--input", type=Path, required=True)
e.add_argument("--output", type=Path, required=True)
e.add_argument("--reference-output", type=Path)
f = sub.add_parser("filter")
f.add_argument("--model", choices=["comic", "aged"], required=True)
f.add_argument("--strength", type=float, required=True)
f.add_argument("--input", type=Path, required=True)
f.add_argument("--output", type=Path, required=True)
r = sub.add_parser("remove_background")
r.add_argument("--tarball", type=Path, required=True)
r.add_argument("--input", type=Path, required=True)
r.add_argument("--output", type=Path, required=True)
args = parser.parse_args()
{"enhance": enhance, "filter": classical, "remove_background": remove_background}[args.command](args)
