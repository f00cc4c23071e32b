"""What every Python backend model in this repository does with a request, in one place.

A model's execute() hands its requests to `answer_in_groups`, with two functions of its own:
`read(request)` returns the request's image and its one setting (a scale, a strength), or raises
`BadRequest`; `run(batch, setting)` computes the output of a batch. This module does the rest,
the same way for every model:
- a cancelled request is answered CANCELLED and not computed;
- a request that `read` refuses is answered INVALID_ARG with its message;
- the other requests of one execute() call are grouped by (tile shape, setting), each group runs
  as one batch, and the rows are split back to their requests; with `rows_per_run` (a CPU
  instance, see `rows_per_run_for`), a group runs a few requests at a time, and a request
  cancelled meanwhile is answered CANCELLED before its turn: a canceled edit's tiles stop costing
  the server within one run, where a whole batch of Real-ESRGAN tiles takes minutes on a CPU;
- a group whose `run` raises is answered INTERNAL, and the other groups still run.

How a model finds this file. It lives at the root of the model repository, where Triton does not
look (Triton loads only the repository's sub-folders as models), and every model's version folder
holds a symbolic link to it, `<model>/1/request_handling.py -> ../../request_handling.py`, which
model.py imports from its own folder. The link is what makes it work everywhere: Triton gives a
Python model only its own folder (from a gs:// repository it copies each model's folder on its
own into a temporary directory), so a path to the repository root would hold in the local stack
and the tests, which read triton/model_repository in place, but not in production. Whatever
uploads the repository must therefore copy what the links point to
(`gcloud storage rsync --no-ignore-symlinks`). test/unit/modelRepository.unit.test.ts checks
that every model has its links; test/int/modelRepositoryBucket.int.test.ts serves the repository
from a bucket, uploaded with and without them.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Callable, Hashable

import numpy as np
import triton_python_backend_utils as pb_utils


class BadRequest(Exception):
    """A request the model refuses to compute: answered INVALID_ARG with this message."""


def answer_in_groups(
    requests: list,
    read: Callable[[object], tuple[np.ndarray, Hashable]],
    run: Callable[[np.ndarray, Hashable], np.ndarray],
    output_name: str,
    failure: str,
    rows_per_run: int | None = None,
) -> list:
    """One response per request, in order (see the module's docstring)."""
    responses: list = [None] * len(requests)
    groups: dict[tuple, list[tuple[int, np.ndarray]]] = defaultdict(list)
    for index, request in enumerate(requests):
        if cancelled(request):
            responses[index] = error_response("request was cancelled", pb_utils.TritonError.CANCELLED)
            continue
        try:
            image, setting = read(request)
        except BadRequest as problem:
            responses[index] = error_response(str(problem), pb_utils.TritonError.INVALID_ARG)
            continue
        groups[(image.shape[1:], setting)].append((index, image))

    for (_, setting), group in groups.items():
        step = rows_per_run or len(group)
        for start in range(0, len(group), step):
            members = []
            for index, image in group[start : start + step]:
                if start > 0 and cancelled(requests[index]):
                    responses[index] = error_response("request was cancelled", pb_utils.TritonError.CANCELLED)
                else:
                    members.append((index, image))
            if members:
                run_members(members, setting, run, output_name, failure, responses)
    return responses


def run_members(members: list, setting: Hashable, run: Callable, output_name: str, failure: str, responses: list) -> None:
    """Runs one batch of a group's requests and puts each one's rows, or the error, in `responses`."""
    batch = np.concatenate([image for _, image in members]) if len(members) > 1 else members[0][1]
    try:
        out = run(batch, setting)
    except Exception as error:  # one failed batch must not fail the others
        for index, _ in members:
            responses[index] = error_response(f"{failure}: {error}", pb_utils.TritonError.INTERNAL)
        return
    start = 0
    for index, image in members:
        rows = out[start : start + image.shape[0]]
        start += image.shape[0]
        responses[index] = pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(output_name, rows)])


def cancelled(request) -> bool:
    """Whether the caller gave the request up (Triton marks it when the gRPC call is cancelled)."""
    return bool(getattr(request, "is_cancelled", None) and request.is_cancelled())


def rows_per_run_for(args: dict) -> int | None:
    """How many requests of a group run at once: one on a CPU instance, where batching gains
    little and a batch cannot be stopped; all of them on a GPU, where the batch is the point."""
    return 1 if args.get("model_instance_kind") == "CPU" else None


def read_tiles(request) -> np.ndarray:
    """The request's IMAGE, uint8 [batch, height, width, 3] with a height and a width."""
    image = pb_utils.get_input_tensor_by_name(request, "IMAGE").as_numpy()
    if image.ndim != 4 or image.shape[3] != 3:
        raise BadRequest(f"IMAGE must be [batch, height, width, 3], got {list(image.shape)}")
    if image.shape[1] == 0 or image.shape[2] == 0:
        raise BadRequest(f"IMAGE must not be empty, got {list(image.shape)}")
    return image


def read_setting(request, name: str, image: np.ndarray, parse: Callable, valid: Callable[[object], bool], expected: str):
    """The one value of input `name` that every row of the request must carry, e.g. its STRENGTH."""
    rows = pb_utils.get_input_tensor_by_name(request, name).as_numpy().reshape(-1)
    if rows.size != image.shape[0]:
        raise BadRequest(f"{name} must have one row per IMAGE row, got {rows.size} for {image.shape[0]}")
    values = sorted({parse(v) for v in rows})
    if len(values) != 1 or not valid(values[0]):
        raise BadRequest(f"{name} must be {expected} for every row of a request, got {values}")
    return values[0]


def read_tiles_and_strength(request) -> tuple[np.ndarray, float]:
    """IMAGE tiles and their STRENGTH, one finite value in [0, 1]."""
    image = read_tiles(request)
    strength = read_setting(
        request, "STRENGTH", image, float, lambda v: math.isfinite(v) and 0 <= v <= 1, "one value in [0, 1]"
    )
    return image, strength


def filter_model(name: str, operator: Callable[[np.ndarray, float], np.ndarray], radius: int) -> type:
    """The Triton model class of a classical NumPy operator `operator(tiles, strength) -> tiles`.

    The comic and aged models are this class with their own operator: everything but the filter
    is shared.
    """

    class TritonPythonModel:
        def initialize(self, args):
            pb_utils.Logger.log_info(f"{name}: classical NumPy operator, radius {radius} px")

        def execute(self, requests):
            return answer_in_groups(requests, read_tiles_and_strength, operator, "IMAGE_OUT", f"{name} failed")

    return TritonPythonModel


def error_response(message: str, code) -> "pb_utils.InferenceResponse":
    return pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(message, code))
