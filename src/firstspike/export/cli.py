"""`firstspike export CHECKPOINT -o MODEL.onnx`: write one self-contained stepwise ONNX file.

After writing, the file is reopened exactly as the server opens it (`firstspike.runtime`) and
streamed over two seconds of noise next to the PyTorch model, so a broken export never goes unnoticed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from firstspike.export import GRAPH_VARIANTS as VARIANTS

SELF_CHECK_SECONDS = 2.0
QUANTIZE_PARTS = ("frontend", "lstm", "all")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="a firstspike checkpoint (.pt) written by `firstspike train`")
    parser.add_argument("-o", "--output", type=Path, required=True, help="where to write MODEL.onnx")
    parser.add_argument("--model-name", help="model name in the metadata (default: the checkpoint's folder name)")
    parser.add_argument("--model-version", default="1", help="model version in the metadata (default: 1)")
    parser.add_argument("--threshold", type=float, help="default θ written into the model (default: the checkpoint's)")
    parser.add_argument("--graph", choices=VARIANTS, default="fused",
                        help="fused: hand-unrolled gates, normalisation folded in (default, fastest one hop at a "
                             "time); lstm-op: the ONNX LSTM operator; multi-hop: audio of any whole number of hops "
                             "per call, with every hop's probabilities (cheapest per hop when a call carries "
                             "several, e.g. 100 ms of microphone audio)")
    parser.add_argument("--hops-per-call", type=int, default=1,
                        help="hops of audio per graph call (default 1 = 10 ms; >1 lowers per-hop cost but "
                             "the graph reports probabilities only after the last hop of each call)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset, at least 17 (default 17)")
    # Bare --quantize means 'lstm': the integer frontend (in 'frontend' and 'all') stepped 1.9-2.3x
    # slower than float32 on every CPU measured since its basis became exact everywhere
    # (docs/benchmarks.md, *int8 LSTM gates against float32 at 1000 streams*).
    parser.add_argument("--quantize", nargs="?", const="lstm", choices=QUANTIZE_PARTS, metavar="PARTS",
                        help="int8 arithmetic, giving up exact float parity for speed at large batches: "
                             "'lstm' (int8 LSTM gates with fixed input scales, about a fifth cheaper per stream "
                             "on CPUs with VNNI; the default when PARTS is left out), 'frontend' (exact 16-bit "
                             "audio times an int8 DFT basis; slower than float32 on the CPUs measured), or 'all' "
                             "(both). Batching never changes a result. See docs/benchmarks.md, export section")


def hops_text(info) -> str:
    return "any number of hops" if info.variable_hops else f"{info.hops_per_call} hop(s)"


def run(args: argparse.Namespace) -> int:
    import sys

    import numpy as np

    from firstspike.export.onnx_export import export_model
    from firstspike.export.parity import PROB_TOLERANCE, parity_on
    from firstspike.model.checkpoint import CheckpointError, load_checkpoint
    from firstspike.runtime import open_step_session

    if args.hops_per_call < 1:
        print("firstspike export: --hops-per-call must be at least 1", file=sys.stderr)
        return 2
    if args.quantize and args.graph == "multi-hop":
        print("firstspike export: --quantize needs --graph fused (the multi-hop graph is float32 only)", file=sys.stderr)
        return 2
    integer_frontend = args.quantize in ("frontend", "all")
    try:
        model, checkpoint = load_checkpoint(args.checkpoint)
    except CheckpointError as err:
        print(f"firstspike export: {err}", file=sys.stderr)
        return 2
    name = args.model_name or args.checkpoint.resolve().parent.name
    try:
        info = export_model(model, checkpoint, args.output, model_name=name, model_version=args.model_version,
                            variant=args.graph, hops_per_call=args.hops_per_call, opset=args.opset,
                            threshold=args.threshold, integer_frontend=integer_frontend)
    except ValueError as err:
        print(f"firstspike export: {err}", file=sys.stderr)
        return 2
    if args.quantize in ("lstm", "all"):
        from firstspike.export.quantize import quantize_lstm_int8

        try:
            quantize_lstm_int8(args.output, args.output)
        except ValueError as err:  # a graph without the fused gates (e.g. --graph lstm-op)
            args.output.unlink(missing_ok=True)
            print(f"firstspike export: --quantize lstm: {err}", file=sys.stderr)
            return 2

    session, info = open_step_session(args.output)
    noise = (0.1 * np.random.default_rng(0).standard_normal((1, int(SELF_CHECK_SECONDS * info.sample_rate)))).astype(np.float32)
    diff = parity_on(session, info, model, noise)
    size_kib = args.output.stat().st_size / 1024
    print(f"wrote {args.output} ({size_kib:.0f} KiB): {info.full_name}, graph {info.extra.get('firstspike.graph', args.graph)}"
          f", opset {info.opset}, {len(info.labels)} labels, "
          f"state {info.state_size} floats, {hops_text(info)} of {info.hop_samples} samples per call, θ={info.threshold:g}")
    print(f"self-check on {SELF_CHECK_SECONDS:g} s of noise: max |p_onnx - p_torch| = {diff:.2g}")
    if diff > PROB_TOLERANCE and args.quantize:
        print(f"note: int8 output is outside the {PROB_TOLERANCE:g} parity tolerance (expected; see the export "
              "section of docs/benchmarks.md) — `firstspike verify-onnx` checks its accuracy on a corpus")
    elif diff > PROB_TOLERANCE:
        print(f"firstspike export: the ONNX graph disagrees with PyTorch by {diff:.2g} > {PROB_TOLERANCE:g}", file=sys.stderr)
        return 1
    return 0
