"""Time the step graph's frontend alone (frame → mel energy) in onnxruntime: even/odd split against the
two-stage DFT, for several factor pairs, side by side in one run.

Each frontend is the module the `fused` graph uses (`step_graph.EvenOddDft`,
`factored_dft.FactoredDft`), traced to ONNX on its own, so the figures isolate the part of a step
the DFT choice changes. One intra-op thread; each call timed on its own, configurations taking
turns in blocks of 50 (`step_latency.interleaved_medians`), medians reported.

    .venv/bin/python bench/frontend_latency.py --batches 1 64 256 1024 --factors 20x20 40x10
"""

from __future__ import annotations

import argparse
import io
import warnings

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from firstspike.export.factored_dft import FactoredDft, factor_window
from firstspike.export.step_graph import EvenOddDft
from firstspike.machine import describe_machine
from step_latency import interleaved_medians  # bench/ is on the path when run as a script
from firstspike.model.frontend import LogMelFrontend


class Energy(nn.Module):
    """One DFT module's `energy` as a traceable forward."""

    def __init__(self, dft: nn.Module):
        super().__init__()
        self.dft = dft

    def forward(self, frame: torch.Tensor) -> torch.Tensor:
        return self.dft.energy(frame)


def session_for(module: nn.Module, window: int) -> ort.InferenceSession:
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (torch.zeros(2, window),), buffer, input_names=["frame"],
                          output_names=["energy"], dynamic_axes={"frame": {0: "batch"}, "energy": {0: "batch"}},
                          opset_version=17, dynamo=False)
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64, 256, 1024])
    parser.add_argument("--factors", nargs="+", default=None, help="P x Q pairs, e.g. 20x20 40x10 (default: factor_window's)")
    parser.add_argument("--steps", type=int, default=1000, help="timed calls per frontend and batch size")
    args = parser.parse_args()

    frontend = LogMelFrontend()
    pairs = [tuple(int(v) for v in f.split("x")) for f in args.factors] if args.factors else [factor_window(frontend.window)]
    modules = {"even/odd split": Energy(EvenOddDft(frontend))}
    for p, q in pairs:
        modules[f"two stages, {p} x {q}"] = Energy(FactoredDft(frontend, (p, q)))
    sessions = {name: session_for(module, frontend.window) for name, module in modules.items()}

    print(f"# {describe_machine()}, one intra-op thread, onnxruntime {ort.__version__}")
    rng = np.random.default_rng(0)
    check = rng.uniform(-1, 1, (8, frontend.window)).astype(np.float32)
    reference = modules["even/odd split"](torch.from_numpy(check)).detach().numpy()
    for name, session in sessions.items():
        got = session.run(None, {"frame": check})[0]
        error = float(np.max(np.abs(got - reference) / reference.max(axis=1, keepdims=True)))
        print(f"# {name}: max error against PyTorch's even/odd split {error:.1e} of each frame's largest band")

    print("| frontend | " + " | ".join(f"batch {b}" for b in args.batches) + " |")
    print("|---|" + "---:|" * len(args.batches))
    results = {name: [] for name in sessions}
    for batch in args.batches:
        frames = (0.1 * rng.standard_normal((batch, frontend.window))).astype(np.float32)
        calls = {name: (lambda s=session: s.run(None, {"frame": frames})) for name, session in sessions.items()}
        medians = interleaved_medians(calls, args.steps, warmup=20)
        for name in sessions:
            results[name].append(medians[name] / (1 if batch == 1 else batch))
    for name, row in results.items():
        print(f"| {name} | " + " | ".join(f"{v:.2f}" for v in row) + " |")
    print("(µs per call at batch 1, µs per row above)")


if __name__ == "__main__":
    main()
