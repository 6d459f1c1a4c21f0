"""Where one call of a step model spends its time: onnxruntime's own profiler, kernel time summed per node.

The session is opened with the server's options (`firstspike.runtime.make_session_options`), fed a batch of
noise and a zero state, and called `--calls` times after a warm-up. The profiler's per-kernel events are
summed by node and printed as a table, most expensive first, so one can see whether a graph is bound by its
products (the LSTM gates, the DFT) or by its plumbing (splits, concats, element-wise ops).

    .venv/bin/python bench/op_profile.py src/firstspike/server/models/default.onnx --batch 128
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort

from firstspike.runtime import make_session_options, read_model_info


def profile(path: Path, batch: int, calls: int, warmup: int) -> tuple[collections.Counter, dict[str, str]]:
    """Kernel microseconds per node over `calls` calls, and each node's op type."""
    options = make_session_options(1)
    options.enable_profiling = True
    with tempfile.TemporaryDirectory() as tmp:
        options.profile_file_prefix = os.path.join(tmp, "ort")
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        info = read_model_info(session)
        rng = np.random.default_rng(0)
        feeds = {"audio": (0.1 * rng.standard_normal((batch, info.samples_per_call))).astype(np.float32),
                 "state": np.zeros((batch, info.state_size), np.float32)}
        for _ in range(warmup):
            session.run(None, feeds)
        # The warm-up calls are in the profile too; count only the last `calls` runs of each node.
        for _ in range(calls):
            session.run(None, feeds)
        events = json.loads(Path(session.end_profiling()).read_text())
    per_node: dict[str, list[int]] = collections.defaultdict(list)
    op_of: dict[str, str] = {}
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            node = event["name"].removesuffix("_kernel_time")
            per_node[node].append(event["dur"])
            op_of[node] = event["args"]["op_name"]
    return collections.Counter({node: sum(durs[-calls:]) for node, durs in per_node.items()}), op_of


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="a step model (.onnx)")
    parser.add_argument("--batch", type=int, default=128, help="streams per call (default 128)")
    parser.add_argument("--calls", type=int, default=300, help="profiled calls (default 300)")
    parser.add_argument("--warmup", type=int, default=50, help="calls before them (default 50)")
    parser.add_argument("--top", type=int, default=20, help="nodes to list (default 20)")
    args = parser.parse_args()
    if args.batch < 1 or args.calls < 1:
        parser.error("--batch and --calls must be at least 1")
    if not args.model.exists():
        parser.error(f"{args.model}: no such file")

    totals, op_of = profile(args.model, args.batch, args.calls, args.warmup)
    whole = sum(totals.values())
    print(f"{args.model}: batch {args.batch}, {args.calls} calls, kernel time {whole / args.calls:.1f} µs a call "
          f"({whole / args.calls / args.batch:.2f} µs per stream; profiling adds its own overhead)\n")
    print("| node | op | µs a call | share |")
    print("|---|---|---:|---:|")
    for node, micros in totals.most_common(args.top):
        print(f"| `{node}` | {op_of[node]} | {micros / args.calls:.1f} | {100 * micros / whole:.1f} % |")


if __name__ == "__main__":
    main()
