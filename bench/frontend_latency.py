"""Time the step graph's frontend alone (frame → mel energy) in onnxruntime: even/odd split against the
two-stage DFT, for several factor pairs, side by side in one run.

Each frontend is the module the `fused` graph uses (`step_graph.EvenOddDft`,
`factored_dft.FactoredDft`), traced to ONNX on its own, so the figures isolate the part of a step
the DFT choice changes. One intra-op thread; configurations take turns in interleaved blocks.

    .venv/bin/python bench/frontend_latency.py --batches 1 64 256 1024 --factors 20x20 40x10
"""

from __future__ import annotations

import argparse
import io
import time
import warnings

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from firstspike.export.factored_dft import FactoredDft, factor_window
from firstspike.export.step_graph import EvenOddDft
from firstspike.machine import describe_machine
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
    parser.add_argument("--blocks", type=int, default=5, help="interleaved timing blocks per batch size")
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
        reps = max(20, 20000 // batch)
        timings = {name: [] for name in sessions}
        for _ in range(args.blocks):
            for name, session in sessions.items():
                session.run(None, {"frame": frames})
                start = time.perf_counter()
                for _ in range(reps):
                    session.run(None, {"frame": frames})
                timings[name].append((time.perf_counter() - start) / reps * 1e6 / (1 if batch == 1 else batch))
        for name in sessions:
            results[name].append(float(np.median(timings[name])))
    for name, row in results.items():
        print(f"| {name} | " + " | ".join(f"{v:.2f}" for v in row) + " |")
    print("(µs per call at batch 1, µs per row above)")


if __name__ == "__main__":
    main()
