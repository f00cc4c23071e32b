"""The enhance, comic, aged and remove_background edits computed outside Triton, for the
integration tests to compare with what Triton serves.

    python edit_models_outside_triton.py enhance --strength 0.7 --input in.npy --output out.npy
        onnxruntime on the built SRMD graph, told the noise level STRENGTH stands for as
        documented in enhance/1/model.py (re-implemented here), written to --output;
        --reference-output gets the original network's output on ncnn for the same noise level.
        Prints the ncnn check as JSON.
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
import build_ncnn_models  # noqa: E402
import build_remove_background  # noqa: E402


# enhance/1/model.py: STRENGTH 1 is this Gaussian noise level.
MAX_NOISE_LEVEL = 50.0


def enhance(args) -> None:
    image = np.load(args.input)
    strength = float(np.float32(args.strength))  # what the model sees: an FP32 tensor
    served = build_ncnn_models.BY_FILE["srmd_x2_denoise.onnx"]
    if strength <= 0:
        np.save(args.output, image.copy())
        if args.reference_output:
            np.save(args.reference_output, image.copy())
        print(json.dumps([]))
        return
    noise = MAX_NOISE_LEVEL * strength
    np.save(args.output, build_ncnn_models.run_onnx(build_ncnn_models.out_path(served), image, noise))
    wheel = build_ncnn_models.ensure_wheel(build_ncnn_models.DEFAULT_CACHE)
    if args.reference_output:
        np.save(args.reference_output, build_ncnn_models.reference(served, wheel, image, noise))
    print(json.dumps([build_ncnn_models.verify(served, wheel, image, noise)]))


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
