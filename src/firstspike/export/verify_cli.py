"""`firstspike verify-onnx MODEL.onnx --checkpoint CKPT --corpus DIR`: is the export faithful?

Checks, in order: onnx.checker (full check) and the opset; the contract metadata against the graph
(as the server would load it) and against the checkpoint; then streams every selected clip hop by hop
through onnxruntime and compares with PyTorch's whole-clip forward (see `firstspike.export.parity`).
An int8 graph (`firstspike export --quantize`) cannot match to 1e-4, so it passes on first-spike
accuracy instead: at most one point below float32 on the labelled clips. Exit status 0 only if every
check passes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="the exported step model (.onnx)")
    parser.add_argument("--checkpoint", type=Path, required=True, help="the checkpoint it was exported from")
    parser.add_argument("--corpus", type=Path, required=True, help="corpus folder with manifest.csv")
    parser.add_argument("--split", default="test", help="manifest split to use (default: test; 'all' for every row)")
    parser.add_argument("--limit", type=int, help="use only the first N clips of the split (manifest order)")
    parser.add_argument("--threshold", type=float, help="θ for the first-spike comparison (default: the model's)")
    parser.add_argument("--batch-size", type=int, default=32, help="clips streamed side by side (default 32)")
    parser.add_argument("--json", type=Path, help="also write the full report as JSON to this file ('-' for stdout)")


def run(args: argparse.Namespace) -> int:
    import sys

    import onnx
    from tqdm import tqdm

    from firstspike.contract import ContractError
    from firstspike.export.corpus_clips import CorpusError, read_clips
    from firstspike.export.parity import ParityReport, compare_batch, label_mapper
    from firstspike.model.checkpoint import CheckpointError, load_checkpoint
    from firstspike.runtime import open_step_session

    def fail(message: str) -> int:
        print(f"firstspike verify-onnx: {message}", file=sys.stderr)
        return 2

    try:
        session, info = open_step_session(args.model)
        proto = onnx.load(args.model)
        onnx.checker.check_model(proto, full_check=True)
        model, _ = load_checkpoint(args.checkpoint)
    except (FileNotFoundError, ContractError, CheckpointError, onnx.checker.ValidationError) as err:
        return fail(str(err))
    opsets = {entry.domain or "ai.onnx": entry.version for entry in proto.opset_import}
    if opsets.get("ai.onnx") != info.opset:
        return fail(f"metadata says opset {info.opset} but the graph imports {opsets}")
    mismatch = _compare_with_checkpoint(info, model)
    if mismatch:
        return fail(f"{args.model} was not exported from {args.checkpoint}: {mismatch}")
    if args.batch_size < 1 or (args.limit is not None and args.limit < 1):
        return fail("--batch-size and --limit must be at least 1")
    try:
        clips = read_clips(args.corpus, args.split, info.sample_rate, args.limit)
    except CorpusError as err:
        return fail(str(err))

    threshold = info.threshold if args.threshold is None else args.threshold
    report = ParityReport(threshold=threshold, hops_per_call=info.hops_per_call, whole_clip_calls=info.variable_hops,
                          int8="int8" in info.extra.get("firstspike.graph", ""))
    clips.sort(key=lambda clip: len(clip[2]))
    to_model_label = label_mapper(info.labels)
    with tqdm(total=len(clips), unit="clip", desc="verify-onnx", file=sys.stderr, disable=None) as bar:
        for start in range(0, len(clips), args.batch_size):
            batch = clips[start: start + args.batch_size]
            try:
                compare_batch(session, info, model, [n for n, _, _ in batch], [to_model_label(l) for _, l, _ in batch],
                              [a for _, _, a in batch], threshold, report)
            except ValueError as err:
                return fail(str(err))
            bar.update(len(batch))

    print(f"{args.model}: {info.full_name}, onnx.checker OK, opset {info.opset} ({', '.join(f'{d} {v}' for d, v in opsets.items())}), "
          f"corpus {args.corpus} split {args.split}")
    print(report.to_text())
    data = {"model": str(args.model), "model_name": info.full_name, "checkpoint": str(args.checkpoint),
            "corpus": str(args.corpus), "split": args.split, "opset": info.opset, "checker": "ok", **report.to_dict()}
    if args.json is not None:
        text = json.dumps(data, indent=2)
        if str(args.json) == "-":
            print(text)
        else:
            args.json.write_text(text + "\n")
    return 0 if report.passed else 1


def _compare_with_checkpoint(info, model) -> str:
    """What differs between the file's metadata and the checkpoint's model ('' if nothing)."""
    config = model.config
    expected = {
        "labels": (tuple(config.labels), info.labels),
        "firing_labels": (tuple(config.firing_labels), info.firing_labels),
        "sample_rate": (config.sample_rate, info.sample_rate),
        "hop_samples": (model.frontend.hop, info.hop_samples),
        "window_samples": (model.frontend.window, info.window_samples),
    }
    from firstspike.export.step_graph import state_layout

    expected["state_layout"] = (state_layout(model), info.state_layout)
    return "; ".join(f"{key}: checkpoint {want!r}, model {got!r}" for key, (want, got) in expected.items() if want != got)
