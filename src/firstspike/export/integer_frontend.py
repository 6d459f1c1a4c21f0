"""Optional integer audio frontend: exact 16-bit audio times an int8 windowed-DFT basis.

Why: at batch 64 the even/odd DFT's two float MatMuls were about a quarter of a step, and a VNNI
CPU's int8 dot-product instructions do four multiply-adds where float32 does one. Dynamic
quantisation of the frontend (what `quantize.py` avoids) rounds every audio sample to 8 bits and
buries the quiet bands. Here the audio stays exact: each 16-bit sample q = 32768 x is split into a
high and a low byte, q = 256 (hi - 128) + lo with hi - 128 = floor(q / 256), and two `MatMulInteger`s
share one 8-bit basis (Hann window folded in, one scale per column). Rounding to the nearest instead
of down would need 257 high values for the 65,536 samples and break at full scale. Only the basis is
rounded, so the error is a floor 54-58 dB under each frame's loudest bin (pure tones from 100 Hz to
7.9 kHz); on the bundled model it moved the test split's accuracy by less than a tenth of a point
(docs/benchmarks.md, export section).

The basis is stored as uint8 with zero point 128 (127 levels a side). CPUs without VNNI (AVX2 only)
add uint8 · int8 products in pairs into int16 with saturation, and an audio byte of up to 255 times a
weight of up to 127 overflows it (the bundled model lost 2 points that way); uint8 · uint8 is widened
to 16 bits first, so every CPU computes the same exact integers.

Everything before the mel `Gemm` is integer arithmetic row by row, so a stream's features do not
depend on the other streams in its batch: unlike dynamic quantisation, batching still never changes a
decision. The basis covers the whole window (the even/odd split needs the window applied to the audio
first, which would round it again), and is applied to both bytes: four times the multiply-adds of
the float path, at about a quarter of the cost each.

It is a rewrite of the exported graph: the float frontend's nodes between the frame and the power
spectrum are replaced, and the mel filter rows absorb the scales.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from firstspike.model.frontend import windowed_dft_basis

HANN = "dft.hann"
MEL = "dft.mel_basis"
BASIS = "dft.int8_basis"  # the "dft." prefix keeps it out of the LSTM quantiser (quantize.py)
PCM_SCALE = 32768.0          # q = 32768 x, an integer for 16-bit audio
HIGH_SCALE = 256 / PCM_SCALE  # hi byte: q / 256, offset 128
LOW_SCALE = 1 / PCM_SCALE     # lo byte: what is left, in 16-bit steps
FLOOR_SHIFT = -127.5 / PCM_SCALE  # round((q - 127.5) / 256) = floor(q / 256) for integer q, with no ties
LARGEST_SAMPLE = 32768        # |256 (hi - 128) + lo| at most


def integer_basis(step) -> tuple[np.ndarray, np.ndarray]:
    """(int8 basis [window, columns], float scale per column): one column per row of `step.dft.mel_basis`.
    The graph stores it shifted to uint8 (zero point 128; see the module docstring)."""
    dft = step.dft
    window = dft.hann.shape[0]
    full = windowed_dft_basis(window)  # [window, 2 * bins]: cos | -sin, Hann folded in
    bins = window // 2 + 1
    columns = [k if part == "cos" else bins + k for k, part in dft.columns]
    basis = full[:, columns]
    scale = np.abs(basis).max(axis=0) / 127.0
    scale[scale == 0] = 1.0  # an all-zero column stays zero
    quantised = np.round(basis / scale).astype(np.int8)
    largest = LARGEST_SAMPLE * int(np.abs(quantised.astype(np.int64)).sum(axis=0).max())
    if largest >= 2 ** 31:
        raise ValueError(f"a {window}-sample window is too long for the integer frontend: its spectrum could "
                         f"reach {largest:,}, past int32")
    return quantised, scale


def _frontend_spans(graph: onnx.GraphProto) -> list[tuple[str, str]]:
    """(frame, power) tensor names for each hop's frontend: the audio frame before the Hann window
    and the power spectrum that the mel Gemm reads."""
    producer = {out: node for node in graph.node for out in node.output}
    spans = []
    for gemm in (n for n in graph.node if n.op_type == "Gemm" and MEL in n.input):
        power, frontier, seen = gemm.input[0], [gemm.input[0]], set()
        frame = None
        while frontier:
            node = producer.get(frontier.pop())
            if node is None or id(node) in seen:
                continue
            seen.add(id(node))
            if HANN in node.input:
                frame = next(name for name in node.input if name != HANN)
                continue
            frontier.extend(node.input)
        if frame is None:
            raise ValueError("the graph has a mel Gemm but no Hann-window Mul before it; "
                             "the integer frontend needs a graph written by `firstspike export --graph fused`")
        spans.append((frame, power))
    if not spans:
        raise ValueError("no frontend found: the integer frontend needs a graph written by `firstspike export --graph fused`")
    return spans


def _between(graph: onnx.GraphProto, frame: str, power: str) -> set[int]:
    """Indices of the nodes that lie on a path from `frame` to `power`."""
    consumers: dict[str, list[int]] = {}
    for index, node in enumerate(graph.node):
        for name in node.input:
            consumers.setdefault(name, []).append(index)
    downstream, frontier = set(), [frame]
    while frontier:
        for index in consumers.get(frontier.pop(), []):
            if index not in downstream:
                downstream.add(index)
                frontier.extend(graph.node[index].output)
    producer = {out: index for index, node in enumerate(graph.node) for out in node.output}
    upstream, frontier = set(), [power]
    while frontier:
        index = producer.get(frontier.pop())
        if index is not None and index not in upstream and index in downstream:
            upstream.add(index)
            frontier.extend(graph.node[index].input)
    return upstream


def _integer_nodes(prefix: str, frame: str, power: str) -> list[onnx.NodeProto]:
    """frame [B, window] float → power [B, rows] in integer units squared (the mel rows hold the scale)."""
    def node(op, inputs, output, **attrs):
        return helper.make_node(op, inputs, [output], name=prefix + output.rsplit(".", 1)[-1], **attrs)

    p = prefix
    return [
        node("Add", [frame, "dft.floor_shift"], p + "shifted"),
        node("QuantizeLinear", [p + "shifted", "dft.high_scale", "dft.offset"], p + "high"),
        node("DequantizeLinear", [p + "high", "dft.high_scale", "dft.offset"], p + "coarse"),
        node("Sub", [frame, p + "coarse"], p + "residual"),
        node("QuantizeLinear", [p + "residual", "dft.low_scale", "dft.no_offset"], p + "low"),
        node("MatMulInteger", [p + "high", BASIS, "dft.offset", "dft.offset"], p + "spectrum_high"),
        node("MatMulInteger", [p + "low", BASIS, "dft.no_offset", "dft.offset"], p + "spectrum_low"),
        node("Mul", [p + "spectrum_high", "dft.radix"], p + "spectrum_high_shifted"),
        node("Add", [p + "spectrum_high_shifted", p + "spectrum_low"], p + "spectrum_int"),
        node("Cast", [p + "spectrum_int"], p + "spectrum", to=TensorProto.FLOAT),
        helper.make_node("Mul", [p + "spectrum", p + "spectrum"], [power], name=p + "power"),
    ]


def integerise_frontend(proto: onnx.ModelProto, step) -> onnx.ModelProto:
    """Rewrite, in place, every hop's float frontend of `proto` (exported from `step`, a FusedStep) into
    the integer one, and return it."""
    graph = proto.graph
    spans = _frontend_spans(graph)
    basis, scale = integer_basis(step)
    removed: set[int] = set()
    replacements: dict[int, list[onnx.NodeProto]] = {}
    for hop, (frame, power) in enumerate(spans):
        span = _between(graph, frame, power)
        if not span:
            raise ValueError(f"found no nodes between {frame} and {power}")
        removed |= span
        replacements[min(span)] = _integer_nodes(f"dft.integer.{hop}.", frame, power)
    nodes = []
    for index, node in enumerate(graph.node):
        nodes += replacements.get(index, [])
        if index not in removed:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)

    mel = step.dft.mel_basis.double().numpy() * ((scale / PCM_SCALE) ** 2)[:, None]
    new = {
        BASIS: (basis.astype(np.int16) + 128).astype(np.uint8),
        MEL: mel.astype(np.float32),
        "dft.floor_shift": np.array(FLOOR_SHIFT, np.float32),
        "dft.high_scale": np.array(HIGH_SCALE, np.float32),
        "dft.low_scale": np.array(LOW_SCALE, np.float32),
        "dft.offset": np.array(128, np.uint8),
        "dft.no_offset": np.array(0, np.uint8),
        "dft.radix": np.array(256, np.int32),
    }
    _prune_dead_nodes(graph)
    used = {name for node in graph.node for name in node.input}
    kept = [init for init in graph.initializer if init.name in used and init.name not in new]
    del graph.initializer[:]
    graph.initializer.extend(kept + [numpy_helper.from_array(value, name) for name, value in new.items()])
    return proto


def _prune_dead_nodes(graph: onnx.GraphProto) -> None:
    """Drop nodes (e.g. the Split sizes of the removed butterfly) whose outputs nothing reads."""
    outputs = {out.name for out in graph.output}
    while True:
        read = {name for node in graph.node for name in node.input} | outputs
        dead = [i for i, node in enumerate(graph.node) if not any(out in read for out in node.output)]
        if not dead:
            return
        for index in reversed(dead):
            del graph.node[index]
