"""A small ncnn -> ONNX converter for the layer types of the super-resolution graphs we serve.

ncnn stores a network as a text `.param` (one layer a line: type, name, bottom and top blob
names, `key=value` parameters) and a binary `.bin` holding each weighted layer's data in layer
order. This reads both and writes the same computation as ONNX nodes on float32 NCHW tensors, for
the layer types these graphs use (anything else is refused, never guessed):

    Input, Convolution (with its fused ReLU / LeakyReLU / Clip / Sigmoid), Deconvolution,
    ReLU, Split, Concat, Eltwise (sum with coefficients, product, max), BinaryOp (tensor or
    scalar add, sub, mul, div, max, min), Interp (nearest or bilinear, by scale), PixelShuffle

Parameter ids follow ncnn's src/layer/*.cpp (load_param): e.g. Convolution 0=num_output,
1=kernel_w, 11=kernel_h, 2/12 dilation, 3/13 stride, 4/14/15/16 pads (left, top, right,
bottom), 5=bias_term, 6=weight_data_size, 9=activation_type, 10=activation_params. An array
parameter is written `-233XX=n,v1,...,vn` for id XX. Weights are read as ncnn's ModelBin does:
a `type 0` blob starts with a 4-byte tag (0 = float32, 0x01306B47 = float16, anything else is
refused here), a `type 1` blob (biases) is raw float32.

`convert(param_text, bin_bytes)` returns the nodes, initializers and the input/output blob
names; callers wrap them (the build script adds the uint8 NHWC interface the models serve).
`run_ncnn()` runs the original with the `ncnn` package, in float32, for the verification.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

FP16_TAG = 0x01306B47
ACTIVATIONS = {0: None, 1: "relu", 2: "leaky", 3: "clip", 4: "sigmoid"}


@dataclass
class Layer:
    kind: str
    name: str
    bottoms: list[str]
    tops: list[str]
    params: dict[int, object]

    def get(self, key: int, default=None):
        return self.params.get(key, default)


@dataclass
class Graph:
    nodes: list = field(default_factory=list)
    initializers: list = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    layer_types: dict[str, int] = field(default_factory=dict)


def parse_param(text: str) -> list[Layer]:
    lines = [line.split() for line in text.splitlines() if line.strip()]
    if lines[0] != ["7767517"]:
        raise ValueError(f"not an ncnn param file (magic {lines[0]})")
    layer_count = int(lines[1][0])
    layers = []
    for parts in lines[2 : 2 + layer_count]:
        kind, name, nb, nt = parts[0], parts[1], int(parts[2]), int(parts[3])
        bottoms = parts[4 : 4 + nb]
        tops = parts[4 + nb : 4 + nb + nt]
        params: dict[int, object] = {}
        for item in parts[4 + nb + nt :]:
            key_text, value = item.split("=", 1)
            key = int(key_text)
            if key <= -23300:
                values = value.split(",")
                params[-key - 23300] = [parse_number(v) for v in values[1 : 1 + int(values[0])]]
            else:
                params[key] = parse_number(value)
        layers.append(Layer(kind, name, bottoms, tops, params))
    if len(layers) != layer_count:
        raise ValueError(f"param file declares {layer_count} layers, has {len(layers)}")
    return layers


def parse_number(text: str) -> float | int:
    return float(text) if any(c in text for c in ".eE") else int(text)


class WeightReader:
    """Reads the .bin sequentially, as ncnn's ModelBinFromDataReader does."""

    def __init__(self, data: bytes):
        self.data = data
        self.offset = 0

    def load(self, count: int, kind: int) -> np.ndarray:
        if kind == 1:
            return self.take(count * 4, np.float32, count)
        (tag,) = struct.unpack_from("<I", self.data, self.offset)
        self.offset += 4
        if tag == FP16_TAG:
            values = self.take(count * 2, np.float16, count).astype(np.float32)
            self.offset += (-count * 2) % 4  # fp16 blobs are padded to 4 bytes
            return values
        if tag == 0:
            return self.take(count * 4, np.float32, count)
        raise ValueError(f"weight blob at byte {self.offset - 4}: tag {tag:#x} (quantized weights are not supported)")

    def take(self, nbytes: int, dtype, count: int) -> np.ndarray:
        if self.offset + nbytes > len(self.data):
            raise ValueError(f"weights end at byte {len(self.data)}, wanted {nbytes} more from {self.offset}")
        values = np.frombuffer(self.data, dtype, count, self.offset).copy()
        self.offset += nbytes
        return values

    def finish(self) -> None:
        if self.offset != len(self.data):
            raise ValueError(f"read {self.offset} of {len(self.data)} weight bytes: the graph and the .bin disagree")


def convert(param_text: str, bin_bytes: bytes) -> Graph:
    from onnx import helper, numpy_helper

    weights = WeightReader(bin_bytes)
    graph = Graph()
    channels: dict[str, int] = {}

    def const(name: str, array: np.ndarray) -> str:
        graph.initializers.append(numpy_helper.from_array(array, name))
        return name

    def node(op: str, inputs: list[str], outputs: list[str], **attrs) -> None:
        graph.nodes.append(helper.make_node(op, inputs, outputs, name=f"{outputs[0]}/{op}", **attrs))

    def activation(layer: Layer, raw: str, out: str) -> None:
        if int(layer.get(9, 0)) not in ACTIVATIONS:
            raise ValueError(f"{layer.name}: activation_type {layer.get(9)} is not supported")
        kind = ACTIVATIONS[int(layer.get(9, 0))]
        args = layer.get(10, [])
        if kind is None:
            node("Identity", [raw], [out])
        elif kind == "relu" and (not args or args[0] == 0):
            node("Relu", [raw], [out])
        elif kind == "relu":  # ncnn's ReLU with a slope is a leaky one
            node("LeakyRelu", [raw], [out], alpha=float(args[0]))
        elif kind == "leaky":
            node("LeakyRelu", [raw], [out], alpha=float(args[0]))
        elif kind == "clip":
            node("Clip", [raw, const(f"{out}/lo", np.array(args[0], np.float32)), const(f"{out}/hi", np.array(args[1], np.float32))], [out])
        else:
            node("Sigmoid", [raw], [out])

    for layer in parse_param(param_text):
        graph.layer_types[layer.kind] = graph.layer_types.get(layer.kind, 0) + 1
        b, t = layer.bottoms, layer.tops
        if layer.kind == "Input":
            graph.inputs.append(t[0])
            channels[t[0]] = int(layer.get(2, 3)) if 2 in layer.params else 3
        elif layer.kind in ("Convolution", "Deconvolution"):
            out_ch = int(layer.get(0))
            kw = int(layer.get(1))
            kh = int(layer.get(11, kw))
            dw = int(layer.get(2, 1))
            dh = int(layer.get(12, dw))
            sw = int(layer.get(3, 1))
            sh = int(layer.get(13, sw))
            pl = int(layer.get(4, 0))
            pt = int(layer.get(14, pl))
            pr = int(layer.get(15, pl))
            pb = int(layer.get(16, pt))
            if min(pl, pt, pr, pb) < 0:
                raise ValueError(f"{layer.name}: 'same' padding ({pl}) is not supported")
            if int(layer.get(7, 1)) != 1 or int(layer.get(8, 0)) != 0:
                raise ValueError(f"{layer.name}: grouped or int8 convolution is not supported")
            size = int(layer.get(6))
            in_ch = size // (out_ch * kh * kw)
            if in_ch * out_ch * kh * kw != size:
                raise ValueError(f"{layer.name}: weight_data_size {size} is not out*in*{kh}*{kw}")
            w = weights.load(size, 0).reshape(out_ch, in_ch, kh, kw)
            bias = weights.load(out_ch, 1) if int(layer.get(5, 0)) else np.zeros(out_ch, np.float32)
            raw = f"{t[0]}/linear"
            if layer.kind == "Convolution":
                node(
                    "Conv",
                    [b[0], const(f"{layer.name}/W", w), const(f"{layer.name}/B", bias)],
                    [raw],
                    kernel_shape=[kh, kw],
                    strides=[sh, sw],
                    dilations=[dh, dw],
                    pads=[pt, pl, pb, pr],
                )
            else:
                if layer.get(18, 0) or layer.get(19, 0) or layer.get(20, 0) or layer.get(21, 0):
                    raise ValueError(f"{layer.name}: output_pad / output size is not supported")
                # ncnn keeps deconvolution weights [out][in][kh][kw]; ONNX wants [in][out][kh][kw].
                node(
                    "ConvTranspose",
                    [b[0], const(f"{layer.name}/W", np.ascontiguousarray(w.transpose(1, 0, 2, 3))), const(f"{layer.name}/B", bias)],
                    [raw],
                    kernel_shape=[kh, kw],
                    strides=[sh, sw],
                    dilations=[dh, dw],
                    pads=[pt, pl, pb, pr],
                )
            activation(layer, raw, t[0])
            channels[t[0]] = out_ch
        elif layer.kind == "ReLU":
            slope = float(layer.get(0, 0.0))
            if slope == 0:
                node("Relu", b, t)
            else:
                node("LeakyRelu", b, t, alpha=slope)
        elif layer.kind == "Split":
            for top in t:
                node("Identity", b, [top])
        elif layer.kind == "Concat":
            if int(layer.get(0, 0)) != 0:
                raise ValueError(f"{layer.name}: Concat on axis {layer.get(0)} is not supported")
            node("Concat", b, t, axis=1)
        elif layer.kind == "Eltwise":
            op = int(layer.get(0, 1))
            coeffs = layer.get(1, [])
            if op == 1:
                terms = []
                for i, blob in enumerate(b):
                    c = float(coeffs[i]) if coeffs else 1.0
                    if c == 1.0:
                        terms.append(blob)
                    else:
                        node("Mul", [blob, const(f"{t[0]}/coeff{i}", np.array(c, np.float32))], [f"{t[0]}/term{i}"])
                        terms.append(f"{t[0]}/term{i}")
                node("Sum", terms, t)
            elif op in (0, 2) and not coeffs:
                node("Mul" if op == 0 else "Max", b, t)
            else:
                raise ValueError(f"{layer.name}: Eltwise op {op} with coefficients {coeffs} is not supported")
        elif layer.kind == "BinaryOp":
            ops = {0: "Add", 1: "Sub", 2: "Mul", 3: "Div", 4: "Max", 5: "Min"}
            op = int(layer.get(0, 0))
            if op not in ops:
                raise ValueError(f"{layer.name}: BinaryOp {op} is not supported")
            if int(layer.get(1, 0)):
                node(ops[op], [b[0], const(f"{t[0]}/scalar", np.array(float(layer.get(2, 0.0)), np.float32))], t)
            else:
                node(ops[op], b, t)
        elif layer.kind == "Interp":
            mode = {1: "nearest", 2: "linear"}.get(int(layer.get(0, 0)))
            if mode is None or layer.get(3, 0) or layer.get(4, 0) or layer.get(6, 0):
                raise ValueError(f"{layer.name}: only nearest/bilinear Interp by scale is supported")
            scales = np.array([1, 1, float(layer.get(1, 1.0)), float(layer.get(2, 1.0))], np.float32)
            attrs = {"mode": mode}
            if mode == "nearest":
                attrs.update(coordinate_transformation_mode="asymmetric", nearest_mode="floor")
            else:
                attrs.update(coordinate_transformation_mode="half_pixel")
            node("Resize", [b[0], "", const(f"{t[0]}/scales", scales)], t, **attrs)
        elif layer.kind == "PixelShuffle":
            if int(layer.get(1, 0)) != 0:
                raise ValueError(f"{layer.name}: PixelShuffle mode {layer.get(1)} is not supported")
            # ncnn mode 0 takes channel p*r*r + sh*r + sw, as torch.pixel_shuffle: ONNX's CRD.
            node("DepthToSpace", b, t, blocksize=int(layer.get(0)), mode="CRD")
        else:
            raise ValueError(f"{layer.name}: ncnn layer type {layer.kind} is not supported")
    weights.finish()
    # The graph's output is the one blob nobody reads.
    read = {blob for n in graph.nodes for blob in n.input}
    written = [blob for n in graph.nodes for blob in n.output]
    graph.outputs = [blob for blob in written if blob not in read]
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise ValueError(f"expected one input and one output, got {graph.inputs} -> {graph.outputs}")
    return graph


def run_ncnn(param_path: str, bin_path: str, input_name: str, output_name: str, chw: np.ndarray) -> np.ndarray:
    """The original network on the `ncnn` package's CPU path, float32 throughout."""
    import ncnn

    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.use_fp16_packed = False
    net.opt.use_fp16_storage = False
    net.opt.use_fp16_arithmetic = False
    net.opt.use_bf16_storage = False
    net.opt.num_threads = 2
    if net.load_param(param_path) != 0 or net.load_model(bin_path) != 0:
        raise RuntimeError(f"ncnn could not load {param_path}")
    extractor = net.create_extractor()
    # The array and the Mat that wraps it stay named until the extraction is done: with a
    # temporary Mat, Real-ESRGAN's output on small inputs was different garbage on each run.
    data = np.ascontiguousarray(chw, np.float32)
    mat = ncnn.Mat(data)
    extractor.input(input_name, mat)
    status, out = extractor.extract(output_name)
    if status != 0:
        raise RuntimeError(f"ncnn extract {output_name} failed: {status}")
    result = np.array(out).copy()
    # The output Mat and the extractor hold the net's allocators: release them first.
    del out, extractor, mat
    net.clear()
    return result
