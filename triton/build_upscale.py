"""Builds the ONNX graphs of the upscale model from the pinned ESRGAN-slim package.

The weights come from the npm package @upscalerjs/esrgan-slim@1.0.0 (MIT), fetched with
`npm pack` by local/stack/triton.ts. Its models/x2 and models/x4 are TF.js *layers* models: a Keras
Functional graph (an RDN) in model.json and float32 weights in one shard. We walk that graph and
write the same network as ONNX ourselves, wrapped so that the served graph speaks pixels:

    IMAGE    uint8 [N, H, W, 3]   (NHWC, RGB, 0..255)
    UPSCALED uint8 [N, s*H, s*W, 3]

Inside: Cast to float, NHWC -> NCHW, the RDN, Clip 0..255, Round (half to even), Cast to
uint8, NCHW -> NHWC.

One rewrite: the RDN ends in UpSampling2D (nearest, s x s) followed by a 3x3 'same' Conv2D at
the high resolution. That pair equals one 3x3 conv at the low resolution with s*s times the
output channels (each output phase's kernel is the sum of the taps that land on the same
low-resolution pixel) followed by DepthToSpace. Same arithmetic, but no s*s-times larger
intermediate tensor: it halves the CPU time of x4 and saves as much memory on the GPU.

`verify()` checks a built graph against a NumPy implementation of the Keras graph computed
directly from the TF.js weights (float64, no ONNX involved); the integration tests call it on a
real photo crop.

Usage (inside the project venv; --help for the options):
    python triton/build_upscale.py build --tarball T
    python triton/build_upscale.py verify --tarball T --scale 4 --image crop.npy
"""

from __future__ import annotations

import json
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pinned_build import INPUT_NAME, CheckedGraphs, PinnedTarball, pixel_model

TARBALL = PinnedTarball.of("upscale")
SCALES = (2, 4)
OUTPUT_NAME = "UPSCALED"


def onnx_file_name(scale: int) -> str:
    return f"esrgan_slim_x{scale}.onnx"


# --- The package -------------------------------------------------------------------------


@dataclass
class LayersModel:
    """A TF.js layers model: the Keras layer list and the weights by name (HWIO kernels)."""

    scale: int
    layers: list[dict]
    input_name: str
    output_name: str
    weights: dict[str, np.ndarray]


def load_layers_model(tarball: Path, scale: int) -> LayersModel:
    TARBALL.check(tarball)
    with tarfile.open(tarball, "r:gz") as tar:
        model_dir = f"package/models/x{scale}"
        model = json.load(tar.extractfile(f"{model_dir}/model.json"))  # type: ignore[arg-type]
        if model.get("format") != "layers-model":
            raise SystemExit(f"x{scale}: expected a TF.js layers-model, got {model.get('format')}")
        config = model["modelTopology"]["model_config"]["config"]
        weights: dict[str, np.ndarray] = {}
        for group in model["weightsManifest"]:
            blob = b"".join(tar.extractfile(f"{model_dir}/{p}").read() for p in group["paths"])  # type: ignore[union-attr]
            offset = 0
            for spec in group["weights"]:
                if spec["dtype"] != "float32" or spec.get("quantization"):
                    raise SystemExit(f"x{scale}: weight {spec['name']} is not plain float32")
                count = int(np.prod(spec["shape"]))
                weights[spec["name"]] = np.frombuffer(blob, "<f4", count, offset).reshape(spec["shape"]).copy()
                offset += count * 4
            if offset != len(blob):
                raise SystemExit(f"x{scale}: weights use {offset} of {len(blob)} bytes")
    [[input_name, _, _]] = config["input_layers"]
    [[output_name, _, _]] = config["output_layers"]
    return LayersModel(scale, config["layers"], input_name, output_name, weights)


SUPPORTED = {"InputLayer", "Conv2D", "Activation", "Concatenate", "Add", "UpSampling2D"}


def inbound(layer: dict) -> list[str]:
    nodes = layer["inbound_nodes"]
    if len(nodes) > 1:
        raise SystemExit(f"layer {layer['name']} is shared; not supported")
    return [entry[0] for entry in nodes[0]] if nodes else []


def check_layer(layer: dict) -> None:
    kind, cfg = layer["class_name"], layer["config"]
    if kind not in SUPPORTED:
        raise SystemExit(f"layer {layer['name']}: {kind} is not supported")
    if kind == "Conv2D":
        ok = (
            cfg["strides"] == [1, 1]
            and cfg["dilation_rate"] == [1, 1]
            and cfg.get("groups", 1) == 1
            and cfg["data_format"] == "channels_last"
            and cfg["padding"] in ("same", "valid")
            and cfg["activation"] in ("linear", "relu")
        )
        if not ok:
            raise SystemExit(f"layer {layer['name']}: Conv2D config {cfg} is not supported")
    if kind == "Activation" and cfg["activation"] != "relu":
        raise SystemExit(f"layer {layer['name']}: activation {cfg['activation']} is not supported")
    if kind == "UpSampling2D" and (cfg["interpolation"] != "nearest" or cfg["data_format"] != "channels_last"):
        raise SystemExit(f"layer {layer['name']}: UpSampling2D config {cfg} is not supported")


def same_pads(kernel: int) -> tuple[int, int]:
    """TF 'same' padding at stride 1: the odd pixel, if any, goes at the end."""
    total = kernel - 1
    return total // 2, total - total // 2


def conv_pads(cfg: dict) -> tuple[tuple[int, int], tuple[int, int]]:
    kh, kw = cfg["kernel_size"]
    if cfg["padding"] == "valid":
        return (0, 0), (0, 0)
    return same_pads(kh), same_pads(kw)


def nhwc_axis(axis: int) -> int:
    """A channels_last Keras axis as an NCHW axis."""
    return {-1: 1, 3: 1, 1: 2, 2: 3}[axis]


def subpixel_fusions(model: LayersModel) -> dict[str, str]:
    """UpSampling2D layers whose only consumer is a 3x3 'same' conv: {upsampling: conv}."""
    consumers: dict[str, list[dict]] = {}
    for layer in model.layers:
        for source in inbound(layer):
            consumers.setdefault(source, []).append(layer)
    fusions = {}
    for layer in model.layers:
        if layer["class_name"] != "UpSampling2D":
            continue
        sh, sw = layer["config"]["size"]
        users = consumers.get(layer["name"], [])
        if len(users) != 1 or users[0]["class_name"] != "Conv2D" or layer["name"] == model.output_name:
            continue
        conv = users[0]["config"]
        if sh == sw >= 2 and conv["kernel_size"] == [3, 3] and conv["padding"] == "same" and conv["activation"] == "linear":
            fusions[layer["name"]] = users[0]["name"]
    return fusions


def subpixel_kernel(kernel: np.ndarray, scale: int) -> np.ndarray:
    """The HWIO 3x3 kernel of conv(upsample(x)) as a low-resolution 3x3 kernel with
    scale*scale*O outputs, ordered for DepthToSpace DCR (channel = (row*scale + col)*O + o)."""
    _, _, cin, cout = kernel.shape
    fused = np.zeros((3, 3, cin, scale, scale, cout), np.float64)
    for a in range(scale):  # output row phase
        for b in range(scale):  # output column phase
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    # High-res row s*Y + a + dy lies in low-res row Y + floor((a + dy) / s).
                    low_y, low_x = (a + dy) // scale, (b + dx) // scale
                    fused[low_y + 1, low_x + 1, :, a, b, :] += kernel[dy + 1, dx + 1]
    return fused.reshape(3, 3, cin, scale * scale * cout).astype(np.float32)


# --- ONNX --------------------------------------------------------------------------------


def to_onnx(model: LayersModel):
    from onnx import TensorProto, helper, numpy_helper

    nodes: list = []
    inits: list = []
    produced: dict[str, str] = {}  # Keras layer name -> ONNX value name (NCHW float)

    def const(name: str, array: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(array, name))
        return name

    nodes.append(helper.make_node("Cast", [INPUT_NAME], ["image_f32"], to=TensorProto.FLOAT))
    nodes.append(helper.make_node("Transpose", ["image_f32"], ["image_nchw"], perm=[0, 3, 1, 2]))

    fusions = subpixel_fusions(model)
    fused_convs = {conv: upsampling for upsampling, conv in fusions.items()}
    for layer in model.layers:
        check_layer(layer)
        name, kind, cfg = layer["name"], layer["class_name"], layer["config"]
        out = f"{name}:0"
        if kind == "InputLayer":
            produced[name] = "image_nchw"
            continue
        if name in fusions:
            # Computed by its conv; the conv reads the low-resolution input instead.
            produced[name] = produced[inbound(layer)[0]]
            continue
        inputs = [produced[i] for i in inbound(layer)]
        if name in fused_convs:
            upsampling = next(l for l in model.layers if l["name"] == fused_convs[name])
            scale = upsampling["config"]["size"][0]
            kernel = subpixel_kernel(model.weights[f"{name}/kernel"], scale)
            w = const(f"{name}/W_subpixel", np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
            bias = np.tile(model.weights[f"{name}/bias"], scale * scale)
            b = const(f"{name}/B_subpixel", bias.astype(np.float32))
            nodes.append(
                helper.make_node(
                    "Conv", [inputs[0], w, b], [f"{name}:phases"], name=name, kernel_shape=[3, 3], pads=[1, 1, 1, 1]
                )
            )
            nodes.append(
                helper.make_node("DepthToSpace", [f"{name}:phases"], [out], name=f"{name}/d2s", blocksize=scale, mode="DCR")
            )
            produced[name] = out
            continue
        if kind == "Conv2D":
            kernel = model.weights[f"{name}/kernel"]  # HWIO
            w = const(f"{name}/W", np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))  # OIHW
            conv_inputs = [inputs[0], w]
            if cfg["use_bias"]:
                conv_inputs.append(const(f"{name}/B", model.weights[f"{name}/bias"]))
            (top, bottom), (left, right) = conv_pads(cfg)
            conv_out = out if cfg["activation"] == "linear" else f"{name}:pre"
            nodes.append(
                helper.make_node(
                    "Conv",
                    conv_inputs,
                    [conv_out],
                    name=name,
                    kernel_shape=cfg["kernel_size"],
                    pads=[top, left, bottom, right],
                    strides=[1, 1],
                    dilations=[1, 1],
                    group=1,
                )
            )
            if cfg["activation"] == "relu":
                nodes.append(helper.make_node("Relu", [conv_out], [out]))
        elif kind == "Activation":
            nodes.append(helper.make_node("Relu", inputs, [out], name=name))
        elif kind == "Concatenate":
            nodes.append(helper.make_node("Concat", inputs, [out], name=name, axis=nhwc_axis(cfg["axis"])))
        elif kind == "Add":
            acc = inputs[0]
            for i, other in enumerate(inputs[1:]):
                step = out if i == len(inputs) - 2 else f"{name}:sum{i}"
                nodes.append(helper.make_node("Add", [acc, other], [step]))
                acc = step
        elif kind == "UpSampling2D":
            sh, sw = cfg["size"]
            scales = const(f"{name}/scales", np.array([1, 1, sh, sw], np.float32))
            # asymmetric + floor at an integer scale is exactly "repeat each pixel", as Keras does.
            nodes.append(
                helper.make_node(
                    "Resize",
                    [inputs[0], "", scales],
                    [out],
                    name=name,
                    mode="nearest",
                    coordinate_transformation_mode="asymmetric",
                    nearest_mode="floor",
                )
            )
        produced[name] = out

    lo = const("clip/min", np.array(0, np.float32))
    hi = const("clip/max", np.array(255, np.float32))
    nodes.append(helper.make_node("Clip", [produced[model.output_name], lo, hi], ["clipped"]))
    s = model.scale
    doc = f"{TARBALL.package} models/x{s}, converted from the TF.js layers model"
    return pixel_model(f"esrgan_slim_x{s}", nodes, inits, "clipped", OUTPUT_NAME, ["N", f"H*{s}", f"W*{s}", 3], doc, Path(__file__))


# --- NumPy reference ---------------------------------------------------------------------


def reference(model: LayersModel, image: np.ndarray) -> np.ndarray:
    """The Keras graph in float64 NHWC, straight from the TF.js weights; uint8 [N,H,W,3] in and out."""
    if image.dtype != np.uint8 or image.ndim != 4 or image.shape[3] != 3:
        raise ValueError(f"expected uint8 [N,H,W,3], got {image.dtype} {image.shape}")
    values: dict[str, np.ndarray] = {}
    for layer in model.layers:
        check_layer(layer)
        name, kind, cfg = layer["name"], layer["class_name"], layer["config"]
        xs = [values[i] for i in inbound(layer)]
        if kind == "InputLayer":
            y = image.astype(np.float64)
        elif kind == "Conv2D":
            kernel = model.weights[f"{name}/kernel"].astype(np.float64)
            y = conv2d_nhwc(xs[0], kernel, conv_pads(cfg))
            if cfg["use_bias"]:
                y = y + model.weights[f"{name}/bias"].astype(np.float64)
            if cfg["activation"] == "relu":
                y = np.maximum(y, 0)
        elif kind == "Activation":
            y = np.maximum(xs[0], 0)
        elif kind == "Concatenate":
            y = np.concatenate(xs, axis=cfg["axis"])
        elif kind == "Add":
            y = sum(xs[1:], xs[0])
        elif kind == "UpSampling2D":
            sh, sw = cfg["size"]
            y = xs[0].repeat(sh, axis=1).repeat(sw, axis=2)
        values[name] = y
    return np.round(np.clip(values[model.output_name], 0, 255)).astype(np.uint8)


def conv2d_nhwc(x: np.ndarray, kernel: np.ndarray, pads) -> np.ndarray:
    (top, bottom), (left, right) = pads
    kh, kw, _, cout = kernel.shape
    n, h, w, _ = x.shape
    padded = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    out_h, out_w = h + top + bottom - kh + 1, w + left + right - kw + 1
    y = np.zeros((n, out_h, out_w, cout), np.float64)
    for dy in range(kh):
        for dx in range(kw):
            y += padded[:, dy : dy + out_h, dx : dx + out_w, :] @ kernel[dy, dx]
    return y


# --- Build and verify --------------------------------------------------------------------


GRAPHS = CheckedGraphs("upscale", "scale", SCALES, onnx_file_name, OUTPUT_NAME, label=lambda scale: f"x{scale}",
    convert=lambda tarball, scale: to_onnx(load_layers_model(tarball, scale)),
    reference=lambda tarball, scale, image: reference(load_layers_model(tarball, scale), image))
DEFAULT_OUT_DIR = GRAPHS.out_dir
run_onnx = GRAPHS.run
verify = GRAPHS.verify

if __name__ == "__main__":
    GRAPHS.main(__doc__, sys.argv[1:])
