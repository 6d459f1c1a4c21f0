"""Optional int8 LSTM gates with fixed input scales (`firstspike export --quantize lstm`, and half of `all`).

The gates' input [features | h] is mapped to integers with one fixed scale and offset per column,
so a row's arithmetic never depends on the other rows of its batch: batching still never changes a
result. (The dynamic quantisation this replaced scaled each call's activations by their range, so a
stream's probabilities moved with its neighbours; docs/benchmarks.md, export section.)
- h = o · tanh(c) lies in [-1, 1]; the frontend's features get the range they reach on calibration
  audio made here: digital silence and full scale (noise, tones, a sweep, a square wave, onsets)
  bound what any recording can do, and anything outside saturates.
- Activations get 127 levels and weights 127 levels a side. With 255-level activations and 63-level
  weights instead, accuracy fell by 0.8 points; 255 and 127 gained nothing over 127 and 127, and
  could overflow the int16 pair sums of u8·s8 kernels on CPUs without VNNI.
- The input scales are folded into the weights (one int8 scale per output column, which also keeps
  the doubled cell-input rows of step_graph.FusedStep from coarsening the other gates) and the
  offsets into the bias, so a layer is Mul, Add, QuantizeLinear and onnxruntime's
  `MatMulIntegerToFloat` (a com.microsoft operator: the graph needs onnxruntime).
The audio frontend has its own exact integer path (`integer_frontend.py`), and the small head stays
float32. The contract metadata is kept, with "+int8" appended to `firstspike.graph`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from firstspike.contract import INPUT_AUDIO, INPUT_STATE, OUTPUT_STATE

INPUT_LEVELS = 127  # 7-bit activations (as uint8): with 8-bit weights a pair of products stays inside int16
WEIGHT_LEVELS = 127  # int8 weights, one scale per output column
GATES_PREFIX = "gates_weight_"
CALIBRATION_SECONDS = 2.0
# Calibrated columns get this share of their range on top: a full-scale square wave at a band's own
# frequency (fundamental 4/π) can pass what the calibration signals reached. Past it, levels saturate.
HEADROOM = 0.05
# Calibrated ends then snap outward to this grid. onnxruntime's float kernels can differ in the last bit
# between CPUs, and unsnapped ranges carried that into the bias: an export on an AVX-512 Xeon differed
# from the shipped one (made on a Zen 4) in 202 of its 512 floats. Snapped, and with the bias summed
# exactly, the export is the same file on any CPU unless a range ends within an ulp of a grid point.
RANGE_GRID = 1 / 64


def calibration_audio(sample_rate: int) -> np.ndarray:
    """[streams, samples] float32 in [-1, 1]: the extremes a recording can reach, and transitions between them."""
    n = int(CALIBRATION_SECONDS * sample_rate)
    t = np.arange(n) / sample_rate
    rng = np.random.default_rng(0)
    half = np.arange(n) >= n // 2
    nyquist = sample_rate / 2
    chirp = np.sin(2 * np.pi * (50 * t + (nyquist - 50) / (2 * CALIBRATION_SECONDS) * t ** 2))
    streams = [
        np.zeros(n),                                          # digital silence: every band at its floor
        rng.uniform(-1, 1, n),                                # full-scale white noise
        chirp,                                                # full-scale sweep, 50 Hz to Nyquist
        np.sign(np.sin(2 * np.pi * 150 * t)),                 # full-scale square wave: every harmonic
        np.sin(2 * np.pi * 1000 * t),                         # one loud tone
        np.where(half, rng.uniform(-1, 1, n), 0.0),           # silence, then a full-scale onset
        np.where(half, 0.0, rng.uniform(-1, 1, n)),           # full scale, then silence
        1e-3 * rng.standard_normal(n),                        # a quiet room
        np.clip(8 * rng.standard_normal(n), -1, 1),           # clipped, loud
    ]
    return np.stack(streams).astype(np.float32)


def _gates_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """The fused step's gates Gemms (one per layer), checked to be a plain x·W + b."""
    nodes = [n for n in model.graph.node if n.op_type == "Gemm" and n.input[1].startswith(GATES_PREFIX)]
    for node in nodes:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if attrs.get("transA", 0) or attrs.get("transB", 0) or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
            raise ValueError(f"gates Gemm {node.name} has attributes {attrs}; the int8 rewrite expects a plain x·W + b")
    return nodes


def _metadata(model: onnx.ModelProto) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}


def input_ranges(model: onnx.ModelProto, nodes: list[onnx.NodeProto]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per gates node, (low, high) for every input column: [-1, 1] for h, calibrated for features."""
    import onnxruntime as ort  # the exporter's own check runs it anyway; the server never imports this module

    meta = _metadata(model)
    hidden = int(meta["firstspike.hidden"])
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for node in nodes:
        probe.graph.output.append(helper.make_tensor_value_info(node.input[0], TensorProto.FLOAT, None))
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    audio = calibration_audio(int(meta["sample_rate"]))
    step = int(meta["hop_samples"]) * int(meta.get("hops_per_call", "1"))
    state = np.zeros((len(audio), int(meta["state_size"])), np.float32)
    low = [None] * len(nodes)
    high = [None] * len(nodes)
    names = [OUTPUT_STATE] + [node.input[0] for node in nodes]
    for start in range(0, audio.shape[1] - step + 1, step):
        state, *inputs = session.run(names, {INPUT_AUDIO: audio[:, start:start + step], INPUT_STATE: state})
        for k, x in enumerate(inputs):
            low[k] = x.min(0) if low[k] is None else np.minimum(low[k], x.min(0))
            high[k] = x.max(0) if high[k] is None else np.maximum(high[k], x.max(0))
    ranges = []
    for node, lo, hi in zip(nodes, low, high):
        layer = int(node.input[1][len(GATES_PREFIX):])
        bounded = slice(0 if layer > 0 else len(lo) - hidden, len(lo))  # h of this layer (and the one below)
        lo, hi = lo.astype(np.float64), hi.astype(np.float64)
        hi += HEADROOM * (hi - lo)
        lo, hi = np.floor(lo / RANGE_GRID) * RANGE_GRID, np.ceil(hi / RANGE_GRID) * RANGE_GRID
        lo[bounded], hi[bounded] = -1.0, 1.0
        flat = hi - lo < 1e-6
        lo[flat], hi[flat] = lo[flat] - 0.5, hi[flat] + 0.5
        ranges.append((lo, hi))
    return ranges


def _exact_dot(v: np.ndarray, m: np.ndarray) -> np.ndarray:
    """v @ m, each column summed exactly (math.fsum): a BLAS sum's order, and so its last bit, varies by CPU."""
    return np.array([math.fsum(column) for column in (v[:, None] * m).T])


def quantize_gates_static(model: onnx.ModelProto, input_levels: int = INPUT_LEVELS,
                          weight_levels: int = WEIGHT_LEVELS) -> onnx.ModelProto:
    """`model` with every gates Gemm replaced by its int8 form (modified in place and returned).

    With u = round((x - low) / s) the input's level per column, x·W + b ≈ u·(s W) + (b + low·W):
    s W is rounded to int8 per output column, and the integer product is exact whatever the batch.
    """
    nodes = _gates_nodes(model)
    if not nodes:
        raise ValueError("no LSTM gates (Gemm on gates_weight_*) in this graph")
    ranges = input_ranges(model, nodes)
    init = {i.name: i for i in model.graph.initializer}
    graph = model.graph
    replaced, added, used = {}, [], set()
    for node, (lo, hi) in zip(nodes, ranges):
        w = numpy_helper.to_array(init[node.input[1]]).astype(np.float64)
        b = numpy_helper.to_array(init[node.input[2]]).astype(np.float64) if len(node.input) > 2 and node.input[2] else 0.0
        s = (hi - lo) / input_levels
        wp = s[:, None] * w
        c = np.abs(wp).max(0) / weight_levels
        c[c == 0] = 1.0
        wq = np.round(wp / c).astype(np.int8)
        bias = b + _exact_dot(lo, w)
        p = f"{node.name}/int8/"
        added += [
            numpy_helper.from_array((1.0 / s).astype(np.float32), p + "inv_scale"),
            numpy_helper.from_array((-lo / s).astype(np.float32), p + "offset"),
            numpy_helper.from_array(np.array(1.0, np.float32), p + "one"),
            numpy_helper.from_array(np.array(0, np.uint8), p + "zero"),
            numpy_helper.from_array(wq, p + "weight"),
            numpy_helper.from_array(c.astype(np.float32), p + "weight_scale"),
            numpy_helper.from_array(bias.astype(np.float32), p + "bias"),
        ]
        replaced[node.name] = [
            helper.make_node("Mul", [node.input[0], p + "inv_scale"], [p + "scaled"], name=p + "Mul"),
            helper.make_node("Add", [p + "scaled", p + "offset"], [p + "levels"], name=p + "Add"),
            helper.make_node("QuantizeLinear", [p + "levels", p + "one", p + "zero"], [p + "u8"], name=p + "Quantize"),
            helper.make_node("MatMulIntegerToFloat", [p + "u8", p + "weight", p + "one", p + "weight_scale", "", "", p + "bias"],
                             list(node.output), name=p + "MatMul", domain="com.microsoft"),
        ]
        used.update(node.input[1:])
    new_nodes = []
    for node in graph.node:
        new_nodes += replaced.get(node.name, [node])
    del graph.node[:]
    graph.node.extend(new_nodes)
    still = {name for node in graph.node for name in node.input}
    kept = [i for i in graph.initializer if i.name not in used or i.name in still]
    del graph.initializer[:]
    graph.initializer.extend(kept + added)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return model


def quantize_lstm_int8(source: str | os.PathLike, output: str | os.PathLike) -> Path:
    """Rewrite the LSTM gates of step model `source` as int8 (see the module docstring); one self-contained file."""
    source, output = Path(source), Path(output)
    model = quantize_gates_static(onnx.load(source))
    props = {prop.key: prop for prop in model.metadata_props}
    if "firstspike.graph" in props:
        graph = props["firstspike.graph"]
        if "exporter_version" in props:  # "… graph fused)" names the graph too
            props["exporter_version"].value = props["exporter_version"].value.replace(
                f"graph {graph.value})", f"graph {graph.value}+int8)")
        graph.value += "+int8"
    onnx.checker.check_model(model)
    output.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, output, save_as_external_data=False)
    return output
