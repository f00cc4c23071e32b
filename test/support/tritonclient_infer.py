"""One inference through Triton's own Python gRPC client, to cross-check ours.

    python tritonclient_infer.py --url 127.0.0.1:8001 --scale 4 --input in.npy --output out.npy
"""

import argparse
from pathlib import Path

import numpy as np
import tritonclient.grpc as grpcclient

parser = argparse.ArgumentParser()
parser.add_argument("--url", required=True)
parser.add_argument("--model", default="upscale")
parser.add_argument("--scale", type=int, required=True)
parser.add_argument("--input", type=Path, required=True)
parser.add_argument("--output", type=Path, required=True)
args = parser.parse_args()

image = np.load(args.input)
image_input = grpcclient.InferInput("IMAGE", list(image.shape), "UINT8")
image_input.set_data_from_numpy(image)
scale = np.full((image.shape[0], 1), args.scale, np.uint8)
scale_input = grpcclient.InferInput("SCALE", list(scale.shape), "UINT8")
scale_input.set_data_from_numpy(scale)

with grpcclient.InferenceServerClient(args.url) as client:
    result = client.infer(args.model, [image_input, scale_input], outputs=[grpcclient.InferRequestedOutput("IMAGE_OUT")])
np.save(args.output, result.as_numpy("IMAGE_OUT"))
