"""Runs the upscale x2 graph through onnx_sessions.run_bucketed, as the GPU configs do (one session
per batch bucket, batches padded up to the next bucket), and through one plain session, on the same
tiles at every batch size from 1 to --max, and prints per size whether the bytes agree and which
batch shapes each bucket's session was given.

    python onnx_sessions_check.py --tiles tiles.npy --buckets 1,2,4 --max 6
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

REPOSITORY = Path(__file__).resolve().parents[2] / "triton" / "model_repository"
sys.path.insert(0, str(REPOSITORY))
from onnx_sessions import onnx_file, run_bucketed, sessions_by_bucket  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--tiles", type=Path, required=True)
parser.add_argument("--buckets", required=True)
parser.add_argument("--max", type=int, required=True)
args = parser.parse_args()


class Recording:
    """An onnxruntime session that remembers the batch sizes it was given."""

    def __init__(self, path: str) -> None:
        self.session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        self.sizes: set[int] = set()

    def run(self, outputs, feeds):
        self.sizes.update(int(v.shape[0]) for v in feeds.values())
        return self.session.run(outputs, feeds)


parameters = {"BATCH_BUCKETS": {"string_value": args.buckets}, "ONNX_PRECISION": {"string_value": "fp32"}}
path = onnx_file(parameters, str(REPOSITORY / "upscale" / "1" / "srmdnf_x2"))
bucketed = sessions_by_bucket(parameters, lambda: Recording(path))
plain = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
tiles = np.load(args.tiles)
rows = np.concatenate([tiles] * (args.max // len(tiles) + 1))[: args.max]
same = {}
for size in range(1, args.max + 1):
    batch = np.ascontiguousarray(rows[:size])
    a = run_bucketed(bucketed, "UPSCALED", "IMAGE", batch)
    b = plain.run(["UPSCALED"], {"IMAGE": batch})[0]
    same[size] = bool(a.shape == b.shape and np.array_equal(a, b))
print(json.dumps({"same": same, "sizes_per_bucket": {str(k): sorted(v.sizes) for k, v in bucketed.items()}}))
