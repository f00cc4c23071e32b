"""Runs triton/model_repository/request_handling.py's answer_in_groups outside Triton and prints
what it did, as JSON, for test/int/requestHandling.int.test.ts.

Stand-in, labelled: `triton_python_backend_utils` exists only inside Triton's Python stub process,
so this script installs a minimal module of the same name with the four names request_handling
uses (InferenceResponse, Tensor, TritonError and its codes). The requests are objects whose
`is_cancelled()` answers from a flag the script flips, as Triton does when the gRPC call is
cancelled. What Triton itself does with a cancelled call is the faults tier's to show.
"""

import json
import os
import sys
import types

import numpy as np

stand_in = types.ModuleType("triton_python_backend_utils")


class TritonError:
    CANCELLED = "CANCELLED"
    INVALID_ARG = "INVALID_ARG"
    INTERNAL = "INTERNAL"

    def __init__(self, message, code):
        self.message, self.code = message, code


class InferenceResponse:
    def __init__(self, output_tensors, error=None):
        self.output_tensors, self.error = output_tensors, error


class Tensor:
    def __init__(self, name, array):
        self.name, self.array = name, array


stand_in.TritonError, stand_in.InferenceResponse, stand_in.Tensor = TritonError, InferenceResponse, Tensor
sys.modules["triton_python_backend_utils"] = stand_in
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "triton", "model_repository"))
from request_handling import answer_in_groups, rows_per_run_for  # noqa: E402


class Request:
    def __init__(self, value):
        self.image = np.full((1, 2, 2, 3), value, dtype=np.uint8)
        self.gave_up = False

    def is_cancelled(self):
        return self.gave_up


def outcome(rows_per_run, cancel_after_first_run):
    requests = [Request(value) for value in range(4)]
    runs = []

    def run(batch, setting):
        runs.append([int(row[0, 0, 0]) for row in batch])
        if cancel_after_first_run:
            requests[2].gave_up = True
        return batch + setting

    responses = answer_in_groups(requests, lambda request: (request.image, 10), run, "OUT", "failed", rows_per_run)
    answers = []
    for response in responses:
        if response.error is not None:
            answers.append(response.error.code)
        else:
            answers.append(int(response.output_tensors[0].array[0, 0, 0, 0]))
    return {"runs": runs, "answers": answers}


print(
    json.dumps(
        {
            "wholeBatch": outcome(None, True),
            "oneAtATime": outcome(1, True),
            "oneAtATimeNoCancel": outcome(1, False),
            "rowsPerRun": {"CPU": rows_per_run_for({"model_instance_kind": "CPU"}), "GPU": rows_per_run_for({"model_instance_kind": "GPU"})},
        }
    )
)
