"""Ways to turn the two-stage DFT's cos and sin parts into mel energy, timed as onnxruntime graphs.

Why: after the DFT, the `fused` graph squares every part and filters them; the mel filters read a
bin's cos² and sin² with the same weights, so summing the two first halves the filter product. This
times that choice against the others one could write, on the spectrum's real layout ([groups, cos of
each bin | sin of each bin, B], batch last) and the bundled model's sizes, and checks that every
variant gives the same energy:

- `squared parts`: Mul, Reshape [2·G·W, B], Gemm (transA) with each filter row repeated for both parts
  (the graph before 2026-12-06);
- `power, ReduceSum`: Mul, Reshape [G, 2, W·B], ReduceSum over the middle axis, Reshape, Gemm (the
  current graph);
- `power, ReduceSumSquare`: the same with one ReduceSumSquare in place of the Mul and ReduceSum;
- `power, Split + Add`: Split the parts, square each, Add;
- `power, MatMul + Transpose`: the current power, then [mels, G·W] × [G·W, B], Transpose, Add floor.

Each graph runs on one intra-op thread; the median of `--calls` calls, each timed alone, with the
variants taking turns in blocks of 50 (`step_latency.interleaved_medians`) so a change in the
machine's speed hits them all alike.

    .venv/bin/python bench/mel_power_layouts.py --batches 64 128 256
"""

from __future__ import annotations

import argparse

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

try:
    from step_latency import interleaved_medians  # run as a script: bench/ is on the path
except ImportError:
    from bench.step_latency import interleaved_medians  # imported from the repository root (tests)


def _const(name: str, value: np.ndarray) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value, name))


def _shape(name: str, *dims: int) -> onnx.NodeProto:
    return _const(name, np.array(dims, dtype=np.int64))


def build_graphs(groups: int, width: int, mel: np.ndarray, floor: np.ndarray) -> dict[str, onnx.ModelProto]:
    """Each variant as a model mapping spectrum [G, 2W, B] to energy [B, mels]."""
    rows = groups * width
    mel_twice = np.concatenate([mel.reshape(groups, width, -1)] * 2, axis=1).reshape(2 * rows, -1)
    common = [_const("mel", mel), _const("mel_twice", mel_twice), _const("floor", floor),
              _shape("grouped", groups, 2, -1), _shape("rows", rows, -1), _shape("rows_twice", 2 * rows, -1),
              _const("axis", np.array([1], dtype=np.int64))]
    power = [helper.make_node("Mul", ["spectrum", "spectrum"], ["squared"]),
             helper.make_node("Reshape", ["squared", "grouped"], ["pairs"]),
             helper.make_node("ReduceSum", ["pairs", "axis"], ["power_grouped"], keepdims=0),
             helper.make_node("Reshape", ["power_grouped", "rows"], ["power"])]
    gemm = helper.make_node("Gemm", ["power", "mel", "floor"], ["energy"], transA=1)
    variants = {
        "squared parts": [helper.make_node("Mul", ["spectrum", "spectrum"], ["squared"]),
                          helper.make_node("Reshape", ["squared", "rows_twice"], ["parts"]),
                          helper.make_node("Gemm", ["parts", "mel_twice", "floor"], ["energy"], transA=1)],
        "power, ReduceSum": [*power, gemm],
        "power, ReduceSumSquare": [helper.make_node("Reshape", ["spectrum", "grouped"], ["pairs"]),
                                   helper.make_node("ReduceSumSquare", ["pairs", "axis"], ["power_grouped"],
                                                    keepdims=0),
                                   helper.make_node("Reshape", ["power_grouped", "rows"], ["power"]), gemm],
        "power, Split + Add": [helper.make_node("Split", ["spectrum"], ["cos", "sin"], axis=1, num_outputs=2),
                               helper.make_node("Mul", ["cos", "cos"], ["cos2"]),
                               helper.make_node("Mul", ["sin", "sin"], ["sin2"]),
                               helper.make_node("Add", ["cos2", "sin2"], ["power_grouped"]),
                               helper.make_node("Reshape", ["power_grouped", "rows"], ["power"]), gemm],
        "power, MatMul + Transpose": [*power, _const("mel_t", np.ascontiguousarray(mel.T)),
                                      helper.make_node("MatMul", ["mel_t", "power"], ["energy_t"]),
                                      helper.make_node("Transpose", ["energy_t"], ["energy_bt"], perm=[1, 0]),
                                      helper.make_node("Add", ["energy_bt", "floor"], ["energy"])],
    }
    graphs = {}
    for name, nodes in variants.items():
        used = {tensor for node in nodes for tensor in node.input}
        graph = helper.make_graph(
            [node for node in common if node.output[0] in used] + nodes, name.replace(" ", "_"),
            [helper.make_tensor_value_info("spectrum", TensorProto.FLOAT, [groups, 2 * width, "B"])],
            [helper.make_tensor_value_info("energy", TensorProto.FLOAT, ["B", mel.shape[1]])])
        graphs[name] = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    return graphs


def open_session(model: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 128, 256], help="streams per call")
    parser.add_argument("--calls", type=int, default=1000, help="timed calls per variant and batch")
    parser.add_argument("--groups", type=int, default=11, help="first-stage bin groups (20 × 20 window: 11)")
    parser.add_argument("--width", type=int, default=20, help="bins per group, padded (bundled model: 20)")
    parser.add_argument("--mels", type=int, default=40, help="mel filters (bundled model: 40)")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    mel = rng.random((args.groups * args.width, args.mels)).astype(np.float32)
    floor = np.full(args.mels, 1e-6, np.float32)
    sessions = {name: open_session(model) for name, model in build_graphs(args.groups, args.width, mel,
                                                                         floor).items()}
    print(f"# spectrum [{args.groups}, {2 * args.width}, B], {args.mels} mels; onnxruntime {ort.__version__}, "
          f"one thread, median of {args.calls} calls")
    print("| variant | " + " | ".join(f"batch {b}, µs" for b in args.batches) + " |")
    print("|---|" + "---:|" * len(args.batches))
    table: dict[str, list[str]] = {name: [] for name in sessions}
    for batch in args.batches:
        feeds = {"spectrum": rng.standard_normal((args.groups, 2 * args.width, batch)).astype(np.float32)}
        reference = sessions["squared parts"].run(None, feeds)[0]
        for name, session in sessions.items():
            got = session.run(None, feeds)[0]
            if not np.allclose(got, reference, rtol=1e-4, atol=1e-3):
                raise SystemExit(f"{name} differs from the squared parts at batch {batch}: "
                                 f"max |Δ| {np.abs(got - reference).max():.3g}")
        calls = {name: (lambda session=session: session.run(None, feeds)) for name, session in sessions.items()}
        medians = interleaved_medians(calls, args.calls, warmup=50)
        base = medians["power, ReduceSum"]
        for name, median in medians.items():
            table[name].append(f"{median:.1f} ({median / base:.2f}×)")
    for name, cells in table.items():
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
