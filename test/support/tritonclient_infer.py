"""One inference through Triton's own Python gRPC client, to cross-check ours.

    python tritonclient_infer.py --url 127.0.0.1:8001 --scale 4 --input in.npy --output out.npy
    python tritonclient_infer.py --url 127.0.0.1:8001 --model enhance --strength 0.5 \
        --input in.npy --output out.npy

The image goes in as UINT8 `IMAGE`; `--scale` adds a UINT8 `SCALE` row per image, `--strength` an
FP32 `STRENGTH` row per image. `--output-name` picks the output (default IMAGE_OUT).
"""

import argparse
from pathlib import Path

import numpy as np
import tritonclient.grpc as grpcclient

parser = argparse.ArgumentParser()
parser.add_argument("--url", required=True)
parser.add_argument("--model", default="upscale")
parser.add_argument("--scale", type=int)
parser.add_argument("--strength", type=float)
parser.add_argument("--output-name", default="IMAGE_OUT")
parser.add_argument("--input", type=Path, required=True)
parser.add_argument("--output", type=Path, required=True)
args = parser.parse_args()


def tensor(name: str, array: np.ndarray, datatype: str) -> grpcclient.InferInput:
    given = grpcclient.InferInput(name, list(array.shape), datatype)
    given.set_data_from_numpy(array)
    return given


image = np.load(args.input)
inputs = [tensor("IMAGE", image, "UINT8")]
if args.scale is not None:
    inputs.append(tensor("SCALE", np.full((image.shape[0], 1), args.scale, np.uint8), "UINT8"))
if args.strength is not None:
    inputs.append(tensor("STRENGTH", np.full((image.shape[0], 1), args.strength, np.float32), "FP32"))

with grpcclient.InferenceServerClient(args.url) as client:
    result = client.infer(args.model, inputs, outputs=[grpcclient.InferRequestedOutput(args.output_name)])
np.save(args.output, result.as_numpy(args.output_name))
