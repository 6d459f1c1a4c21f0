"""Per-step latency of a firstspike step model: onnxruntime vs eager PyTorch, side by side in one run.

Every call is timed on its own (perf_counter_ns), configurations take turns in blocks of 50 calls (so
load from other processes hits them alike), and the median is reported per call, per hop and per stream. The ONNX sessions are opened with `firstspike.runtime.open_step_session`, i.e. exactly the
options the server uses; eager PyTorch runs `KeywordSpotter.step` under inference_mode with the same
number of threads. Frontend (windowed DFT + mel + log) is included on both sides.

    .venv/bin/python bench/step_latency.py --checkpoint models/default/checkpoint.pt
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from firstspike.export.onnx_export import export_model
from firstspike.export.quantize import quantize_lstm_int8
from firstspike.export.step_graph import VARIANTS
from firstspike.model.checkpoint import load_checkpoint
from firstspike.machine import describe_machine
from firstspike.runtime import bind_step, make_session_options, open_step_session, read_model_info


def interleaved_medians(calls: dict[str, callable], steps: int, warmup: int, block: int = 50) -> dict[str, float]:
    """Median µs per call of every callable, timed in interleaved blocks.

    On a shared, noisy machine a slow minute then hits every configuration alike, so the figures
    stay comparable side by side even when their absolute level drifts.
    """
    for call in calls.values():
        for _ in range(warmup):
            call()
    samples: dict[str, list[int]] = {name: [] for name in calls}
    for _ in range(max(1, steps // block)):
        for name, call in calls.items():
            taken = samples[name]
            for _ in range(block):
                start = time.perf_counter_ns()
                call()
                taken.append(time.perf_counter_ns() - start)
    return {name: statistics.median(taken) / 1000.0 for name, taken in samples.items()}


def onnx_call(session: ort.InferenceSession, batch: int, public_run: bool = False, calls_per_call: int = 1):
    """One step per call through `firstspike.runtime.bind_step` (what the server calls), or through
    the public `InferenceSession.run` wrapper with `public_run`. A `variable_hops` graph can be fed
    `calls_per_call` calls' worth of audio at once."""
    info = read_model_info(session)
    if calls_per_call > 1 and not info.variable_hops:
        raise ValueError("only a variable_hops graph takes several calls' worth of audio")
    samples = info.samples_per_call * calls_per_call
    audio = (0.1 * np.random.default_rng(0).standard_normal((batch, samples))).astype(np.float32)
    state = [np.zeros((batch, info.state_size), np.float32)]
    step = bind_step(session)

    def call():
        _, state[0] = step(audio, state[0])

    def call_public():
        _, state[0] = session.run(["probs", "state_out"], {"audio": audio, "state": state[0]})

    hops = info.hops_per_call * calls_per_call
    return (call_public if public_run else call), hops


SWEEP = {  # alternatives to firstspike.runtime.make_session_options(), one change each
    "graph optimisation: basic only": {"graph_optimization_level": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC},
    "graph optimisation: disabled": {"graph_optimization_level": ort.GraphOptimizationLevel.ORT_DISABLE_ALL},
    "parallel execution mode": {"execution_mode": ort.ExecutionMode.ORT_PARALLEL},
    "2 intra-op threads": {"intra_op_num_threads": 2},
    "2 intra-op threads, spinning": {"intra_op_num_threads": 2, "spin": True},
}


def swept_session(path: Path, changes: dict) -> ort.InferenceSession:
    options = make_session_options()
    changes = dict(changes)
    if changes.pop("spin", False):
        options.add_session_config_entry("session.intra_op.allow_spinning", "1")
    for name, value in changes.items():
        setattr(options, name, value)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def torch_call(model, batch: int):
    audio = 0.1 * torch.randn(batch, model.hop)
    state = [model.initial_state(batch)]

    def call():
        with torch.inference_mode():
            _, state[0] = model.step(audio, state[0])

    return call


def quantized_graphs(model, fused: Path, folder: Path) -> list[tuple[str, Path]]:
    """The fused graph as `firstspike export --quantize frontend`, `lstm` and `all` write it."""
    frontend, lstm, both = (folder / f"fused-int8-{part}.onnx" for part in ("frontend", "lstm", "all"))
    export_model(model, {"threshold": model.config.threshold}, frontend, model_name="bench", model_version="0",
                 integer_frontend=True)
    quantize_lstm_int8(fused, lstm)
    quantize_lstm_int8(frontend, both)
    return [("onnxruntime fused, int8 frontend", frontend), ("onnxruntime fused, int8 LSTM", lstm),
            ("onnxruntime fused, int8 all", both)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=Path("models/default/checkpoint.pt"))
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--hops-per-call", type=int, nargs="+", default=[1],
                        help="also try N hops per call (fused: exported with --hops-per-call N; multi-hop: the one "
                             "graph fed N hops at a time)")
    parser.add_argument("--quantize", action="store_true",
                        help="also time the fused graph as `firstspike export --quantize frontend|lstm|all` writes it")
    parser.add_argument("--steps", type=int, default=2000, help="timed calls per configuration")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads for both runtimes")
    parser.add_argument("--session-sweep", action="store_true",
                        help="also time the fused graph under alternative onnxruntime session options")
    parser.add_argument("--onnx", type=Path, nargs="+", default=[], metavar="FILE",
                        help="also time these step-model files (e.g. an earlier export), side by side")
    parser.add_argument("--public-run", action="store_true",
                        help="also time the fused graph through the public InferenceSession.run wrapper")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    model, _ = load_checkpoint(args.checkpoint)
    cfg = model.config
    print(f"# {args.checkpoint}: hidden={cfg.hidden} layers={cfg.layers} n_mels={cfg.n_mels} "
          f"labels={len(cfg.labels)}; {describe_machine()}, threads={args.threads}, "
          f"onnxruntime {__import__('onnxruntime').__version__}, torch {torch.__version__}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        graphs = []
        for variant in args.variants:
            if variant == "multi-hop":  # one file, fed each number of hops in turn
                path = Path(tmp) / "multi-hop.onnx"
                export_model(model, {"threshold": cfg.threshold}, path, model_name="bench", model_version="0",
                             variant=variant)
                graphs += [(f"onnxruntime multi-hop, {hops} hop(s) per call", path, hops) for hops in args.hops_per_call]
                continue
            for hops in args.hops_per_call:
                if hops != 1 and variant != "fused":
                    continue
                path = Path(tmp) / f"{variant}-{hops}.onnx"
                export_model(model, {"threshold": cfg.threshold}, path, model_name="bench", model_version="0",
                             variant=variant, hops_per_call=hops)
                graphs.append((f"onnxruntime {variant}" + (f" x{hops} hops/call" if hops > 1 else ""), path, 1))
                if args.quantize and variant == "fused" and hops == 1:
                    graphs += [(name, file, 1) for name, file in quantized_graphs(model, path, Path(tmp))]
        for path in args.onnx:  # a multi-hop file is fed each --hops-per-call in turn, as the one made here
            name = f"onnxruntime {path.parent.name}/{path.name} (file)"
            if open_step_session(path)[1].variable_hops:
                graphs += [(f"{name}, {hops} hop(s) per call", path, hops) for hops in args.hops_per_call]
            else:
                graphs.append((name, path, 1))
        for batch in args.batches:
            calls, hops = {"eager PyTorch step": torch_call(model, batch)}, {"eager PyTorch step": 1}
            for name, path, fed in graphs:
                calls[name], hops[name] = onnx_call(open_step_session(path, intra_op_threads=args.threads)[0], batch,
                                                    calls_per_call=fed)
            if args.session_sweep:
                fused = next(path for name, path, _ in graphs if name == "onnxruntime fused")
                for label, changes in SWEEP.items():
                    name = f"onnxruntime fused, {label}"
                    calls[name], hops[name] = onnx_call(swept_session(fused, changes), batch)
            if args.public_run:
                fused = next(path for name, path, _ in graphs if name == "onnxruntime fused")
                name = "onnxruntime fused, public InferenceSession.run"
                calls[name], hops[name] = onnx_call(open_step_session(fused, intra_op_threads=args.threads)[0], batch,
                                                    public_run=True)
            for name, us in interleaved_medians(calls, args.steps, args.warmup).items():
                rows.append({"runtime": name, "batch": batch, "us_per_call": us, "hops_per_call": hops[name]})

    print("| runtime | batch | median µs / call | µs / hop (all streams) | µs / hop / stream |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        per_hop = row["us_per_call"] / row["hops_per_call"]
        row["us_per_hop"], row["us_per_hop_per_stream"] = per_hop, per_hop / row["batch"]
        print(f"| {row['runtime']} | {row['batch']} | {row['us_per_call']:.1f} | {per_hop:.1f} | "
              f"{row['us_per_hop_per_stream']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
