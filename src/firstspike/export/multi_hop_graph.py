"""The "multi-hop" step graph: one call takes any whole number of hops and returns every hop's probabilities.

The other graphs advance a stream by a fixed number of hops per call. This one reads the number of
hops from the length of `audio` ([B, n · hop_samples], any n ≥ 1), so one graph serves both a
runtime that calls it every 10 ms (n = 1, the one-hop contract) and one that hands it 100 ms of
microphone audio at a time (n = 10). It adds a third output, `frame_probs` [B, n, K], so the first
spike is found at the exact hop, as if the hops had been fed one by one.

Why it is cheaper per hop when n > 1: the frontend (frames, windowed DFT, mel, log) has no
recurrence, so all n frames of every stream go through each matrix product at once, and the LSTM
is ONNX's `LSTM` operator, which multiplies the inputs of all n steps in one product and then runs
only the recurrence step by step, inside onnxruntime, with no per-hop operator overhead.

The graph is written node by node with `onnx.helper` rather than traced, so that little shape
arithmetic ends up in it: every Slice and Reshape has constant arguments (negative ends count from
the end of the signal, a 0 in a Reshape keeps the batch dimension), except the last Reshape of the
two-stage DFT, which reads [B, n] from one `Shape` of the frames.

    signal = [overlap, audio]                          [B, overlap + n·hop]
    frames = the n windows of signal, hop apart        [B, n, window]
    x      = log(mel · |DFT(hann · frames)|² + floor)  [B, n, mels]   (two-stage DFT, as `FusedStep`)
             (with --pcen: PCEN of the mel energy, all n frames in one product; with --keep-logmel both)
    y      = LSTM(x), layer by layer                   [n, B, H]      (normalisation folded into W)
    frame_probs = softmax(head(y))                     [B, n, K]
    probs  = frame_probs[:, -1]; state_out = [signal's last `overlap` samples, (PCEN's m, q,) h, c of every layer]
"""

from __future__ import annotations

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from firstspike.contract import INPUT_AUDIO, INPUT_STATE, OUTPUT_FRAME_PROBS, OUTPUT_PROBS, OUTPUT_STATE
from firstspike.export.factored_dft import FactoredDft
from firstspike.export.step_graph import EvenOddDft, frontend_dft, pcen_offsets, state_layout
from firstspike.model.classifier import KeywordSpotter
from firstspike.model.pcen import Pcen

_INT64_MAX = np.iinfo(np.int64).max


class _Builder:
    """Collects nodes and initialisers; every helper returns the name of the tensor it made."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def constant(self, name: str, value) -> str:
        array = np.asarray(value)
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, inputs: list[str], outputs: int | list[str] = 1, **attrs) -> str | list[str]:
        self._count += 1
        names = outputs if isinstance(outputs, list) else [f"{op_type.lower()}_{self._count}_{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, names, name=f"{op_type}_{self._count}", **attrs))
        return names[0] if len(names) == 1 else names

    def slice(self, x: str, start: int, end: int, axis: int, step: int = 1) -> str:
        n = self._count + 1
        return self.op("Slice", [x, self.constant(f"slice_{n}_start", [start]), self.constant(f"slice_{n}_end", [end]),
                                 self.constant(f"slice_{n}_axis", [axis]), self.constant(f"slice_{n}_step", [step])])

    def reshape(self, x: str, shape: list[int]) -> str:
        return self.op("Reshape", [x, self.constant(f"shape_{self._count + 1}", np.asarray(shape, np.int64))])


def _frames(b: _Builder, signal: str, window: int, hop: int) -> str:
    """[B, overlap + n·hop] → [B, n, window]: each window cut from whole-hop rows of shifted copies.

    Row t of the copy that starts j hops in is signal[t·hop + j·hop : (t + 1)·hop + j·hop], so the
    first `window // hop` copies give whole hops of every frame; a partial last hop is the tail of
    the copy that starts at the overlap (its rows end where frame t ends).
    """
    overlap = window - hop
    whole, rest = divmod(window, hop)
    pieces = []
    for j in range(whole):
        end = j * hop - overlap  # the copy holds n·hop samples: it ends `overlap - j·hop` before the signal
        pieces.append(b.reshape(b.slice(signal, j * hop, end if end < 0 else _INT64_MAX, axis=1), [0, -1, hop]))
    if rest:
        tail_rows = b.reshape(b.slice(signal, overlap, _INT64_MAX, axis=1), [0, -1, hop])
        pieces.append(b.slice(tail_rows, hop - rest, _INT64_MAX, axis=2))
    return pieces[0] if len(pieces) == 1 else b.op("Concat", pieces, axis=2)


def _mel_energy(b: _Builder, frames: str, dft: EvenOddDft | FactoredDft) -> str:
    """[B, n, window] → mel energy + floor [B, n, mels], the same arithmetic as `FusedStep._features`."""
    if isinstance(dft, FactoredDft):
        return _two_stage_mel_energy(b, frames, dft)
    windowed = b.op("Mul", [frames, b.constant("hann", dft.hann.numpy())])
    if dft.halves:
        first, second = b.op("Split", [windowed], outputs=2, axis=2)
        even = b.op("MatMul", [b.op("Add", [first, second]), b.constant("even_basis", dft.even_basis.numpy())])
        odd = b.op("MatMul", [b.op("Sub", [first, second]), b.constant("odd_basis", dft.odd_basis.numpy())])
        spectrum = b.op("Concat", [even, odd], axis=2)
    else:
        spectrum = b.op("MatMul", [windowed, b.constant("basis", dft.basis.numpy())])
    power = b.op("Mul", [spectrum, spectrum])
    mel = b.op("MatMul", [power, b.constant("mel_basis", dft.mel_basis.numpy())])
    return b.op("Add", [mel, b.constant("log_floor", dft.log_floor.numpy())])


def _two_stage_mel_energy(b: _Builder, frames: str, dft: FactoredDft) -> str:
    """`FactoredDft.energy` over all n frames of every stream at once, with the B·n frames as the last
    axis; the frames' own shape (one `Shape`) puts the rows back as [B, n, mels]."""
    window = dft.hann.shape[0]
    columns = b.op("Transpose", [frames], perm=[2, 0, 1])  # [window, B, n]
    windowed = b.op("Mul", [columns, b.constant("hann", dft.hann.numpy().reshape(window, 1, 1))])
    partial = b.op("MatMul", [b.constant("first_basis", dft.first_basis.numpy()), b.reshape(windowed, [dft.p, -1])])
    spectrum = b.op("MatMul", [b.constant("second_basis", dft.second_basis.numpy()),
                               b.reshape(partial, [dft.groups, 2 * dft.q, -1])])  # [G, 2W, B·n]
    squares = b.reshape(b.op("Mul", [spectrum, spectrum]), [dft.groups, 2, -1])  # [G, cos | sin, W·B·n]
    power = b.reshape(b.op("ReduceSum", [squares, b.constant("cos_sin_axis", np.asarray([1], np.int64))], keepdims=0),
                      [dft.mel_basis.shape[0], -1])
    energy = b.op("Gemm", [power, b.constant("mel_basis", dft.mel_basis.numpy()),
                           b.constant("log_floor", dft.log_floor.numpy())], transA=1)  # [B·n, mels]
    rows = b.op("Shape", [frames], end=2)  # [B, n]
    n_mels = b.constant("mel_count", np.asarray([dft.mel_basis.shape[1]], np.int64))
    return b.op("Reshape", [energy, b.op("Concat", [rows, n_mels], axis=0)])


def _pcen(b: _Builder, energy: str, m_before: str, q_before: str, pcen: Pcen) -> tuple[str, str, str]:
    """PCEN over the call's n frames at once (model/pcen.py): (features without −δ^r, last m, last q).

    The running sums m_j = a^(j+1) m_before + Σ_{i ≤ j} a^(j−i) E_i are one product with the
    [n, n] matrix of decay powers, built from n at run time, as `Pcen.forward` does per chunk.
    """
    zero, one = b.constant("pcen_zero", np.float32(0.0)), b.constant("pcen_one", np.float32(1.0))
    decay = b.constant("pcen_decay", np.float32(pcen.decay))
    n = b.op("Cast", [b.op("Gather", [b.op("Shape", [energy]), b.constant("frames_axis", np.int64(1))])],
             to=TensorProto.FLOAT)
    steps = b.op("Range", [zero, n, one])  # [n]: 0, 1, …, n − 1
    lag = b.op("Sub", [b.op("Unsqueeze", [steps, b.constant("pcen_axis1", np.asarray([1], np.int64))]),
                       b.op("Unsqueeze", [steps, b.constant("pcen_axis0", np.asarray([0], np.int64))])])  # j − i
    powers = b.op("Pow", [decay, b.op("Max", [lag, zero])])
    within = b.op("Where", [b.op("GreaterOrEqual", [lag, zero]), powers, zero])  # [n, n], zero above the diagonal
    carried = b.reshape(b.op("Pow", [decay, b.op("Add", [steps, one])]), [1, -1, 1])  # a^(j+1) as [1, n, 1]
    m = b.op("Add", [b.op("MatMul", [within, energy]),
                     b.op("Mul", [carried, b.op("Unsqueeze", [m_before, b.constant("pcen_axis1b", np.asarray([1], np.int64))])])])
    q = b.op("Add", [b.reshape(b.op("ReduceSum", [within, b.constant("pcen_rows", np.asarray([1], np.int64))], keepdims=0),
                               [1, -1, 1]),
                     b.op("Mul", [carried, b.op("Unsqueeze", [q_before, b.constant("pcen_axis1c", np.asarray([1], np.int64))])])])
    mean = b.op("Div", [m, q])
    gain = b.op("Pow", [mean, b.constant("pcen_alpha", np.float32(pcen.alpha))])
    ratio = b.op("Add", [b.op("Div", [energy, gain]), b.constant("pcen_delta", np.float32(pcen.delta))])
    # − δ^r is in the first layer's bias, as in `FusedStep`; a root of 0.5 is one Sqrt
    compressed = (b.op("Sqrt", [ratio]) if pcen.root == 0.5
                  else b.op("Pow", [ratio, b.constant("pcen_root", np.float32(pcen.root))]))
    last = b.constant("pcen_last", np.asarray(-1, np.int64))
    return compressed, b.op("Gather", [m, last], axis=1), b.op("Gather", [q, last], axis=1)


def _onnx_gate_order(tensor: torch.Tensor, hidden: int) -> np.ndarray:
    """PyTorch stacks the gates (i, f, g, o); ONNX's LSTM wants (i, o, f, c)."""
    i, f, g, o = torch.split(tensor, hidden, dim=0)
    return torch.cat([i, o, f, g], dim=0).numpy()


def build_multi_hop_graph(model: KeywordSpotter) -> onnx.ModelProto:
    """The multi-hop step graph of `model` (see the module docstring), opset 17, weights inline."""
    frontend, lstm, head = model.frontend, model.classifier.lstm, model.classifier.head
    window, hop, hidden, layers = frontend.window, frontend.hop, lstm.hidden_size, lstm.num_layers
    sizes = [slot.size for slot in state_layout(model)]
    overlap = sizes[0]
    b = _Builder()
    with torch.no_grad():
        dft = frontend_dft(frontend)
        parts = b.op("Split", [INPUT_STATE, b.constant("state_sizes", np.asarray(sizes, np.int64))],
                     outputs=len(sizes), axis=1)
        signal = b.op("Concat", [parts[0], INPUT_AUDIO], axis=1)
        energy = _mel_energy(b, _frames(b, signal, window, hop), dft)
        carried = [b.slice(signal, -overlap, _INT64_MAX, axis=1)]
        if model.pcen is None:
            features = b.op("Log", [energy])
        else:
            features, m_last, q_last = _pcen(b, energy, parts[1], parts[2], model.pcen)
            if model.config.keep_logmel:
                features = b.op("Concat", [b.op("Log", [energy]), features], axis=2)
            carried += [m_last, q_last]
        lstm_parts = parts[1 if model.pcen is None else 3:]  # h, c of every layer
        x = b.op("Transpose", [features], perm=[1, 0, 2])  # [n, B, features]
        axis0 = b.constant("axis0", np.asarray([0], np.int64))
        axis1 = b.constant("axis1", np.asarray([1], np.int64))
        for layer in range(layers):
            w_ih = getattr(lstm, f"weight_ih_l{layer}")
            b_ih = getattr(lstm, f"bias_ih_l{layer}")
            if layer == 0:  # W (x - m) / s + b = (W / s) x + (b - W (m / s)); PCEN's - δ^r joins m, as in `FusedStep`
                b_ih = b_ih - w_ih @ ((model.feat_mean + pcen_offsets(model)) / model.feat_std)
                w_ih = w_ih / model.feat_std[None, :]
            weights = [b.constant(f"lstm{layer}_W", _onnx_gate_order(w_ih, hidden)[None]),
                       b.constant(f"lstm{layer}_R", _onnx_gate_order(getattr(lstm, f"weight_hh_l{layer}"), hidden)[None]),
                       b.constant(f"lstm{layer}_B", np.concatenate(
                           [_onnx_gate_order(b_ih, hidden), _onnx_gate_order(getattr(lstm, f"bias_hh_l{layer}"), hidden)])[None])]
            h0 = b.op("Unsqueeze", [lstm_parts[2 * layer], axis0])
            c0 = b.op("Unsqueeze", [lstm_parts[2 * layer + 1], axis0])
            y, h, c = b.op("LSTM", [x] + weights + ["", h0, c0], outputs=3, hidden_size=hidden)
            x = b.op("Squeeze", [y, axis1])  # [n, 1, B, H] → [n, B, H]
            carried += [b.op("Squeeze", [h, axis0]), b.op("Squeeze", [c, axis0])]
        logits = b.op("Add", [b.op("MatMul", [x, b.constant("head_weight", head.weight.t().contiguous().numpy())]),
                              b.constant("head_bias", head.bias.numpy())])
        scores = b.op("Softmax", [logits], axis=-1) if model.config.head == "softmax" else b.op("Sigmoid", [logits])
        b.op("Transpose", [scores], outputs=[OUTPUT_FRAME_PROBS], perm=[1, 0, 2])
        b.op("Gather", [OUTPUT_FRAME_PROBS, b.constant("last_hop", np.asarray(-1, np.int64))], outputs=[OUTPUT_PROBS], axis=1)
        b.op("Concat", carried, outputs=[OUTPUT_STATE], axis=1)

    n_labels, state_size = len(model.config.labels), sum(sizes)
    graph = helper.make_graph(
        b.nodes, "firstspike_multi_hop_step",
        [helper.make_tensor_value_info(INPUT_AUDIO, TensorProto.FLOAT, ["batch", "samples"]),
         helper.make_tensor_value_info(INPUT_STATE, TensorProto.FLOAT, ["batch", state_size])],
        [helper.make_tensor_value_info(OUTPUT_PROBS, TensorProto.FLOAT, ["batch", n_labels]),
         helper.make_tensor_value_info(OUTPUT_STATE, TensorProto.FLOAT, ["batch", state_size]),
         helper.make_tensor_value_info(OUTPUT_FRAME_PROBS, TensorProto.FLOAT, ["batch", "hops", n_labels])],
        b.initializers,
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    return proto
