"""Precision variants of the models' ONNX graphs, for the GPU.

`to_float16` turns a graph whose inputs and outputs are uint8 (upscale, enhance) into the same
graph computed in float16: every float32 weight and constant is rounded to float16 and every
Cast to float32 becomes a Cast to float16. The inputs and outputs stay uint8, so the tensor
contract does not change. Inputs that ONNX requires in float32 whatever the data's type (Resize's
roi and scales, in Real-ESRGAN's upsampling) stay float32. build_ncnn_models.py writes it next to each of upscale's float32
graph as `<name>.fp16.onnx`, which model.py loads when its config asks for ONNX_PRECISION fp16
(configs/gpu.pbtxt). On a GPU the convolutions then run on the tensor cores at half the bytes.

`to_float32` goes the other way, for ISNet (remove_background), which its package ships in
float16 behind float32 inputs and outputs: widening float16 is exact, so it gives the same
network computed in float32, the baseline of the GPU table (docs/gpu.md).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

FLOAT, FLOAT16 = TensorProto.FLOAT, TensorProto.FLOAT16
# (op_type, input index) pairs that must stay float32: Resize's roi and scales.
FLOAT32_ONLY = {("Resize", 1), ("Resize", 2)}


def to_float16(model: onnx.ModelProto) -> onnx.ModelProto:
    """The graph in float16; its uint8 inputs and outputs unchanged."""
    for tensor in (*model.graph.input, *model.graph.output):
        if tensor.type.tensor_type.elem_type == FLOAT:
            raise ValueError(f"{tensor.name} is float32: to_float16 keeps inputs and outputs as they are, so they must not be float")
    keep = {name for node in model.graph.node for i, name in enumerate(node.input) if (node.op_type, i) in FLOAT32_ONLY}
    converted = _convert(model, FLOAT, FLOAT16, np.float16, keep)
    onnx.checker.check_model(converted, full_check=True)
    return converted


def to_float32(model: onnx.ModelProto) -> onnx.ModelProto:
    """The graph in float32 (exact: every float16 value is a float32 value). Not checked: ISNet's
    nodes are not in topological order, which onnxruntime accepts and onnx's checker does not."""
    return _convert(model, FLOAT16, FLOAT, np.float32)


def _convert(model: onnx.ModelProto, source: int, target: int, dtype, keep: frozenset | set = frozenset()) -> onnx.ModelProto:
    """Retypes every `source` tensor but those named in `keep` (and the Constants that make them)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    for index, tensor in enumerate(graph.initializer):
        if tensor.data_type == source and tensor.name not in keep:
            graph.initializer[index].CopyFrom(_retype(tensor, dtype))
    for node in graph.node:
        if node.op_type == "Constant" and set(node.output) & keep:
            continue
        for attribute in node.attribute:
            if node.op_type == "Cast" and attribute.name == "to" and attribute.i == source:
                attribute.i = target
            elif attribute.type == onnx.AttributeProto.TENSOR and attribute.t.data_type == source:
                attribute.t.CopyFrom(_retype(attribute.t, dtype))
    for info in graph.value_info:
        if info.type.tensor_type.elem_type == source and info.name not in keep:
            info.type.tensor_type.elem_type = target
    return out


def _retype(tensor: onnx.TensorProto, dtype) -> onnx.TensorProto:
    return numpy_helper.from_array(numpy_helper.to_array(tensor).astype(dtype), tensor.name)
